"""Three members; device removal and key rotation; restarts from snapshots."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from client_lib.account import Account
from client_lib.errors import NoEpochKeyError, NoSuchRecordError, NotAllowedError, WrongPassphrase
from client_lib.events import Waiting, WaitReason
from client_lib.keystore import FAST_FOR_TESTS, SpaceKind
from protocol.agreement import Level, Status
from protocol.errors import ErrorCode
from protocol.roster import AddDevice, join_proof
from tests.client.client_helpers import (
    FakeClock,
    add_device,
    add_member,
    found,
    new_account,
    problems_of,
    states,
)


def test_three_members_all_must_affirm(tmp_path: Path) -> None:
    clock = FakeClock()
    network, a = found(tmp_path, "alex", clock)
    b = add_member(network, a, tmp_path, "sam", clock)
    c = add_member(network, b, tmp_path, "kai", clock)
    network.sync_all()
    devices = [a, b, c]
    for device in devices:
        assert len(device.replica.members()) == 3
    item = a.handle.agreements.create_item(kind="permission", level="yes", title="Sharing a bed")
    network.sync_all()
    b.handle.agreements.affirm(item.heads[0].id)
    network.sync_all()
    view = c.handle.agreements.item(item.item)
    assert view.status is Status.PENDING and view.level is Level.NO
    assert view.waiting_for[item.heads[0].id] == (c.account.member_id,)
    assert "Waiting for your re-affirmation" in view.summary
    c.handle.agreements.affirm(item.heads[0].id)
    # Kai narrows while Sam, offline, re-affirms the old yes.
    c.handle.agreements.change_item(item.item, level="ask")
    b.handle.agreements.affirm(item.heads[0].id)
    network.sync_all(random.Random(7))
    views = states(devices)
    assert all(v == views[0] for v in views)
    final = a.handle.agreements.item(item.item)
    assert final.level is Level.ASK and final.status is Status.PENDING
    assert set(final.waiting_for[final.heads[0].id]) == {a.account.member_id, b.account.member_id}


def test_removed_device_cannot_read_what_comes_after(tmp_path: Path) -> None:
    clock = FakeClock()
    network, a1 = found(tmp_path, "alex-1", clock)
    b1 = add_member(network, a1, tmp_path, "sam-1", clock)
    a2 = add_device(network, a1, tmp_path, "alex-2", clock)
    network.sync_all()
    before = a1.handle.agreements.create_item(kind="limit", level="no", title="Before")
    network.sync_all()
    assert a2.handle.agreements.item(before.item).level is Level.NO

    envelopes = a1.handle.remove_device(a2.account.device)
    assert {e.recipient for e in envelopes} == {b1.account.device}
    assert a1.replica.roster.epoch == 1
    network.collect()
    b1.replica.ingest_many(network.log)
    for envelope in envelopes:
        assert not problems_of(b1.replica.accept_key_envelope(envelope.data))
    after = b1.handle.agreements.create_item(kind="limit", level="no", title="After the removal")
    network.collect()

    # The removed device receives every entry, but no key for the new epoch.
    events = a2.replica.ingest_many(network.log)
    assert any(isinstance(e, Waiting) and e.reason is WaitReason.EPOCH_KEY for e in events)
    assert [i.title for i in a2.handle.agreements.items()] == ["Before"]
    with pytest.raises((NotAllowedError, NoEpochKeyError)):
        a2.handle.agreements.create_item(kind="limit", level="no", title="Sneaky")
    # The remaining devices read it; the new title is nowhere in the removed device's files.
    a1.replica.ingest_many(network.log)
    assert a1.handle.agreements.item(after.item).title == "After the removal"
    a2.account.close()
    for path in a2.account.paths.directory.iterdir():
        assert b"After the removal" not in path.read_bytes()
    # Envelopes still to be delivered are kept until the relay takes them.
    assert {e.recipient for e in a1.replica.pending_envelopes()} == {b1.account.device}
    a1.replica.mark_envelopes_delivered([(b1.account.device, 1)])
    assert a1.replica.pending_envelopes() == []


def test_entries_of_a_removed_device_after_its_cut_are_refused(tmp_path: Path) -> None:
    clock = FakeClock()
    network, a1 = found(tmp_path, "alex-1", clock)
    b1 = add_member(network, a1, tmp_path, "sam-1", clock)
    a2 = add_device(network, a1, tmp_path, "alex-2", clock)
    network.sync_all()
    # Offline, alex-2 keeps writing while alex-1 removes it.
    late = a2.handle.agreements.create_item(kind="permission", level="yes", title="Late")
    envelopes = a1.handle.remove_device(a2.account.device)
    network.collect()
    for envelope in envelopes:
        b1.replica.accept_key_envelope(envelope.data)
    events = []
    for device in (a1, b1):
        events = device.replica.ingest_many(network.log)
        assert ErrorCode.DEVICE_REMOVED in [e.code for e in problems_of(events)]
        with pytest.raises(NoSuchRecordError):
            device.handle.agreements.item(late.item)


def test_restart_from_snapshot_and_from_entries(tmp_path: Path) -> None:
    clock = FakeClock()
    network, alex = found(tmp_path, "alex", clock)
    sam = add_member(network, alex, tmp_path, "sam", clock)
    for n in range(10):
        sam.handle.agreements.create_item(kind="limit", level="no", title=f"L{n}")
    sam.handle.plan.set_wording("Breathe. Then talk.")
    network.sync_all()
    expected = states([alex])[0]
    # Without a snapshot: a fresh open replays the stored entries.
    reopened = Account.open("alex", base=tmp_path, clock=clock)
    assert states_of(reopened, alex.space_id) == expected
    reopened.close()  # takes a snapshot
    again = Account.open("alex", base=tmp_path, clock=clock)
    upto, snaps = again.store.load_snapshots(alex.space_id)
    assert upto == again.store.last_order(alex.space_id) and "shared" in snaps
    assert states_of(again, alex.space_id) == expected
    assert again.space(alex.space_id).plan.wording() == "Breathe. Then talk."


def states_of(account: Account, space: bytes) -> list[tuple[object, ...]]:
    return [
        (
            v.item,
            v.status,
            v.level,
            tuple(h.id for h in v.heads),
            tuple(sorted(v.waiting_for.items())),
        )
        for v in account.space(space).agreements.items()
    ]


def test_wrong_passphrase_on_open(tmp_path: Path) -> None:
    account = Account.create(
        "p", display_name="Pat", passphrase="a long one", base=tmp_path, limits=FAST_FOR_TESTS
    )
    assert account.is_protected
    account.close()
    with pytest.raises(WrongPassphrase):
        Account.open("p", passphrase="not it", base=tmp_path)
    assert Account.open("p", passphrase="a long one", base=tmp_path).display_name == "Pat"


def test_any_arrival_order_for_a_new_device(tmp_path: Path) -> None:
    clock = FakeClock()
    network, alex = found(tmp_path, "alex", clock)
    sam = add_member(network, alex, tmp_path, "sam", clock)
    for n in range(3):
        sam.handle.agreements.create_item(kind="limit", level="no", title=f"Early {n}")
        alex.handle.plan.add_step("de-escalation", f"Step {n}")
    network.sync_all()
    # A new device of Alex gets the key first, then the whole history backwards.
    joiner = new_account(tmp_path, "alex-2", clock, member_id=alex.account.member_id)
    key = joiner.keystore.device_key
    proof = join_proof(
        key, space=network.space, member=alex.account.member_id, by=alex.account.device
    )
    alex.replica.append_roster(
        AddDevice(member=alex.account.member_id, device=key.public, proof=proof)
    )
    network.collect()
    replica = joiner.adopt_space(network.space, kind=SpaceKind.SHARED, label="us")
    for envelope in alex.replica.envelopes_for(key.public):
        events = replica.accept_key_envelope(envelope)
        assert [type(e) for e in events] == [Waiting]  # kept until the roster says who sent it
    events = replica.ingest_many(list(reversed(network.log)))
    assert not problems_of(events)
    assert replica.have_vector() == alex.replica.have_vector()
    assert states_of(joiner, network.space) == states([alex])[0]
    assert [s.text for s in joiner.space(network.space).plan.steps()] == [
        "Step 0",
        "Step 1",
        "Step 2",
    ]
    assert replica.status().waiting == 0


def test_an_applied_entry_cut_by_a_later_removal_stops_counting(tmp_path: Path) -> None:
    clock = FakeClock()
    network, a1 = found(tmp_path, "alex-1", clock)
    b1 = add_member(network, a1, tmp_path, "sam-1", clock)
    a2 = add_device(network, a1, tmp_path, "alex-2", clock)
    network.sync_all()
    late = a2.handle.agreements.create_item(kind="permission", level="yes", title="Late")
    late_entries = network.collect()
    b1.replica.ingest_many(late_entries)  # Sam sees alex-2's entry first: it counts
    assert b1.handle.agreements.item(late.item).title == "Late"
    envelopes = a1.handle.remove_device(a2.account.device)  # written without seeing it
    removal = [raw for raw in network.collect() if raw not in late_entries]
    for envelope in envelopes:
        b1.replica.accept_key_envelope(envelope.data)
    events = b1.replica.ingest_many(removal)
    assert ErrorCode.DEVICE_REMOVED in [e.code for e in problems_of(events)]
    with pytest.raises(NoSuchRecordError):
        b1.handle.agreements.item(late.item)
    # The rebuilt documents survive a restart.
    b1.account.close()
    again = Account.open("sam-1", base=tmp_path, clock=clock)
    with pytest.raises(NoSuchRecordError):
        again.space(network.space).agreements.item(late.item)
    assert states_of(again, network.space) == states_of(a1.account, network.space)
