"""A hostile member: Sam's device holds the space key and tries to speak for Alex.

Sam builds each hostile entry by hand with the real code (records from
:mod:`protocol.agreement`, CRDT updates from :mod:`client_lib.documents` and pycrdt,
the payload of :mod:`client_lib.payload`, sealed and signed by
:func:`protocol.entry.seal` with Sam's real keys) and pushes it to the real relay,
which stores it: it is validly signed and chained, and the relay cannot read it.
Alex's two devices (phone and laptop) then sync, and must refuse and report every
attempt, with their item states unchanged:

1. forging Alex's affirmation (in Alex's voice, or in Sam's own voice);
2. writing into Alex's voice (deleting Alex's limit, replacing it with a "yes" in
   Alex's name, and an entry that mixes that with a harmless shared edit);
3. lifting Alex's pause (a resume in Alex's name, a resume of Sam's naming Alex's
   pause, deleting Alex's pause record);
4. re-using the old epoch key after Sam was removed (new entries under the old key,
   and reading the entries of the new epoch).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pycrdt
import pytest

from client_lib.documents import RECORDS, VoiceDocument, voice_name
from client_lib.errors import NotAllowedError
from client_lib.events import (
    ContentState,
    NotAuthor,
    Refused,
    RollbackDetected,
    Waiting,
    WaitReason,
)
from client_lib.payload import DocUpdate, Payload
from client_lib.records import VoiceRecord, record_bytes, record_hash, record_key
from client_lib.relay_client import RelayCallError, RelayClient
from protocol import encoding
from protocol.agreement import Affirmation, Kind, Level, Resume, Status, draft_version
from protocol.agreement_records import new_record_id
from protocol.entry import Entry, SeenHead, decrypt, entry_id, seal
from protocol.errors import DecryptError, ErrorCode
from tests.system.partners import (
    Person,
    couple,
    full_state,
    join_device,
    relay_entries,
    sync_until_converged,
    titles,
)
from tests.system.tamper_proxy import Inject, TamperingRelay


@pytest.fixture
async def trio(tmp_path: Path, relay_pool: Any) -> tuple[str, Person, Person, Person]:
    """Alex's phone and laptop and Sam's phone, all synced; returns the relay URL too."""
    relay = relay_pool.get("sqlite")
    alex, sam = await couple(tmp_path, relay.url)
    laptop = await join_device(alex, tmp_path, "alex-laptop")
    await sync_until_converged([alex, sam, laptop], relay.url)
    return relay.url, alex, laptop, sam


# -- Sam's tools: real records, real CRDT updates, real sealing -----------------------


def put_records(owner: bytes, *records: VoiceRecord) -> bytes:
    """A CRDT update of ``voice/<owner>`` adding ``records`` (as any writer makes it)."""
    doc = VoiceDocument(voice_name(owner))
    with doc.local_edit() as updates:
        for record in records:
            data = record_bytes(record)
            doc.put_record(record_key(record, data), data)
    return updates[0]


def delete_records(holder: Person, owner: bytes, keys: list[str]) -> bytes:
    """A CRDT update deleting ``keys`` from ``voice/<owner>``, made on a copy of the
    document as ``holder``'s device has it."""
    ydoc: pycrdt.Doc[Any] = pycrdt.Doc()
    ydoc.apply_update(holder.replica.documents.voice(owner).update_since())
    records: pycrdt.Map[Any] = ydoc.get(RECORDS, type=pycrdt.Map)
    before = ydoc.get_state()
    for key in keys:
        assert key in records
        del records[key]
    return bytes(ydoc.get_update(before))


def forge(person: Person, updates: dict[str, bytes], *, epoch: int | None = None) -> bytes:
    """``person``'s next entry carrying ``updates``, sealed by hand (no API checks),
    and taken into its own replica so its feed goes on from it."""
    replica = person.replica
    head = Entry.from_bytes(replica.feed_entries(person.device)[-1])
    seen = []
    for device, seq in sorted(replica.have_vector().items()):
        if device != person.device:
            raw = replica.feed_entries(device, after_seq=seq - 1)[0]
            seen.append(SeenHead(device=device, seq=seq, id=entry_id(raw)))
    epoch = replica.roster.epoch if epoch is None else epoch
    payload = Payload(
        at=int(time.time() * 1000),
        updates=tuple(DocUpdate(doc=name, update=data) for name, data in sorted(updates.items())),
    )
    entry = seal(
        device_key=person.key,
        space=person.space,
        seq=head.seq + 1,
        prev=head.id,
        epoch=epoch,
        epoch_key=person.account.keystore.epoch_keys(person.space)[epoch],
        plaintext=payload.to_bytes(),
        seen=tuple(seen),
    )
    raw = entry.to_bytes()
    replica.ingest(raw)
    assert replica.have_vector()[person.device] == entry.seq
    return raw


async def push(relay_url: str, person: Person, *raws: bytes) -> None:
    async with RelayClient(relay_url, device_key=person.key, space=person.space) as client:
        results = await client.append(list(raws))
    assert [r.status for r in results] == ["stored"] * len(raws)


def not_author(events: list[Any]) -> list[NotAuthor]:
    return [event for event in events if isinstance(event, NotAuthor)]


async def refused_by_alex(
    alex: Person, laptop: Person, expected: int
) -> list[tuple[NotAuthor, ...]]:
    """Sync Alex's two devices; each must report ``expected`` not-author problems."""
    found = []
    for device in (alex, laptop):
        report = await device.sync()
        problems = not_author(report.problems)
        assert len(problems) == expected, (device.name, report.problems)
        assert all(p.code is ErrorCode.NOT_AUTHOR for p in problems)
        assert [row.code for row in device.replica.problems()] == ["not_author"] * expected
        found.append(tuple(problems))
    return found


# -- 1. forging the partner's affirmation -----------------------------------------------


async def test_forging_the_partners_affirmation_is_refused(
    trio: tuple[str, Person, Person, Person],
) -> None:
    relay_url, alex, laptop, sam = trio
    proposal = sam.agreements.create_item(kind="permission", level="yes", title="Sleepover")
    await sam.sync()
    await alex.sync()
    await laptop.sync()
    before = full_state(alex)
    head = proposal.heads[0].id
    forged = Affirmation(member=alex.member, version=head, item=proposal.item, at=5)
    in_alex_voice = forge(sam, {voice_name(alex.member): put_records(alex.member, forged)})
    in_own_voice = forge(sam, {voice_name(sam.member): put_records(sam.member, forged)})
    await push(relay_url, sam, in_alex_voice, in_own_voice)

    for problems in await refused_by_alex(alex, laptop, expected=2):
        content, record = sorted(problems, key=lambda p: p.entry_id is None)
        assert content.entry_id == entry_id(in_alex_voice) and content.voice == alex.member
        assert record.entry_id is None and record.voice == sam.member
    for device in (alex, laptop, sam):
        view = device.agreements.item(proposal.item)
        assert view.status is Status.PENDING and view.level is Level.NO
        assert view.waiting_for[head] == (alex.member,)
    assert full_state(alex) == before == full_state(laptop)


# -- 2. writing into the partner's voice ------------------------------------------------


async def test_writing_into_the_partners_voice_is_refused(
    trio: tuple[str, Person, Person, Person],
) -> None:
    relay_url, alex, laptop, sam = trio
    limit = alex.agreements.create_item(kind="limit", level="no", title="Choking")
    alex.handle.plan.set_wording("Step outside and breathe.")
    await alex.sync()
    await sam.sync()
    await laptop.sync()
    before = full_state(alex)
    alex_version = limit.heads[0].id
    # A "yes" in Alex's name, over Alex's own "no".
    widened = draft_version(
        item=limit.item,
        kind=Kind.LIMIT,
        level=Level.YES,
        title="Choking",
        author=alex.member,
        created_at=6,
        parents=[alex_version],
    )
    alex_voice = voice_name(alex.member)
    deleting = forge(sam, {alex_voice: delete_records(sam, alex.member, [alex_version.hex()])})
    replacing = forge(sam, {alex_voice: put_records(alex.member, widened)})
    # One entry that mixes a harmless shared edit with the write into Alex's voice:
    # all or nothing, so the shared edit is not used either.
    scratch = pycrdt.Doc()
    scratch.apply_update(sam.replica.documents.shared.update_since())
    plan: pycrdt.Text = scratch.get("plan", type=pycrdt.Text)
    state = scratch.get_state()
    plan += " Sam was here."
    mixed = forge(
        sam,
        {
            alex_voice: put_records(alex.member, widened),
            "shared": bytes(scratch.get_update(state)),
        },
    )
    in_own_voice = forge(sam, {voice_name(sam.member): put_records(sam.member, widened)})
    await push(relay_url, sam, deleting, replacing, mixed, in_own_voice)

    for problems in await refused_by_alex(alex, laptop, expected=4):
        refused = {p.entry_id for p in problems if p.entry_id is not None}
        assert refused == {entry_id(deleting), entry_id(replacing), entry_id(mixed)}
    for device in (alex, laptop, sam):
        view = device.agreements.item(limit.item)
        assert [h.id for h in view.heads] == [alex_version] and view.level is Level.NO
        assert device.replica.documents.voice(alex.member).has_record(alex_version.hex())
        assert device.handle.plan.wording() == "Step outside and breathe."
    assert full_state(alex) == before == full_state(laptop)
    # Sam may of course write a "yes" of Sam's own over it: Alex's "no" still stands.
    sam.agreements.change_item(limit.item, level="yes")
    await sam.sync()
    await alex.sync()
    view = alex.agreements.item(limit.item)
    assert view.level is Level.NO and view.stances[alex.member] is Level.NO


# -- 3. lifting the partner's pause ------------------------------------------------------


async def test_lifting_the_partners_pause_is_refused(
    trio: tuple[str, Person, Person, Person],
) -> None:
    relay_url, alex, laptop, sam = trio
    alex.agreements.create_item(kind="permission", level="yes", title="Cuddling")
    [pause_id] = alex.agreements.pause().mine
    await alex.sync()
    await sam.sync()
    await laptop.sync()
    with pytest.raises(NotAllowedError):
        sam.agreements.resume()  # the API refuses at once
    alex_voice = voice_name(alex.member)
    pause_key = next(
        key
        for key, data in sam.replica.documents.voice(alex.member).raw_records().items()
        if pause_id in data
    )
    as_alex = Resume(member=alex.member, id=new_record_id(), at=7, lifts=(pause_id,))
    in_alex_voice = forge(sam, {alex_voice: put_records(alex.member, as_alex)})
    in_own_voice = forge(sam, {voice_name(sam.member): put_records(sam.member, as_alex)})
    deleting = forge(sam, {alex_voice: delete_records(sam, alex.member, [pause_key])})
    # A resume of Sam's own naming Alex's pause: a valid record that lifts nothing.
    own_resume = Resume(member=sam.member, id=new_record_id(), at=8, lifts=(pause_id,))
    harmless = forge(sam, {voice_name(sam.member): put_records(sam.member, own_resume)})
    await push(relay_url, sam, in_alex_voice, in_own_voice, deleting, harmless)

    for problems in await refused_by_alex(alex, laptop, expected=3):
        refused = {p.entry_id for p in problems if p.entry_id is not None}
        assert refused == {entry_id(in_alex_voice), entry_id(deleting)}
    for device in (alex, laptop, sam):
        state = device.agreements.pause_state()
        assert state.paused_by == (alex.member,)
        assert all(view.level is Level.NO for view in device.agreements.items())
    assert alex.agreements.pause_state().mine == (pause_id,)
    # Alex, and only Alex, lifts it.
    alex.agreements.resume()
    await alex.sync()
    await laptop.sync()
    assert not laptop.agreements.pause_state().active


# -- 4. re-using an old epoch key after removal ------------------------------------------


async def test_a_removed_device_cannot_use_the_old_key(
    trio: tuple[str, Person, Person, Person],
) -> None:
    relay_url, alex, laptop, sam = trio
    sam.agreements.create_item(kind="limit", level="no", title="Before leaving")
    await sam.sync()
    await alex.sync()
    old_epoch = alex.replica.roster.epoch
    old_key = sam.account.keystore.epoch_keys(sam.space)[old_epoch]
    envelopes = alex.replica.remove_member(sam.member)
    assert {e.recipient for e in envelopes} == {laptop.device}
    await alex.sync()
    await laptop.sync()
    assert laptop.replica.roster.epoch == old_epoch + 1 == alex.replica.roster.epoch
    alex.agreements.create_item(kind="limit", level="no", title="After Sam left")
    await alex.sync()
    await laptop.sync()
    before = full_state(alex)

    # The relay shuts the removed device out at once.
    with pytest.raises(RelayCallError) as refused:
        await sam.sync()
    assert refused.value.code == "device_removed"
    # Sam writes under the old key anyway: the real relay will not take it...
    sneaky = draft_version(
        item=new_record_id(),
        kind=Kind.PERMISSION,
        level=Level.YES,
        title="Sam's late yes",
        author=sam.member,
        created_at=9,
    )
    late = forge(sam, {voice_name(sam.member): put_records(sam.member, sneaky)}, epoch=old_epoch)
    with pytest.raises(RelayCallError) as at_relay:
        await push(relay_url, sam, late)
    assert at_relay.value.code == "device_removed"
    # ...so a colluding relay serves it: both of Alex's devices refuse it.
    async with TamperingRelay(relay_url) as hostile:
        hostile.tamper = Inject([late])
        for device in (alex, laptop):
            device.use_relay(hostile.url)
            report = await device.sync()
            [problem] = [p for p in report.problems if isinstance(p, Refused)]
            # The colluding relay served Sam's entry 3 but its heads still say 2: that
            # contradiction is named as well.
            others = [p for p in report.problems if not isinstance(p, Refused)]
            assert all(
                isinstance(p, RollbackDetected) and p.device == sam.device for p in others
            ), others
            assert isinstance(problem, Refused) and problem.code is ErrorCode.DEVICE_REMOVED
            assert problem.entry_id == entry_id(late)
            assert "Sam's late yes" not in titles(device)
            assert full_state(device) == before
            device.use_relay(relay_url)

    # Sam gets hold of everything the relay stores (say the relay leaks it): the old
    # key does not open the new epoch's entries, and Sam's device keeps them waiting
    # for a key it never gets.
    leaked = await relay_entries(relay_url, alex)
    new_epoch = [
        entry
        for entry in map(Entry.from_bytes, leaked)
        if entry.epoch > old_epoch and entry.type.value == "data"
    ]
    assert new_epoch
    for entry in new_epoch:
        with pytest.raises(DecryptError):
            decrypt(entry, old_key)
    events = sam.replica.ingest_many(leaked)
    waiting = {e.entry_id for e in events if isinstance(e, Waiting)}
    assert {entry.id for entry in new_epoch} <= waiting
    assert all(
        e.reason is WaitReason.EPOCH_KEY
        for e in events
        if isinstance(e, Waiting) and e.entry_id in {entry.id for entry in new_epoch}
    )
    assert "After Sam left" not in titles(sam)
    applied = {e.entry_id for e in events if getattr(e, "content", None) is ContentState.APPLIED}
    assert not applied & {entry.id for entry in new_epoch}
    assert not sam.replica.status().has_current_key


# -- a record built to crash the reader ----------------------------------------------------


async def test_a_record_built_to_crash_the_reader_is_refused(
    trio: tuple[str, Person, Person, Person],
) -> None:
    """Found by the atheris harness: a record whose ``type`` is not text made the
    reader raise TypeError, so a partner could break the other's app for good by
    writing one into their own voice."""
    relay_url, alex, laptop, sam = trio
    alex.agreements.create_item(kind="limit", level="no", title="Still readable")
    await alex.sync()
    before = full_state(alex)
    bad = encoding.encode({"v": 1, "type": [[["version"]]], "member": sam.member, "at": 1})
    key = record_hash(bad).hex()
    doc = VoiceDocument(voice_name(sam.member))
    with doc.local_edit() as updates:
        doc.put_record(key, bad)
    raw = forge(sam, {voice_name(sam.member): updates[0]})
    await push(relay_url, sam, raw)
    for device in (alex, laptop):
        report = await device.sync()
        [problem] = report.problems
        assert isinstance(problem, Refused) and problem.code is ErrorCode.MALFORMED
        assert full_state(device) == before
    sam.agreements.create_item(kind="limit", level="ask", title="Next")
    await sam.sync()
    await alex.sync()
    assert "Next" in titles(alex)
