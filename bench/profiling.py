"""Where the time goes: cProfile, summed into a few named kinds of work.

A profile of tens of thousands of calls is hard to read in a report, so each function's
own time is put in one bucket (Ed25519, AEAD, BLAKE2b, canonical CBOR, the local
SQLite store, the CRDT engine, ...) by the file or the built-in it comes from. The
report shows the buckets, and the few functions with the most own time.
"""

from __future__ import annotations

import cProfile
import pstats
from collections.abc import Callable
from pathlib import Path
from typing import Any

_REPO = str(Path(__file__).resolve().parent.parent) + "/"

#: (bucket, substrings of "file:function" that put a function in it); first match wins.
_BUCKETS: tuple[tuple[str, tuple[str, ...]], ...] = (
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
OTHER = "other Python (builtins, dataclasses, ...)"


def _bucket(key: tuple[str, int, str]) -> str:
    filename, _, function = key
    name = f"{filename}:{function}"
    for bucket, needles in _BUCKETS:
        if any(needle in name for needle in needles):
            return bucket
    return OTHER


def profile(work: Callable[[], object], *, top: int = 10) -> dict[str, Any]:
    """Run ``work`` under cProfile; return its time by bucket and its top functions."""
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        work()
    finally:
        profiler.disable()
    stats = pstats.Stats(profiler)
    raw: dict[tuple[str, int, str], tuple[int, int, float, float, object]] = stats.stats  # type: ignore[attr-defined]
    total = sum(item[2] for item in raw.values()) or 1e-9
    buckets: dict[str, float] = {}
    for key, (_, _, own, _, _) in raw.items():
        name = _bucket(key)
        buckets[name] = buckets.get(name, 0.0) + own
    ranked = sorted(raw.items(), key=lambda pair: pair[1][2], reverse=True)[:top]
    return {
        "total_s": round(total, 3),
        "buckets": [
            {"what": name, "seconds": round(seconds, 3), "share": round(seconds / total, 3)}
            for name, seconds in sorted(buckets.items(), key=lambda pair: -pair[1])
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


def _short(key: tuple[str, int, str]) -> str:
    filename, line, function = key
    if filename == "~":
        return function
    for marker in ("/site-packages/", _REPO, "/lib/python3"):
        if marker in filename:
            filename = filename.split(marker, 1)[1]
            break
    return f"{filename}:{line}({function})"
