"""Load: WebSocket clients in pairs, each pushing entries; fan-out latency, exactly once.

* The default run: 40 clients in 20 spaces for 5 seconds, one entry a second each,
  on SQLite.
* ``pytest -m slow``: 300 clients in 150 spaces for 60 seconds, one entry every 5
  seconds each (60 appends/s in all, below what one relay process commits one entry
  at a time on this machine, about 70/s on SQLite; see docs/BENCHMARKS.md, relay
  ingest), on SQLite and on PostgreSQL.

Each prints its figures (``-s`` shows them): entries stored, p50/p99/max fan-out latency
from ``append`` to the partner's push. Asserted: no entry lost, none delivered twice,
none pushed back to its author, no error, the relay's feeds equal what it
acknowledged. Latency is recorded, and only a gross bound is asserted (p99 under
:data:`GROSS_P99` seconds), since the machine is shared.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import make_database

from tests.system.load import LoadReport, run_load

GROSS_P99 = 5.0


def check(report: LoadReport, *, at_least: int) -> None:
    summary = report.summary()
    print("\nfan-out load:", json.dumps(summary))
    assert report.stored >= at_least, summary
    assert report.lost == 0 and report.duplicates == 0, summary
    assert report.echoed == 0 and report.unknown == 0, summary
    assert not report.errors and report.feed_mismatches == 0, summary
    assert report.delivered == report.stored == len(report.latencies), summary
    assert report.quantile(0.99) < GROSS_P99, summary


async def test_forty_clients_for_five_seconds(tmp_path: Path, start_relay: Any) -> None:
    url, cleanup = make_database("sqlite", tmp_path / "db")
    relay = start_relay(url)
    try:
        report = await run_load(relay.url, spaces=20, duration=5.0, interval=1.0)
    finally:
        relay.stop()
        cleanup()
    check(report, at_least=40 * 4)


@pytest.mark.slow
async def test_three_hundred_clients_for_a_minute(relay: Any) -> None:
    report = await run_load(relay.url, spaces=150, duration=60.0, interval=5.0, drain=60.0)
    check(report, at_least=300 * 10)
