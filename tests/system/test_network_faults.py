"""Devices syncing through a loopback proxy that cuts, delays and stalls connections.

Three devices (Alex's phone and laptop, and Sam's phone) write concurrently while every
connection to the relay goes through :class:`~tests.system.fault_proxy.FaultProxy`.
Alex's devices sync in one-shot rounds; Sam's follows live (``SyncEngine.run`` on the
WebSocket, which the proxy also breaks). Then the network heals and the devices must
converge, with nothing lost and no false alarm: every title anyone wrote is on every
device, the item states agree, every have-vector equals the relay's heads, every
outbox is empty, and no device reports a problem.

Set ``ACCORD_FAULT_SEED`` to replay a run with another seed.
"""

from __future__ import annotations

import asyncio
import os
import random
from pathlib import Path
from typing import Any

import aiohttp

from client_lib.errors import NotAllowedError
from client_lib.relay_client import RelayUnreachable
from client_lib.sync import SyncEngine
from tests.system.fault_proxy import FaultProxy
from tests.system.partners import (
    Person,
    couple,
    full_state,
    join_device,
    relay_entries,
    sync_until_converged,
    titles,
)

SEED = int(os.environ.get("ACCORD_FAULT_SEED", "20240607"))
ACTS_PER_DEVICE = 18
#: Calls give up after this long, so a stalled connection turns into a retry.
CALL_TIMEOUT = aiohttp.ClientTimeout(total=4)


def act(person: Person, rng: random.Random, step: int, written: set[str]) -> None:
    """One random change by ``person``: create, change, affirm, pause, resume or plan."""
    agreements = person.agreements
    items = agreements.items()
    choice = rng.random()
    if not items or choice < 0.35:
        title = f"{person.name} item {step}"
        agreements.create_item(kind="limit", level=rng.choice(["no", "ask", "yes"]), title=title)
        written.add(title)
    elif choice < 0.6:
        view = rng.choice(items)
        title = f"{person.name} change {step}"
        agreements.change_item(view.item, level=rng.choice(["no", "ask", "yes"]), title=title)
        written.add(title)
    elif choice < 0.8:
        view = rng.choice(items)
        head = rng.choice(view.heads)
        if person.member not in head.endorsed_by:
            agreements.affirm(head.id)
        else:
            person.handle.plan.set_wording(f"{person.name} wording {step}")
    elif choice < 0.9:
        try:
            agreements.resume()
        except NotAllowedError:
            agreements.pause()
    else:
        person.handle.plan.set_wording(f"{person.name} wording {step}")


async def one_shot_writer(
    person: Person, proxy: FaultProxy, seed: int, written: set[str], outcomes: dict[str, int]
) -> None:
    rng = random.Random(seed)
    # A new connection per call, so each call draws its own fate at the proxy.
    connector = aiohttp.TCPConnector(force_close=True)
    async with aiohttp.ClientSession(timeout=CALL_TIMEOUT, connector=connector) as session:
        engine = person.engine(session=session)
        for step in range(ACTS_PER_DEVICE):
            act(person, rng, step, written)
            try:
                await engine.sync()
                outcomes["synced"] += 1
            except RelayUnreachable:
                outcomes["unreachable"] += 1
            if rng.random() < 0.1:
                proxy.cut_all()  # breaks Sam's live WebSocket too
            await asyncio.sleep(rng.uniform(0, 0.05))


async def live_writer(person: Person, engine: SyncEngine, seed: int, written: set[str]) -> None:
    rng = random.Random(seed)
    for step in range(ACTS_PER_DEVICE):
        act(person, rng, step, written)
        engine.poke()
        await asyncio.sleep(rng.uniform(0.02, 0.12))


async def test_devices_converge_through_cuts_delays_and_stalls(
    tmp_path: Path, relay_pool: Any
) -> None:
    relay = relay_pool.get("sqlite")
    alex, sam = await couple(tmp_path, relay.url)
    laptop = await join_device(alex, tmp_path, "alex-laptop")
    people = [alex, laptop, sam]
    await sync_until_converged(people, relay.url)

    written: set[str] = set()
    outcomes: dict[str, int] = {"synced": 0, "unreachable": 0}
    async with FaultProxy("127.0.0.1", relay.port, seed=SEED) as proxy:
        for person in people:
            person.use_relay(proxy.url)
        stop = asyncio.Event()
        session = aiohttp.ClientSession(timeout=CALL_TIMEOUT)
        live = SyncEngine(sam.replica, device_key=sam.key, session=session)
        runner = asyncio.create_task(live.run(stop, rng=random.Random(SEED)))
        try:
            await asyncio.gather(
                one_shot_writer(alex, proxy, SEED + 1, written, outcomes),
                one_shot_writer(laptop, proxy, SEED + 2, written, outcomes),
                live_writer(sam, live, SEED + 3, written),
            )
            faults = dict(proxy.fates)
            proxy.heal()
            proxy.cut_all()
            # Only Alex's devices are synced by hand: Sam's live engine must catch up,
            # and push what Sam wrote, by itself.
            heads = await sync_until_converged(
                people, proxy.url, syncing=[alex, laptop], timeout=90
            )
        finally:
            stop.set()
            live_report = await asyncio.wait_for(runner, 30)
            await live.close()
            await session.close()

    context = f"seed {SEED}, faults {faults}, outcomes {outcomes}"
    # The proxy really did break things, and some syncs really failed.
    assert faults.get("cut", 0) + faults.get("stall_cut", 0) >= 3, context
    assert faults.get("stall", 0) >= 1 and faults.get("delay", 0) >= 1, context
    assert outcomes["unreachable"] >= 1, context
    # Sam's live engine both pushed Sam's writes and received the others'.
    assert live_report.pushed >= 1 and live_report.received >= 1, context
    # Nothing lost: every title written is on every device, and on the relay.
    for person in people:
        missing = written - titles(person)
        assert not missing, (person.name, sorted(missing), context)
    # The same state everywhere, equal to the relay's heads, nothing left to push.
    for person in people:
        assert person.replica.have_vector() == heads, (person.name, context)
        assert person.replica.pending_outbox() == [], (person.name, context)
        assert full_state(person) == full_state(alex), (person.name, context)
    stored = await relay_entries(relay.url, alex)
    assert len(stored) == sum(heads.values()) == len(set(stored)), context
    # Faults are not tampering: no device raised an alarm.
    for person in people:
        assert person.replica.problems() == [], (person.name, person.replica.problems())
