"""Growing sizes under a time budget, for work whose cost may grow faster than linearly.

Each size is measured only when the previous measurement, scaled up by the steepest
growth seen so far (never less than linear), projects to fit the budget. The sizes not
run are reported with their projection, so the report can say plainly what was not
measured and why.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class Sweep:
    """What a sweep measured, and what it left out."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    not_run: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"rows": self.rows, "not_run": self.not_run}


def growth_exponent(n1: int, t1: float, n2: int, t2: float) -> float:
    """``k`` in ``t = c * n**k`` through two points: 1 is linear, 2 quadratic."""
    if t1 <= 0 or t2 <= 0 or n1 == n2:
        return 1.0
    return math.log(t2 / t1) / math.log(n2 / n1)


def sweep(
    sizes: Sequence[int],
    *,
    budget_s: float,
    measure: Callable[[int], tuple[float, dict[str, Any]]],
) -> Sweep:
    """Measure ``measure(size)`` (returning seconds and a row) for growing sizes."""
    result = Sweep()
    steepest = 1.0
    previous: tuple[int, float] | None = None
    for size in sizes:
        if previous is not None:
            count, took = previous
            projected = took * (size / count) ** steepest
            if projected > budget_s:
                result.not_run.append({"size": size, "projected_s": round(projected, 1)})
                break
        took, row = measure(size)
        if previous is not None:
            exponent = growth_exponent(previous[0], previous[1], size, took)
            row["growth_exponent"] = round(exponent, 2)
            steepest = max(steepest, exponent)
        result.rows.append(row)
        previous = (size, took)
    return result
