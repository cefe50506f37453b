"""SIGKILL the relay during heavy appends from real clients, then restart it.

Alex writes and syncs in one-shot rounds as fast as it can; Sam writes and pushes live
(``SyncEngine.run`` on the WebSocket). The relay process is killed with SIGKILL twice
while both write, and restarted each time. An entry is *acknowledged* once the client
removed it from its outbox (the relay answered that it stored it): every acknowledged
entry must be on the relay after each restart. Then the devices converge: the outboxes
drain, and both hold exactly what the relay holds. On SQLite and on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

import aiohttp

from client_lib.relay_client import RelayCallError, RelayUnreachable
from client_lib.sync import SyncEngine
from protocol.entry import entry_id
from tests.system.partners import (
    Person,
    couple,
    full_state,
    relay_entries,
    sync_until_converged,
    titles,
)

CALL_TIMEOUT = aiohttp.ClientTimeout(total=5)
KILLS = 2


def acknowledged(person: Person) -> set[bytes]:
    """This device's entries the relay said it stored (no longer in the outbox)."""
    feed = {entry_id(raw) for raw in person.replica.feed_entries(person.device)}
    return feed - {item.id for item in person.replica.pending_outbox()}


async def write_and_sync(
    person: Person, stop: asyncio.Event, written: set[str], errors: list[str]
) -> None:
    """Write an item, sync, again, until ``stop``; a dead relay only means retrying."""
    rng = random.Random(person.name)
    async with aiohttp.ClientSession(timeout=CALL_TIMEOUT) as session:
        engine = person.engine(session=session)
        step = 0
        while not stop.is_set():
            for _ in range(rng.randint(1, 4)):
                title = f"{person.name} {step}"
                person.agreements.create_item(kind="limit", level="no", title=title)
                written.add(title)
                step += 1
            try:
                await engine.sync()
            except RelayUnreachable:
                await asyncio.sleep(0.05)
            except RelayCallError as error:  # e.g. "unavailable" while the relay stops
                errors.append(error.code)
                await asyncio.sleep(0.05)
            await asyncio.sleep(0)


async def write_live(
    person: Person, engine: SyncEngine, stop: asyncio.Event, written: set[str]
) -> None:
    step = 0
    while not stop.is_set():
        title = f"{person.name} {step}"
        person.agreements.create_item(kind="limit", level="ask", title=title)
        written.add(title)
        step += 1
        engine.poke()
        await asyncio.sleep(0.005)


async def wait_for_acknowledged(people: list[Person], at_least: int, timeout: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while any(len(acknowledged(person)) < at_least for person in people):
        assert loop.time() < deadline, [len(acknowledged(p)) for p in people]
        await asyncio.sleep(0.02)


async def test_sigkill_during_heavy_appends_keeps_every_acknowledged_entry(
    tmp_path: Path, relay: Any
) -> None:
    alex, sam = await couple(tmp_path, relay.url)
    people = [alex, sam]
    written: set[str] = set()
    errors: list[str] = []
    loop = asyncio.get_running_loop()
    session = aiohttp.ClientSession(timeout=CALL_TIMEOUT)
    live = SyncEngine(sam.replica, device_key=sam.key, session=session)
    stop_live = asyncio.Event()
    runner = asyncio.create_task(live.run(stop_live, rng=random.Random(7)))
    try:
        for round_ in range(KILLS):
            stop = asyncio.Event()
            writers = [
                asyncio.create_task(write_and_sync(alex, stop, written, errors)),
                asyncio.create_task(write_live(sam, live, stop, written)),
            ]
            before = min(len(acknowledged(person)) for person in people)
            await wait_for_acknowledged(people, before + 25, timeout=60)
            await loop.run_in_executor(None, relay.kill)  # mid-append, with no warning
            await asyncio.sleep(0.3)  # the clients keep writing, offline now
            stop.set()
            await asyncio.gather(*writers)
            # What the clients count as acknowledged now was answered before the kill.
            promised = {person.name: acknowledged(person) for person in people}
            pending = sum(len(person.replica.pending_outbox()) for person in people)
            assert pending > 0, "some writes should have been left offline"
            await loop.run_in_executor(None, relay.start)
            stored = {entry_id(raw) for raw in await relay_entries(relay.url, alex)}
            for person in people:
                lost = promised[person.name] - stored
                assert not lost, (round_, person.name, len(lost), relay.database_url)
        heads = await sync_until_converged(people, relay.url, syncing=[alex], timeout=60)
    finally:
        stop_live.set()
        await asyncio.wait_for(runner, 30)
        await live.close()
        await session.close()

    assert set(errors) <= {"unavailable"}, errors
    for person in people:
        assert written <= titles(person), sorted(written - titles(person))[:5]
        assert person.replica.have_vector() == heads
        assert full_state(person) == full_state(alex)
        assert person.replica.problems() == [], person.replica.problems()
    stored_now = await relay_entries(relay.url, alex)
    assert len(stored_now) == len(set(stored_now)) == sum(heads.values())
