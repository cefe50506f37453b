"""What the sync engine relies on: have-vector, outbox, progress, rollback, withholding."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from client_lib.events import RollbackDetected, Withholding
from client_lib.payload import Payload
from client_lib.records import read_voice_record
from protocol.errors import ProtocolError
from tests.client.client_helpers import Device, FakeClock, Network, add_member, found, problems_of


def _pair(tmp_path: Path) -> tuple[Network, Device, Device]:
    clock = FakeClock()
    network, alex = found(tmp_path, "alex", clock)
    sam = add_member(network, alex, tmp_path, "sam", clock)
    network.sync_all()
    return network, alex, sam


def test_outbox_and_have_vector(tmp_path: Path) -> None:
    _network, alex, _sam = _pair(tmp_path)
    before = alex.replica.have_vector()
    alex.handle.agreements.create_item(kind="limit", level="no", title="One")
    pending = alex.replica.pending_outbox()
    assert [p.seq for p in pending] == [before[alex.account.device] + 1]
    assert alex.replica.have_vector()[alex.account.device] == pending[0].seq
    assert alex.replica.mark_acknowledged([pending[0].id]) == 1
    assert alex.replica.mark_acknowledged([pending[0].id]) == 0  # idempotent
    assert alex.replica.pending_outbox() == []


def test_progress_is_reported(tmp_path: Path) -> None:
    network, alex, sam = _pair(tmp_path)
    for n in range(6):
        alex.handle.agreements.create_item(kind="limit", level="no", title=f"n{n}")
    new = network.collect()
    calls: list[tuple[int, int]] = []
    sam.replica.ingest_many(new, progress=lambda done, total: calls.append((done, total)))
    assert calls[-1] == (6, 6) and len(calls) == 6


def test_rollback_is_reported_once(tmp_path: Path) -> None:
    network, alex, sam = _pair(tmp_path)
    device = alex.account.device
    have = sam.replica.have_vector()[device]
    assert sam.replica.note_relay_heads({device: have}) == []
    events = sam.replica.note_relay_heads({device: have - 1})
    assert [type(e) for e in events] == [RollbackDetected]
    assert events[0].stored_seq == have and events[0].reported_seq == have - 1  # type: ignore[attr-defined]
    assert sam.replica.note_relay_heads({device: have - 1}) == []
    # Own entries the relay acknowledged count too.
    sam.handle.agreements.create_item(kind="limit", level="no", title="x")
    network.collect()
    mine = sam.replica.have_vector()[sam.account.device]
    events = sam.replica.note_relay_heads({sam.account.device: mine - 1})
    assert [type(e) for e in events] == [RollbackDetected]


def test_withholding_shows_in_the_status(tmp_path: Path) -> None:
    network, alex, sam = _pair(tmp_path)
    kai = add_member(network, alex, tmp_path, "kai", FakeClock(1_800_000_000_000))
    network.sync_all()
    for n in range(3):
        alex.handle.agreements.create_item(kind="limit", level="no", title=f"w{n}")
    alex_entries = network.collect()
    sam.replica.ingest_many(alex_entries)
    sam.handle.agreements.create_item(kind="limit", level="no", title="after reading")
    [sam_entry] = network.collect()
    # Kai receives Sam's entry, but the relay holds back the Alex entries Sam had read.
    kai.replica.ingest(sam_entry)
    events = kai.replica.withholding()
    assert [type(e) for e in events] == [Withholding]
    assert kai.replica.withholding() == []  # reported once
    status = kai.replica.status()
    [alex_status] = [d for d in status.devices if d.device == alex.account.device]
    assert alex_status.withheld_up_to is not None
    assert alex_status.withheld_up_to > alex_status.have_seq
    assert status.waiting == 1
    # When the entries arrive, everything fits.
    assert not problems_of(kai.replica.ingest_many(alex_entries))
    assert kai.replica.status().waiting == 0
    assert len(kai.handle.agreements.items()) == 4


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.binary(max_size=300))
def test_random_bytes_never_crash_the_replica(tmp_path: Path, data: bytes) -> None:
    network = getattr(test_random_bytes_never_crash_the_replica, "network", None)
    if network is None:
        network, alex, _ = _pair(tmp_path)
        test_random_bytes_never_crash_the_replica.network = (network, alex)  # type: ignore[attr-defined]
    else:
        network, alex = network
    events = alex.replica.ingest(data)
    assert events and all(e.is_problem for e in events)
    assert alex.replica.accept_key_envelope(data) is not None


@settings(max_examples=150, deadline=None)
@given(data=st.binary(max_size=200))
def test_payload_and_record_decoders_refuse_cleanly(data: bytes) -> None:
    for decode in (Payload.from_bytes, lambda d: read_voice_record("0" * 64, d, owner=b"m" * 16)):
        try:
            decode(data)
        except ProtocolError:
            pass
