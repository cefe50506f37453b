"""A tampering relay: every trick is named by the clients and none is merged.

The relay here is the real one behind :class:`~tests.system.tamper_proxy.TamperingRelay`,
which rewrites its answers (a flipped ciphertext bit, a replayed entry, a dropped entry,
a reordered and held-back feed), or the real one restarted on an older copy of its own
SQLite database (a rollback). For each, the victim's sync report and its stored
problems name what happened with the protocol's code, and its item states do not move
because of the bad data. Once the relay stops lying, everything converges.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from conftest import copy_sqlite_database, make_database

from client_lib.events import Duplicate, Refused, RollbackDetected, Waiting, WaitReason, Withholding
from client_lib.sync import SyncEngine, set_relay_url
from protocol.entry import entry_id
from protocol.errors import ErrorCode
from tests.system.partners import (
    Person,
    couple,
    full_state,
    join_device,
    relay_heads,
    sync_until_converged,
    titles,
)
from tests.system.tamper_proxy import Drop, FlipCiphertext, Reorder, Replay, TamperingRelay


def new_entries(person: Person, after_seq: int) -> list[bytes]:
    """``person``'s own entries after ``after_seq``, encoded."""
    return person.replica.feed_entries(person.device, after_seq=after_seq)


def head_of(person: Person) -> int:
    return person.replica.have_vector().get(person.device, 0)


def codes(person: Person) -> list[str]:
    return [row.code for row in person.replica.problems()]


async def test_a_flipped_ciphertext_bit_is_refused_and_never_merged(
    tmp_path: Path, relay_pool: Any
) -> None:
    relay = relay_pool.get("sqlite")
    alex, sam = await couple(tmp_path, relay.url)
    async with TamperingRelay(relay.url) as hostile:
        alex.use_relay(hostile.url)
        before = full_state(alex)
        start = head_of(sam)
        sam.agreements.create_item(kind="permission", level="yes", title="Flip me")
        await sam.sync()
        [target] = [entry_id(raw) for raw in new_entries(sam, start)]
        tamper = FlipCiphertext([target])
        hostile.tamper = tamper

        report = await alex.sync()
        assert tamper.served == 1
        [problem] = report.problems
        assert isinstance(problem, Refused) and problem.code is ErrorCode.BAD_SIGNATURE
        assert (problem.device, problem.seq) == (sam.device, start + 1)
        assert full_state(alex) == before and "Flip me" not in titles(alex)
        assert codes(alex) == ["bad_signature"]
        # Served again, it is not reported again, and still not used.
        again = await alex.sync()
        assert again.problems == [] and "Flip me" not in titles(alex)

        hostile.tamper = None  # the relay stops lying: the real entry counts
        await alex.sync()
        assert "Flip me" in titles(alex) and full_state(alex) == full_state(sam)


async def test_replayed_entries_change_nothing(tmp_path: Path, relay_pool: Any) -> None:
    relay = relay_pool.get("sqlite")
    alex, sam = await couple(tmp_path, relay.url)
    start = head_of(alex)
    alex.agreements.pause()
    await alex.sync()
    [pause_entry] = new_entries(alex, start)
    alex.agreements.resume()
    await alex.sync()
    await sam.sync()
    assert not sam.agreements.pause_state().active
    # An entry of another space of Alex's, signed by the same device.
    other = alex.account.create_space("friends")
    set_relay_url(other.replica, relay.url)
    async with SyncEngine(other.replica, device_key=alex.key) as engine:
        await engine.sync()
    foreign = other.replica.feed_entries(alex.device)[-1]

    async with TamperingRelay(relay.url) as hostile:
        sam.use_relay(hostile.url)
        hostile.tamper = Replay([pause_entry, foreign])
        before = full_state(sam)
        report = await sam.sync()
    duplicates = [e for e in report.events if isinstance(e, Duplicate) and e.entry_id]
    assert [e.entry_id for e in duplicates] == [entry_id(pause_entry)]
    [problem] = report.problems
    assert isinstance(problem, Refused) and problem.code is ErrorCode.WRONG_SPACE
    assert problem.entry_id == entry_id(foreign)
    # The replayed pause does not pause anything again, and nothing else moved.
    assert not sam.agreements.pause_state().active
    assert full_state(sam) == before
    assert codes(sam) == ["wrong_space"]


async def test_a_dropped_entry_waits_then_is_named_withholding(
    tmp_path: Path, relay_pool: Any
) -> None:
    relay = relay_pool.get("sqlite")
    alex, sam = await couple(tmp_path, relay.url)
    laptop = await join_device(alex, tmp_path, "alex-laptop")
    await sync_until_converged([alex, sam, laptop], relay.url)
    start = head_of(sam)
    for title in ("One", "Two", "Three"):
        sam.agreements.create_item(kind="limit", level="no", title=title)
    await sam.sync()
    await alex.sync()  # Alex's phone reads all of Sam's feed...
    alex.agreements.create_item(kind="limit", level="ask", title="Read it all")
    await alex.sync()  # ...and says so in its next entry's seen heads.
    _one, two, _three = new_entries(sam, start)

    async with TamperingRelay(relay.url) as hostile:
        laptop.use_relay(hostile.url)
        tamper = Drop([entry_id(two)])
        hostile.tamper = tamper
        before = full_state(laptop)
        report = await laptop.sync()
        assert tamper.dropped == 1
        waiting = {(e.device, e.seq, e.reason) for e in report.events if isinstance(e, Waiting)}
        assert (sam.device, start + 3, WaitReason.GAP) in waiting
        assert (alex.device, head_of(alex), WaitReason.CAUSAL) in waiting
        [withheld] = report.problems
        assert isinstance(withheld, Withholding) and withheld.code is ErrorCode.FEED_GAP
        assert (withheld.device, withheld.claimed_seq, withheld.have_seq) == (
            sam.device,
            start + 3,
            start + 1,
        )
        # Only what comes before the gap is used.
        seen = titles(laptop)
        assert "One" in seen and not {"Two", "Three", "Read it all"} & seen
        assert full_state(laptop) != before
        [status] = [d for d in laptop.replica.status().devices if d.device == sam.device]
        assert status.withheld_up_to == start + 3 and status.have_seq == start + 1
        assert codes(laptop) == ["feed_gap"]

        hostile.tamper = None
        await laptop.sync()
    assert {"Two", "Three", "Read it all"} <= titles(laptop)
    assert full_state(laptop) == full_state(alex)


async def test_a_reordered_feed_is_used_in_order_only(tmp_path: Path, relay_pool: Any) -> None:
    relay = relay_pool.get("sqlite")
    alex, sam = await couple(tmp_path, relay.url)
    start = head_of(alex)
    item = alex.agreements.create_item(kind="permission", level="yes", title="First").item
    alex.agreements.change_item(item, level="ask", title="Narrowed")
    alex.agreements.change_item(item, level="no", title="Closed")
    alex.agreements.pause()
    await alex.sync()
    first, *later = new_entries(alex, start)
    assert len(later) == 3

    async with TamperingRelay(relay.url) as hostile:
        sam.use_relay(hostile.url)
        tamper = Reorder([entry_id(first)], hold_for=1, seed=5)
        hostile.tamper = tamper
        before = full_state(sam)
        report = await sam.sync()
        gaps = sorted(e.seq for e in report.events if isinstance(e, Waiting))
        assert gaps == [start + 2, start + 3, start + 4]
        assert report.problems == []
        assert full_state(sam) == before  # nothing past the hole was used
        assert not sam.agreements.pause_state().active

        await sam.sync()  # the held entry arrives, after its successors
        assert tamper.answers == 2
    assert full_state(sam) == full_state(alex)
    assert sam.agreements.pause_state().active
    assert codes(sam) == []


async def test_an_older_database_is_named_rollback_and_loses_nothing(
    tmp_path: Path, start_relay: Any
) -> None:
    url, _cleanup = make_database("sqlite", tmp_path / "db")
    relay = start_relay(url)
    alex, sam = await couple(tmp_path, relay.url)
    alex.agreements.create_item(kind="limit", level="no", title="Old news")
    await alex.sync()
    await sam.sync()
    relay.stop()
    restore = copy_sqlite_database(url, tmp_path / "old-copy")
    relay.start()

    # Life goes on: both write, and both hold everything.
    alex.agreements.create_item(kind="limit", level="ask", title="Alex later")
    sam.agreements.create_item(kind="permission", level="yes", title="Sam later")
    sam.agreements.pause()
    await sync_until_converged([alex, sam], relay.url)
    states = {person.name: full_state(person) for person in (alex, sam)}
    high = {person.name: head_of(person) for person in (alex, sam)}

    relay.stop()
    restore()  # the relay comes back on the older copy of its database
    relay.start()
    served = await relay_heads(relay.url, alex)
    assert served[alex.device] < high["alex"] and served[sam.device] < high["sam"]

    for person in (alex, sam):
        report = await person.sync()
        rolled = {
            (p.device, p.stored_seq, p.reported_seq)
            for p in report.problems
            if isinstance(p, RollbackDetected)
        }
        assert rolled, (person.name, report.problems)
        assert all(isinstance(p, RollbackDetected) for p in report.problems), report.problems
        for device, stored, reported in rolled:
            assert reported == served[device] and stored > reported
        assert ErrorCode.FEED_GAP.value in codes(person)
        # Nothing the device held was given up because of what the relay says.
        assert full_state(person) == states[person.name]

    # The devices put back their own lost entries, and new writes go through again.
    alex.agreements.create_item(kind="limit", level="no", title="After the rollback")
    heads = await sync_until_converged([alex, sam], relay.url)
    assert heads[alex.device] == high["alex"] + 1 and heads[sam.device] == high["sam"]
    assert {"Old news", "Alex later", "Sam later", "After the rollback"} <= titles(sam)
