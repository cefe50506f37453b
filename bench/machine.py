"""The machine a run happened on, and a small timer.

Every figure in the report is a ratio against a limit measured in the same run, so
the machine matters less than it would for absolute times; it is still written next
to the figures: core count, CPU model, Python, and the load average before and after.
"""

from __future__ import annotations

import math
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def cpu_model() -> str:
    """The CPU model named by /proc/cpuinfo (or the platform's guess elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def load_average() -> tuple[float, float, float] | None:
    try:
        return os.getloadavg()
    except OSError:
        return None


def machine_info() -> dict[str, Any]:
    """What the report says about the machine."""
    return {
        "cores": os.cpu_count(),
        "cpu_model": cpu_model(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "load_average": load_average(),
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def cpu_ticks() -> tuple[int, int]:
    """(busy, total) CPU ticks of the whole machine so far, from /proc/stat ((0, 0)
    when unknown). The difference of two readings gives the machine's busy share,
    everyone's processes included."""
    try:
        first = Path("/proc/stat").read_text(encoding="ascii").splitlines()[0].split()
    except (OSError, IndexError):
        return 0, 0
    ticks = [int(value) for value in first[1:]]
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)
    return sum(ticks) - idle, sum(ticks)


class MachineLoad:
    """The machine's busy share (all cores, everyone's processes) since it was made."""

    def __init__(self) -> None:
        self._start = cpu_ticks()

    def share(self) -> float:
        busy, total = cpu_ticks()
        spent = total - self._start[1]
        return round((busy - self._start[0]) / spent, 2) if spent > 0 else 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Timing:
    """The best of some runs of one piece of work: wall-clock and CPU seconds."""

    wall: float
    cpu: float
    runs: int

    def to_json(self) -> dict[str, float | int]:
        return {"wall_s": round(self.wall, 6), "cpu_s": round(self.cpu, 6), "runs": self.runs}


def best_of(work: Callable[[], object], *, repeats: int) -> Timing:
    """Run ``work`` ``repeats`` times; keep the fastest wall time and the least CPU time.

    On a shared machine the fastest run is the one least disturbed by others, so it is
    the fairest estimate of what the work itself costs.
    """
    return interleaved([work], repeats=repeats)[0]


def interleaved(works: Sequence[Callable[[], object]], *, repeats: int) -> list[Timing]:
    """:func:`best_of` for several pieces of work, run in turn (a, b, a, b, ...), so
    that each meets the same moments of a shared machine's load."""
    walls = [math.inf] * len(works)
    cpus = [math.inf] * len(works)
    for _ in range(max(1, repeats)):
        for index, work in enumerate(works):
            wall, cpu = time.perf_counter(), time.process_time()
            work()
            walls[index] = min(walls[index], time.perf_counter() - wall)
            cpus[index] = min(cpus[index], time.process_time() - cpu)
    return [
        Timing(wall=wall, cpu=cpu, runs=max(1, repeats))
        for wall, cpu in zip(walls, cpus, strict=True)
    ]


def ratio(value: float, limit: float) -> float:
    """``value / limit``, rounded for the report (inf when the limit is zero)."""
    return round(value / limit, 3) if limit > 0 else float("inf")
