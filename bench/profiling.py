"""Where the time goes: cProfile, summed into a few named kinds of work.

A profile of tens of thousands of calls is hard to read in a report, so each function's
own time is put in one bucket (Ed25519, AEAD, BLAKE2b, canonical CBOR, the local
SQLite store, the CRDT engine, ...) by the file or the built-in it comes from. The
report shows the buckets, and the few functions with the most own time. The same
works on a relay process run under ``python -m cProfile``, with buckets of its own.
"""

from __future__ import annotations

import cProfile
import pstats
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

_REPO = str(Path(__file__).resolve().parent.parent) + "/"

Buckets = tuple[tuple[str, tuple[str, ...]], ...]

#: (bucket, substrings of "file:function" that put a function in it); first match wins.
CLIENT_BUCKETS: Buckets = (
    ("Ed25519 verify/sign (libsodium)", ("crypto_sign",)),
    ("XChaCha20-Poly1305 (libsodium)", ("crypto_aead",)),
    ("BLAKE2b (libsodium + PyNaCl checks)", ("generichash", "nacl/hash.py", "crypto.py:blake2b")),
    ("padding (libsodium)", ("sodium_pad", "sodium_unpad")),
    ("other PyNaCl glue", ("/nacl/",)),
    ("local SQLite store", ("sqlite3", "client_lib/store.py")),
    ("CRDT engine (pycrdt)", ("pycrdt",)),
    ("canonical CBOR (encode/decode + checks)", ("cbor2", "protocol/encoding.py")),
    ("entry parsing and shape checks", ("protocol/entry.py",)),
    ("roster fold and feeds", ("protocol/roster", "protocol/feeds", "protocol/epochs")),
    ("agreement records", ("protocol/agreement", "client_lib/records.py")),
    ("replica bookkeeping (client_lib)", ("client_lib/",)),
)
#: The same for a relay process. Waiting in the event loop's poll is idle time and
#: is left out of the shares.
RELAY_BUCKETS: Buckets = (
    ("Ed25519 verify (libsodium + PyNaCl)", ("crypto_sign", "nacl/signing.py")),
    ("BLAKE2b (libsodium + PyNaCl checks)", ("generichash", "nacl/hash.py", "crypto.py:blake2b")),
    ("other PyNaCl glue", ("/nacl/",)),
    ("canonical CBOR and entry checks", ("cbor2", "protocol/")),
    ("SQLAlchemy (ORM, Core, pool)", ("sqlalchemy/",)),
    ("database driver (aiosqlite, sqlite3, asyncpg)", ("aiosqlite", "sqlite3", "asyncpg")),
    ("JSON and base64", ("json/", "base64", "server/wire.py")),
    ("aiohttp (HTTP, WebSocket)", ("aiohttp/", "multidict", "yarl")),
    ("relay code (server/)", ("server/",)),
    ("threads and queues (driver hand-off)", ("threading.py", "queue", "concurrent/")),
    ("asyncio machinery", ("asyncio/", "_contextvars", "_asyncio")),
)
IDLE = ("select.epoll", "selectors.py")
OTHER = "other Python (builtins, dataclasses, ...)"


def _bucket(key: tuple[str, int, str], buckets: Buckets) -> str:
    filename, _, function = key
    name = f"{filename}:{function}"
    for bucket, needles in buckets:
        if any(needle in name for needle in needles):
            return bucket
    return OTHER


def summarize(stats: pstats.Stats, *, buckets: Buckets, top: int = 10) -> dict[str, Any]:
    """Own time by bucket and the top functions of a profile (idle polling left out)."""
    raw: dict[tuple[str, int, str], tuple[int, int, float, float, object]] = stats.stats  # type: ignore[attr-defined]
    busy = {
        key: item
        for key, item in raw.items()
        if not any(needle in f"{key[0]}:{key[2]}" for needle in IDLE)
    }
    idle = sum(item[2] for key, item in raw.items() if key not in busy)
    total = sum(item[2] for item in busy.values()) or 1e-9
    sums: dict[str, float] = {}
    for key, (_, _, own, _, _) in busy.items():
        name = _bucket(key, buckets)
        sums[name] = sums.get(name, 0.0) + own
    ranked = sorted(busy.items(), key=lambda pair: pair[1][2], reverse=True)[:top]
    return {
        "total_s": round(total, 3),
        "idle_s": round(idle, 3),
        "buckets": [
            {"what": name, "seconds": round(seconds, 3), "share": round(seconds / total, 3)}
            for name, seconds in sorted(sums.items(), key=lambda pair: -pair[1])
        ],
        "top_functions": [
            {
                "function": _short(key),
                "calls": item[1],
                "own_s": round(item[2], 3),
                "share": round(item[2] / total, 3),
            }
            for key, item in ranked
        ],
    }


def profile(work: Callable[[], object], *, top: int = 10) -> dict[str, Any]:
    """Run ``work`` under cProfile; return its time by bucket and its top functions."""
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        work()
    finally:
        profiler.disable()
    return summarize(pstats.Stats(profiler), buckets=CLIENT_BUCKETS, top=top)


def summarize_file(path: Path, *, top: int = 10) -> dict[str, Any]:
    """The summary of a relay process's profile written by ``python -m cProfile -o``."""
    return summarize(pstats.Stats(str(path)), buckets=RELAY_BUCKETS, top=top)


def _short(key: tuple[str, int, str]) -> str:
    filename, line, function = key
    if filename == "~":
        return function
    for marker in ("/site-packages/", _REPO):
        if marker in filename:
            filename = filename.split(marker, 1)[1]
            break
    else:
        filename = re.sub(r"^.*/lib/python3\.\d+/", "", filename)
    return f"{filename}:{line}({function})"
