"""Benchmark 6: scale-out. Two relay processes on one PostgreSQL against twice one.

The same closed-loop load runs on fresh PostgreSQL databases: ``writers`` devices,
each in a space of its own, each appending its entries in batches one request after
the other, as fast as the relay answers. Either all writers talk to one relay
process, or half of them talk to each of two relay processes sharing the database
(fan-out between them goes through LISTEN/NOTIFY). The two set-ups run in turn,
``repeats`` times each, and the best of each is kept. The figure is

    throughput with two processes / (2 x throughput with one)

1.0 would be perfect scaling. The machine's busy share is reported with it: on a
machine whose cores are all busy (relays, PostgreSQL and this load generator share
them) a second process has nothing to run on, and the ratio says more about the
machine than about the relay.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from bench.feeds import TYPICAL_PLAINTEXT, Feed, solo_space
from bench.ingest import IngestFailed
from bench.machine import MachineLoad, ratio
from bench.relays import RelayProcess, relay_on
from client_lib.relay_client import RelayClient


@dataclass(frozen=True, slots=True, kw_only=True)
class ScaleOutSettings:
    writers: int = 16
    batch: int = 10
    #: Entries each writer appends.
    entries: int = 1_000
    #: One process, then two, this many times in turn; the best of each is kept.
    repeats: int = 2


async def _writer(
    client: RelayClient, entries: list[bytes], batch: int, start: asyncio.Event
) -> int:
    await start.wait()
    stored = 0
    for first in range(0, len(entries), batch):
        results = await client.append(entries[first : first + batch])
        stored += sum(1 for result in results if result.status == "stored")
    return stored


async def throughput(relays: list[RelayProcess], settings: ScaleOutSettings) -> dict[str, Any]:
    """Entries per second stored by ``relays`` under the closed-loop load.

    Raises:
        IngestFailed: the relays did not store every entry.
    """
    spaces: list[tuple[Feed, bytes]] = [solo_space() for _ in range(settings.writers)]
    plans = [feed.many(settings.entries, TYPICAL_PLAINTEXT) for feed, _ in spaces]
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        clients = []
        for index, (feed, founding) in enumerate(spaces):
            relay = relays[index % len(relays)]
            client = RelayClient(relay.url, device_key=feed.key, space=feed.space, session=session)
            await client.create_space(founding)
            await client.token()
            clients.append(client)
        start = asyncio.Event()
        tasks = [
            asyncio.create_task(_writer(client, plan, settings.batch, start))
            for client, plan in zip(clients, plans, strict=True)
        ]
        relay_cpu = [relay.cpu_seconds() for relay in relays]
        machine = MachineLoad()
        began = time.perf_counter()
        start.set()
        stored = sum(await asyncio.gather(*tasks))
        took = time.perf_counter() - began
        busy = machine.share()
        relay_cpu = [
            relay.cpu_seconds() - cpu for relay, cpu in zip(relays, relay_cpu, strict=True)
        ]
    total = settings.writers * settings.entries
    if stored != total:
        raise IngestFailed(f"the relays stored {stored} of {total} entries")
    return {
        "processes": len(relays),
        "entries": total,
        "seconds": round(took, 3),
        "entries_per_s": round(total / took, 1),
        "relay_cpu_share": [round(cpu / took, 2) for cpu in relay_cpu],
        "machine_busy_share": busy,
    }


async def run(
    *, settings: ScaleOutSettings, directory: Path, log: Callable[[str], None]
) -> dict[str, Any]:
    """Benchmark 6 (PostgreSQL only)."""
    runs: dict[int, list[dict[str, Any]]] = {1: [], 2: []}
    for attempt in range(settings.repeats):
        for count in (1, 2):
            where = directory / f"scaleout-{count}-{attempt}"
            async with relay_on("postgres", where, count=count) as relays:
                found = await throughput(relays, settings)
            runs[count].append(found)
            log(
                f"  {count} relay process(es) on one PostgreSQL: "
                f"{found['entries_per_s']:.0f} entries/s, "
                f"machine busy {found['machine_busy_share']:.0%}"
            )
    measured = {
        count: max(found, key=lambda item: item["entries_per_s"]) | {"runs": len(found)}
        for count, found in runs.items()
    }
    return {
        "writers": settings.writers,
        "batch": settings.batch,
        "one": measured[1],
        "two": measured[2],
        "ratio": ratio(measured[2]["entries_per_s"], 2 * measured[1]["entries_per_s"]),
        "speedup": ratio(measured[2]["entries_per_s"], measured[1]["entries_per_s"]),
    }
