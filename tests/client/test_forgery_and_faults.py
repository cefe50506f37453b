"""Forgery, forks, bad signatures and undecryptable entries: refused, reported, never merged."""

from __future__ import annotations

from pathlib import Path

import pytest

from client_lib.documents import VoiceDocument, voice_name
from client_lib.errors import NotAllowedError
from client_lib.events import Accepted, ContentState, ForkDetected, NotAuthor, Refused
from client_lib.payload import DocUpdate, Payload
from client_lib.records import record_bytes, record_key
from protocol.agreement import Affirmation, Level, Status
from protocol.entry import Entry, entry_id, seal
from protocol.errors import ErrorCode, UsageError
from protocol.feeds import ForkProof, verify_fork_proof
from tests.client.client_helpers import Device, FakeClock, Network, add_member, found, problems_of


def _pair(tmp_path: Path) -> tuple[Network, Device, Device, FakeClock]:
    clock = FakeClock()
    network, alex = found(tmp_path, "alex", clock)
    sam = add_member(network, alex, tmp_path, "sam", clock)
    network.sync_all()
    return network, alex, sam, clock


def _forge(device: Device, updates: dict[str, bytes], *, epoch_key: bytes | None = None) -> bytes:
    """An entry signed by ``device``'s real key, built by hand, bypassing every check."""
    replica = device.replica
    feed = replica.feed_entries(device.account.device)
    epoch = replica.roster.epoch
    payload = Payload(
        at=1, updates=tuple(DocUpdate(doc=n, update=u) for n, u in sorted(updates.items()))
    )
    entry = seal(
        device_key=device.account.keystore.device_key,
        space=replica.space,
        seq=len(feed) + 1,
        prev=entry_id(feed[-1]),
        epoch=epoch,
        epoch_key=epoch_key or device.account.keystore.epoch_keys(replica.space)[epoch],
        plaintext=payload.to_bytes(),
    )
    return entry.to_bytes()


def _voice_update(owner: bytes, record: Affirmation) -> bytes:
    doc = VoiceDocument(voice_name(owner))
    with doc.local_edit() as updates:
        data = record_bytes(record)
        doc.put_record(record_key(record, data), data)
    return updates[0]


def test_writing_into_the_partners_voice_is_refused_everywhere(tmp_path: Path) -> None:
    network, alex, sam, _clock = _pair(tmp_path)
    proposal = sam.handle.agreements.create_item(kind="permission", level="yes", title="Sleepover")
    network.sync_all()
    # Sam's device holds the space key, and forges Alex's affirmation inside voice/Alex.
    forged = Affirmation(
        member=alex.account.member_id, version=proposal.heads[0].id, item=proposal.item, at=5
    )
    raw = _forge(
        sam, {voice_name(alex.account.member_id): _voice_update(alex.account.member_id, forged)}
    )
    for device in (alex, sam):
        events = device.replica.ingest(raw)
        assert any(isinstance(e, NotAuthor) and e.voice == alex.account.member_id for e in events)
        assert any(isinstance(e, Accepted) and e.content is ContentState.REFUSED for e in events)
        item = device.handle.agreements.item(proposal.item)
        assert item.status is Status.PENDING and item.level is Level.NO
        assert item.waiting_for[proposal.heads[0].id] == (alex.account.member_id,)
        assert [p.code for p in device.replica.problems()] == [ErrorCode.NOT_AUTHOR.value]
    # Sam's feed goes on: the forged entry is a link, its content is not used.
    sam_note = sam.handle.agreements.create_item(kind="limit", level="no", title="After")
    network.sync_all()
    assert alex.handle.agreements.item(sam_note.item).level is Level.NO


def test_affirming_on_someone_elses_behalf_in_ones_own_voice_is_refused(tmp_path: Path) -> None:
    network, alex, sam, _ = _pair(tmp_path)
    proposal = sam.handle.agreements.create_item(
        kind="permission", level="yes", title="Holding hands"
    )
    network.sync_all()
    forged = Affirmation(
        member=alex.account.member_id, version=proposal.heads[0].id, item=proposal.item, at=5
    )
    # The record says "Alex affirms", but it sits in Sam's own voice.
    raw = _forge(
        sam, {voice_name(sam.account.member_id): _voice_update(sam.account.member_id, forged)}
    )
    for device in (alex, sam):
        events = device.replica.ingest(raw)
        assert any(isinstance(e, NotAuthor) for e in events)
        assert device.handle.agreements.item(proposal.item).status is Status.PENDING


def test_the_api_refuses_to_speak_for_another_member(tmp_path: Path) -> None:
    _network, alex, sam, _ = _pair(tmp_path)
    proposal = alex.handle.agreements.create_item(kind="limit", level="ask", title="Tickling")
    forged = Affirmation(
        member=alex.account.member_id, version=proposal.heads[0].id, item=proposal.item, at=5
    )
    with pytest.raises(UsageError):
        sam.replica.write_records([forged])
    with pytest.raises(NotAllowedError), sam.replica.change() as docs:
        docs.voice(alex.account.member_id).put_record("a" * 64, b"x")
    assert sam.replica.pending_outbox() == []
    voice = sam.replica.documents.voice(alex.account.member_id)
    assert not voice.has_record("a" * 64)


def test_a_fork_is_proven_reported_and_stops_only_that_feed(tmp_path: Path) -> None:
    _network, alex, sam, _ = _pair(tmp_path)
    record = Affirmation(member=sam.account.member_id, version=b"v" * 32, item=b"i" * 16, at=9)
    first = _forge(
        sam, {voice_name(sam.account.member_id): _voice_update(sam.account.member_id, record)}
    )
    other = Affirmation(member=sam.account.member_id, version=b"w" * 32, item=b"i" * 16, at=9)
    second = _forge(
        sam, {voice_name(sam.account.member_id): _voice_update(sam.account.member_id, other)}
    )
    assert Entry.from_bytes(first).seq == Entry.from_bytes(second).seq
    alex.replica.ingest(first)
    events = alex.replica.ingest(second)
    [fork] = [e for e in events if isinstance(e, ForkDetected)]
    verify_fork_proof(ForkProof.from_bytes(fork.proof))
    assert alex.replica.status().devices[0].forked_at is not None or any(
        d.forked_at for d in alex.replica.status().devices
    )
    # Alex's own feed is untouched.
    alex.handle.agreements.create_item(kind="limit", level="no", title="Still fine")
    assert len(alex.handle.agreements.items()) == 1


def test_bad_signature_and_flipped_bytes(tmp_path: Path) -> None:
    network, alex, sam, _ = _pair(tmp_path)
    sam.handle.agreements.create_item(kind="limit", level="no", title="Quiet")
    [raw] = network.collect()
    entry = Entry.from_bytes(raw)
    flipped = bytearray(entry.body)
    flipped[10] ^= 1
    tampered = Entry(
        type=entry.type,
        space=entry.space,
        device=entry.device,
        seq=entry.seq,
        prev=entry.prev,
        epoch=entry.epoch,
        seen=entry.seen,
        nonce=entry.nonce,
        body=bytes(flipped),
        sig=entry.sig,
    ).to_bytes()
    events = alex.replica.ingest(tampered)
    assert [e.code for e in problems_of(events)] == [ErrorCode.BAD_SIGNATURE]
    assert alex.replica.ingest(b"\x00garbage") and alex.handle.agreements.items() == []
    alex.replica.ingest(raw)
    assert [i.title for i in alex.handle.agreements.items()] == ["Quiet"]


def test_content_that_does_not_decrypt_is_refused_but_the_feed_goes_on(tmp_path: Path) -> None:
    network, alex, sam, _ = _pair(tmp_path)
    raw = _forge(sam, {"shared": b"\x00\x00"}, epoch_key=b"k" * 32)
    events = alex.replica.ingest(raw)
    assert [e.code for e in problems_of(events)] == [ErrorCode.DECRYPT_FAILED]
    sam.replica.ingest(raw)
    sam.handle.agreements.create_item(kind="limit", level="no", title="Next")
    network.sync_all()
    assert [i.title for i in alex.handle.agreements.items()] == ["Next"]


def test_malformed_crdt_update_is_refused(tmp_path: Path) -> None:
    _network, alex, sam, _ = _pair(tmp_path)
    raw = _forge(sam, {"shared": b"\xff\xff\xff\xff"})
    events = alex.replica.ingest(raw)
    assert [type(e) for e in problems_of(events)] == [Refused]
    assert alex.handle.plan.wording() == ""
