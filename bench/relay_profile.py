"""Where a relay process spends its time, for benchmarks 2 and 3 (no figure of its own).

A relay process is started through :mod:`bench.profiled_relay` on a fresh SQLite
database and given three workloads, each on a relay of its own: appends in batches of
100, appends in batches of 1, and the fan-out load at 100 connected clients. The
profiler runs only while the workload does (SIGUSR1 and SIGUSR2 to the process), so
start-up is left out; the profile is then summarized by kind of work. cProfile sees
the event-loop thread only: the SQLite driver's own thread (where the database work
and its disk syncs happen) is not in it, and waiting in the event loop's poll is
counted as idle. Profiling slows the relay down, so these runs are never the ones
the figures come from.
"""

from __future__ import annotations

import asyncio
import functools
import signal
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.fanout import FanoutSettings, measure_step
from bench.feeds import TYPICAL_PLAINTEXT
from bench.ingest import relay_rate
from bench.profiling import summarize_file
from bench.relays import RelayProcess, fresh_database, running_relays


@dataclass(frozen=True, slots=True, kw_only=True)
class RelayProfileSettings:
    batch_100_entries: int = 5_000
    batch_1_entries: int = 500
    fanout_clients: int = 100
    fanout_seconds: float = 15.0


@dataclass(slots=True)
class ProfiledRelay(RelayProcess):
    """A relay process that profiles itself between SIGUSR1 and SIGUSR2."""

    profile_path: Path = Path("relay.prof")

    def command(self, settings: dict[str, Any]) -> list[str]:
        plain = RelayProcess.command(self, settings)
        # plain is [python, "-m", "server.cli", "serve", ...]
        return [sys.executable, "-m", "bench.profiled_relay", str(self.profile_path), *plain[3:]]

    def signal(self, number: int) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(number)


async def _profiled(
    directory: Path, name: str, workload: Callable[[str], Awaitable[object]]
) -> dict[str, Any]:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.prof"
    make = functools.partial(ProfiledRelay, profile_path=path)
    async with fresh_database("sqlite", directory / name) as url:
        async with running_relays(url, directory / name, process=make) as relays:
            relay = relays[0]
            assert isinstance(relay, ProfiledRelay)
            relay.signal(signal.SIGUSR1)
            await workload(relay.url)
            relay.signal(signal.SIGUSR2)
            for _ in range(100):
                if path.exists():
                    break
                await asyncio.sleep(0.05)
    if not path.exists():
        return {"missing": "the relay wrote no profile"}
    return summarize_file(path)


async def run(
    *, settings: RelayProfileSettings, directory: Path, log: Callable[[str], None]
) -> dict[str, Any]:
    """Profile a relay under the ingest and fan-out workloads."""
    results: dict[str, Any] = {}
    seconds = settings.fanout_seconds
    fanout = FanoutSettings(min_seconds=seconds, max_seconds=seconds)
    workloads: dict[str, Callable[[str], Awaitable[object]]] = {
        "appends in batches of 100": lambda url: relay_rate(
            url, batch=100, count=settings.batch_100_entries, plaintext=TYPICAL_PLAINTEXT
        ),
        "appends in batches of 1": lambda url: relay_rate(
            url, batch=1, count=settings.batch_1_entries, plaintext=TYPICAL_PLAINTEXT
        ),
        f"fan-out at {settings.fanout_clients} clients": lambda url: measure_step(
            url,
            settings.fanout_clients,
            fanout,
            lambda: 0.0,
        ),
    }
    for index, (label, workload) in enumerate(workloads.items()):
        results[label] = await _profiled(directory, f"profile-{index}", workload)
        log(f"  profiled the relay under {label}")
    return {"workloads": results}
