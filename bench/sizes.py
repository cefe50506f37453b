"""Benchmark 4: bytes. What an entry costs on the wire and on the relay's disk.

For each plaintext size: the padded size (the bucket, SPEC.md 4.4), the ciphertext
(bucket + 16-byte tag), the encoded entry (header, one seen head as in a couple's
space, signature), and the bytes the relay's database grows by per entry, measured on
SQLite (pages in use) and PostgreSQL (``pg_total_relation_size`` of the entries table,
indexes and TOAST included) after appending a run of such entries through a relay.

The padding overhead of real use is taken from the generated couple's history: the
plaintexts its records make, against the buckets they are padded to.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy.engine import make_url

from bench.feeds import TYPICAL_PLAINTEXT, Feed, solo_space
from bench.relays import relay_on
from client_lib.relay_client import RelayClient
from protocol.crypto import AEAD_TAG_BYTES, DeviceKey, random_bytes
from protocol.entry import SeenHead, bucket_size


@dataclass(frozen=True, slots=True, kw_only=True)
class SizeSettings:
    plaintexts: tuple[int, ...] = (1, 100, TYPICAL_PLAINTEXT, 1_000, 4_000, 16_000, 100_000)
    #: Entries appended per size (fewer for the large ones, at most ``max_bytes`` in all).
    entries: int = 500
    max_bytes: int = 4_000_000


def _count(settings: SizeSettings, size: int) -> int:
    return max(20, min(settings.entries, settings.max_bytes // max(size, 1)))


async def _database_bytes(url: str) -> int:
    """Bytes in use by the relay's database (SQLite) or its entries table (PostgreSQL)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = parsed.database or ""
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as connection:
            page_size = connection.execute("PRAGMA page_size").fetchone()[0]
            pages = connection.execute("PRAGMA page_count").fetchone()[0]
            free = connection.execute("PRAGMA freelist_count").fetchone()[0]
        return int((pages - free) * page_size)
    dsn = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
    connection = await asyncpg.connect(dsn, timeout=10)
    try:
        return int(await connection.fetchval("SELECT pg_total_relation_size('entries')"))
    finally:
        await connection.close()


def _entries_of(feed: Feed, count: int, size: int) -> list[bytes]:
    # One seen head, as every entry in a couple's space names the partner's feed.
    partner = SeenHead(device=DeviceKey.generate().public, seq=1, id=random_bytes(32))
    return [feed.data(random_bytes(size), seen=(partner,)) for _ in range(count)]


async def _stored_per_entry(
    backend: str, settings: SizeSettings, directory: Path, log: Callable[[str], None]
) -> dict[int, dict[str, float]]:
    """Per plaintext size: the encoded entry and the database growth per entry."""
    found: dict[int, dict[str, float]] = {}
    async with relay_on(backend, directory / f"sizes-{backend}") as relays:
        relay = relays[0]
        for size in settings.plaintexts:
            feed, founding = solo_space()
            count = _count(settings, size)
            entries = _entries_of(feed, count, size)
            async with RelayClient(relay.url, device_key=feed.key, space=feed.space) as client:
                await client.create_space(founding)
                before = await _database_bytes(relay.database_url)
                for start in range(0, count, 100):
                    await client.append(entries[start : start + 100])
                after = await _database_bytes(relay.database_url)
            found[size] = {
                "entry_bytes": sum(len(raw) for raw in entries) / count,
                "stored_bytes": (after - before) / count,
                "entries": count,
            }
            log(
                f"  {backend}: plaintext {size} B -> entry {found[size]['entry_bytes']:.0f} B, "
                f"stored {found[size]['stored_bytes']:.0f} B per entry"
            )
    return found


def padding_overhead(plaintext_sizes: Sequence[int]) -> dict[str, Any]:
    """Padding of real plaintexts: totals, and the share the buckets add."""
    total = sum(plaintext_sizes)
    padded = sum(bucket_size(size) for size in plaintext_sizes)
    buckets: dict[int, int] = {}
    for size in plaintext_sizes:
        bucket = bucket_size(size)
        buckets[bucket] = buckets.get(bucket, 0) + 1
    return {
        "entries": len(plaintext_sizes),
        "mean_plaintext": round(total / max(1, len(plaintext_sizes)), 1),
        "mean_padded": round(padded / max(1, len(plaintext_sizes)), 1),
        "padding_overhead": round(padded / total - 1, 3) if total else 0.0,
        "buckets": {str(bucket): count for bucket, count in sorted(buckets.items())},
    }


async def run(
    *,
    backends: tuple[str, ...],
    plaintext_sizes: Sequence[int],
    settings: SizeSettings,
    directory: Path,
    log: Callable[[str], None],
) -> dict[str, Any]:
    """Benchmark 4; ``plaintext_sizes`` are those of the generated history's entries."""
    stored = {
        backend: await _stored_per_entry(backend, settings, directory, log) for backend in backends
    }
    rows = []
    for size in settings.plaintexts:
        padded = bucket_size(size)
        row: dict[str, Any] = {
            "plaintext": size,
            "padded": padded,
            "padding_overhead": round(padded / size - 1, 3),
            "ciphertext": padded + AEAD_TAG_BYTES,
            "entry": round(stored[backends[0]][size]["entry_bytes"], 1),
        }
        for backend in backends:
            measured = stored[backend][size]
            row[f"stored_{backend}"] = round(measured["stored_bytes"], 1)
            row[f"stored_{backend}_per_plaintext_byte"] = round(measured["stored_bytes"] / size, 2)
        rows.append(row)
    return {"rows": rows, "history_padding": padding_overhead(plaintext_sizes)}
