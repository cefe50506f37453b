"""Benchmark 2: relay ingest. Entries per second accepted, verified and stored.

Measured, in the same run, on SQLite and on PostgreSQL:

* **relay**: one device appends a run of entries to a relay process over HTTP, in
  batches of 1 and of 100, one request after the other (what a device does when it
  pushes its outbox). Each request is authenticated, size-checked, decoded, its
  entries' signatures verified, the space locked, chains checked, rows stored and
  committed, and the fan-out told. Every entry must come back ``stored``.
* **limit**: a plain SQLAlchemy Core ``INSERT`` loop of the very same rows into the
  very same table of a fresh database of the same kind, through the relay's own
  engine settings (so the same durability: WAL and ``synchronous=FULL`` on SQLite),
  one transaction per batch of the same size.

The relay and the limits are measured in turn, each the best of ``repeats`` runs. The
ratio is relay rate / insert rate; the target is at least 50% for batches of 100.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import insert

from bench.feeds import TYPICAL_PLAINTEXT, solo_space
from bench.machine import Timing, ratio
from bench.relays import fresh_database, relay_on
from client_lib.relay_client import RelayClient
from protocol.entry import Entry, entry_id
from server.models import Space, StoredEntry
from server.store import open_database

TARGET_RATIO = 0.5


class IngestFailed(RuntimeError):
    """The relay did not store every entry it was sent."""


@dataclass(frozen=True, slots=True, kw_only=True)
class IngestSettings:
    #: (entries per batch, entries in the run)
    runs: tuple[tuple[int, int], ...] = ((1, 2_000), (100, 20_000))
    plaintext: int = TYPICAL_PLAINTEXT
    #: Each measurement is the best of this many, the relay and its limits in turn.
    repeats: int = 2


async def relay_rate(url: str, *, batch: int, count: int, plaintext: int) -> Timing:
    """Append ``count`` new entries to a new space on the relay at ``url``.

    Raises:
        IngestFailed: the relay did not answer ``stored`` for every entry.
        RelayCallError, RelayUnreachable: the relay refused a call or went away.
    """
    feed, founding = solo_space()
    entries = feed.many(count, plaintext)
    async with RelayClient(url, device_key=feed.key, space=feed.space) as client:
        await client.create_space(founding)
        await client.token()
        wall, cpu = time.perf_counter(), time.process_time()
        stored = 0
        for start in range(0, count, batch):
            results = await client.append(entries[start : start + batch])
            stored += sum(1 for result in results if result.status == "stored")
        timing = Timing(wall=time.perf_counter() - wall, cpu=time.process_time() - cpu, runs=1)
    if stored != count:
        raise IngestFailed(f"the relay stored {stored} of {count} entries")
    return timing


def stored_rows(space: bytes, entries: list[bytes]) -> list[dict[str, Any]]:
    """The rows the relay stores for ``entries`` (server.spaces._store's columns)."""
    rows = []
    for position, raw in enumerate(entries, start=2):
        entry = Entry.from_bytes(raw)
        rows.append(
            {
                "space_id": space,
                "position": position,
                "device": entry.device,
                "seq": entry.seq,
                "entry_id": entry_id(raw),
                "type": entry.type.value,
                "epoch": entry.epoch,
                "body_size": len(entry.body),
                "received_at": int(time.time()),
                "data": raw,
            }
        )
    return rows


async def insert_rate(
    url: str, *, batch: int, count: int, plaintext: int, many: bool = False
) -> Timing:
    """Insert the rows of ``count`` entries with a plain Core INSERT loop, one
    transaction per ``batch`` rows; with ``many``, one INSERT per batch with all its
    rows as parameters (the driver's executemany) instead of one per row."""
    feed, _ = solo_space()
    rows = stored_rows(feed.space, feed.many(count, plaintext))
    db = open_database(url)
    statement = insert(StoredEntry)
    try:
        async with db.write_engine.begin() as connection:
            await connection.execute(
                insert(Space),
                {"id": feed.space, "created_at": 0, "last_position": 0},
            )
        wall, cpu = time.perf_counter(), time.process_time()
        for start in range(0, count, batch):
            async with db.write_engine.begin() as connection:
                if many:
                    await connection.execute(statement, rows[start : start + batch])
                else:
                    for row in rows[start : start + batch]:
                        await connection.execute(statement, row)
        return Timing(wall=time.perf_counter() - wall, cpu=time.process_time() - cpu, runs=1)
    finally:
        await db.dispose()


def _fastest(timings: list[Timing]) -> Timing:
    fastest = min(timings, key=lambda timing: timing.wall)
    return Timing(wall=fastest.wall, cpu=fastest.cpu, runs=len(timings))


async def run(
    *,
    backends: tuple[str, ...],
    settings: IngestSettings,
    directory: Path,
    log: Callable[[str], None],
) -> dict[str, Any]:
    """Benchmark 2 on each backend."""
    rows: list[dict[str, Any]] = []
    for backend in backends:
        async with relay_on(backend, directory / f"ingest-{backend}") as relays:
            relay_url = relays[0].url
            for batch, count in settings.runs:
                # The relay and its limits run in turn, best of ``repeats`` each, so
                # that a burst of other load on the machine hits them alike.
                found: dict[str, list[Timing]] = {}
                for _ in range(settings.repeats):
                    found.setdefault("relay", []).append(
                        await relay_rate(
                            relay_url, batch=batch, count=count, plaintext=settings.plaintext
                        )
                    )
                    for name, many in (("insert_loop", False), ("executemany", True)):
                        if many and batch == 1:
                            continue
                        where = directory / f"insert-{backend}"
                        async with fresh_database(backend, where) as url:
                            found.setdefault(name, []).append(
                                await insert_rate(
                                    url,
                                    batch=batch,
                                    count=count,
                                    plaintext=settings.plaintext,
                                    many=many,
                                )
                            )
                best = {name: _fastest(timings) for name, timings in found.items()}
                measured = best.pop("relay")
                limits = best
                relay_per_s = count / measured.wall
                row: dict[str, Any] = {
                    "backend": backend,
                    "batch": batch,
                    "entries": count,
                    "relay": measured.to_json() | {"entries_per_s": round(relay_per_s, 1)},
                }
                for name, limit in limits.items():
                    limit_per_s = count / limit.wall
                    row[name] = limit.to_json() | {"entries_per_s": round(limit_per_s, 1)}
                    row[f"ratio_vs_{name}"] = ratio(relay_per_s, limit_per_s)
                row["ratio"] = row["ratio_vs_insert_loop"]
                rows.append(row)
                log(
                    f"  {backend}, batches of {batch}: relay {relay_per_s:.0f}/s, "
                    f"INSERT loop {row['insert_loop']['entries_per_s']:.0f}/s "
                    f"({row['ratio']:.2f})"
                )
    return {"target_ratio": TARGET_RATIO, "plaintext_bytes": settings.plaintext, "rows": rows}
