"""`accord timeline --plot`: check-in scores and agreement changes over time, as a PNG."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from pathlib import Path

from client_lib.agreements import TimelineEvent

LEVEL_Y = {"no": 0, "ask": 1, "yes": 2}
LEVEL_COLOURS = {"no": "#c0392b", "ask": "#e67e22", "yes": "#27ae60"}


def plot_timeline(
    events: Sequence[TimelineEvent], path: str | Path, *, name_of: Callable[[bytes], str]
) -> None:
    """Draw check-in scores (top) and agreement versions and pauses (bottom) to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 5.5), sharex=True)
    by_member: dict[bytes, list[tuple[dt.datetime, int]]] = {}
    for event in events:
        if event.kind == "check-in" and event.safety is not None:
            when = dt.datetime.fromtimestamp(event.at / 1000)
            by_member.setdefault(event.member, []).append((when, event.safety))
    for member, points in by_member.items():
        points.sort()
        top.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=name_of(member))
    top.set_ylim(0.5, 5.5)
    top.set_ylabel("sense of safety")
    top.set_title("Check-ins")
    if by_member:
        top.legend(loc="lower left")
    for event in events:
        when = dt.datetime.fromtimestamp(event.at / 1000)
        if event.kind == "version" and event.level is not None:
            level = event.level.value
            bottom.scatter([when], [LEVEL_Y[level]], color=LEVEL_COLOURS[level], s=40)
        elif event.kind in {"pause", "resume"}:
            bottom.axvline(when, color="#7f8c8d", linestyle="--" if event.kind == "pause" else ":")
    bottom.set_yticks([0, 1, 2], ["no", "ask", "yes"])
    bottom.set_ylim(-0.5, 2.5)
    bottom.set_title("Agreement changes (dashed: a pause, dotted: a resume)")
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(str(path), dpi=100)
    plt.close(fig)
