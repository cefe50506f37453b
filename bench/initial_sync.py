"""Benchmark 5: initial sync. A new device joins a space with a year of history.

A couple's history (see :mod:`bench.history`; a year of use is estimated at 20,000
entries) is put on a relay process: the set-up entries in order, then both partners'
feeds as two concurrent streams of batches, so the relay's arrival order interleaves
them as real use would. Sam's key envelope for the new device is put on the relay too.

The time measured runs from the new device's first sync, once pairing has handed it
its roster entry (the moment ``join`` returns), to its first complete state: the
sync engine fetched the key envelope and every page of entries, ingested them
(verify, chain, roster, decrypt, merge, store), checked the relay's heads, and the
agreements view was computed. Every record of the history must then be readable.

Limits measured in the same run: fetching every page from the relay without doing
anything with them, plus the raw Ed25519 and AEAD cost of the same entries. The
ratio is sync time / (fetch + raw crypto).
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.history import History
from bench.machine import ratio
from bench.relays import relay_on
from bench.replay import ReplayIncomplete, _fresh_device, check_complete, raw_limit
from bench.sweep import sweep
from client_lib.keystore import SpaceKind
from client_lib.relay_client import RelayClient
from client_lib.sync import SyncEngine, set_relay_url
from protocol.entry import Entry

YEAR_OF_ENTRIES = 20_000
_UPLOAD_BATCH = 100


@dataclass(frozen=True, slots=True, kw_only=True)
class InitialSyncSettings:
    #: Sizes tried with both partners writing, smallest first, within the budget.
    sizes: tuple[int, ...] = (250, 500, 1_000, 2_000, 5_000, 10_000, YEAR_OF_ENTRIES)
    budget_s: float = 120.0
    #: The one-partner history is synced at this size (a year of use).
    one_writer_size: int = YEAR_OF_ENTRIES


async def upload(history: History, url: str) -> None:
    """Put ``history`` and the new device's key envelope on the relay at ``url``."""
    alex_key, sam_key = history.writer_keys
    async with (
        RelayClient(url, device_key=alex_key, space=history.space) as alex,
        RelayClient(url, device_key=sam_key, space=history.space) as sam,
    ):
        clients = {alex_key.public: alex, sam_key.public: sam}
        await alex.create_space(history.set_up[0])
        for raw in history.set_up[1:]:
            await clients[Entry.from_bytes(raw).device].append([raw])
        await sam.put_envelopes(list(history.envelopes))
        feeds: dict[bytes, list[bytes]] = {device: [] for device in clients}
        for raw in history.generated:
            feeds[Entry.from_bytes(raw).device].append(raw)

        async def stream(client: RelayClient, entries: list[bytes]) -> None:
            for start in range(0, len(entries), _UPLOAD_BATCH):
                await client.append(entries[start : start + _UPLOAD_BATCH])

        await asyncio.gather(*(stream(clients[d], entries) for d, entries in feeds.items()))


async def fetch_only(history: History, url: str) -> float:
    """Seconds to fetch every page of the space from the relay, doing nothing else.

    Raises:
        ReplayIncomplete: the relay gave back another number of entries.
    """
    async with RelayClient(url, device_key=history.joiner_key, space=history.space) as client:
        await client.token()
        began = time.perf_counter()
        fetched = 0
        async for page in client.fetch_all({}):
            fetched += len(page.entries)
        took = time.perf_counter() - began
    if fetched != len(history.entries):
        raise ReplayIncomplete(f"the relay gave {fetched} of {len(history.entries)} entries")
    return took


async def first_sync(history: History, url: str) -> dict[str, Any]:
    """A new device's first sync until its first complete state, timed.

    Raises:
        ReplayIncomplete: the sync reported a problem, or a record is missing after it.
    """
    with tempfile.TemporaryDirectory(prefix="accord-bench-join-") as directory:
        account = _fresh_device(history, Path(directory))
        try:
            replica = account.adopt_space(history.space, kind=SpaceKind.SHARED, label="us")
            set_relay_url(replica, url)
            began = time.perf_counter()
            async with SyncEngine(replica, device_key=history.joiner_key) as engine:
                report = await engine.sync()
            synced = time.perf_counter()
            items = account.space(history.space).agreements.items()
            done = time.perf_counter()
            if report.problems:
                raise ReplayIncomplete(f"the first sync reported {report.problems[:3]}")
            check_complete(account, history)
        finally:
            account.close()
    return {
        "seconds": round(done - began, 3),
        "sync_s": round(synced - began, 3),
        "agreements_view_s": round(done - synced, 3),
        "items": len(items),
        "received": report.received,
    }


async def measure(history: History, directory: Path) -> dict[str, Any]:
    """Upload ``history`` to a fresh SQLite relay; time fetch-only and a first sync."""
    async with relay_on("sqlite", directory) as relays:
        url = relays[0].url
        await upload(history, url)
        fetch_s = await fetch_only(history, url)
        synced = await first_sync(history, url)
    crypto = raw_limit(history, repeats=3)
    limit = fetch_s + crypto.wall
    return synced | {
        "entries": len(history.entries),
        "data_entries": len(history.generated),
        "fetch_only_s": round(fetch_s, 3),
        "raw_crypto_s": round(crypto.wall, 3),
        "limit_s": round(limit, 3),
        "ratio": ratio(synced["seconds"], limit),
    }


def run(
    *,
    two_writers: History,
    one_writer: History,
    settings: InitialSyncSettings,
    directory: Path,
    log: Callable[[str], None],
) -> dict[str, Any]:
    """Benchmark 5 (blocking: each measurement runs its own event loop)."""

    def one(label: str, history: History, size: int) -> tuple[float, dict[str, Any]]:
        row = asyncio.run(measure(history.prefix(size), directory / f"join-{label}-{size}"))
        log(
            f"  {label}, {size} entries: first complete state in {row['seconds']:.1f} s "
            f"(fetch {row['fetch_only_s']:.1f} s + crypto {row['raw_crypto_s']:.1f} s; "
            f"{row['ratio']}x)"
        )
        return row["seconds"], row

    sizes = [size for size in settings.sizes if size <= len(two_writers.generated)]
    both = sweep(sizes, budget_s=settings.budget_s, measure=lambda n: one("both", two_writers, n))
    size = min(settings.one_writer_size, len(one_writer.generated))
    _, single = one("one", one_writer, size)
    return {
        "year_of_entries": YEAR_OF_ENTRIES,
        "both_partners_writing": both.to_json(),
        "one_partner_writing": single,
    }
