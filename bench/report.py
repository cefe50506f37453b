"""docs/BENCHMARKS.md and the fan-out plot, rebuilt from the JSON results.

The sections themselves are made in :mod:`bench.report_sections`; this module adds
the summary, the machine table and the plot, and writes the file.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import matplotlib

from bench.report_sections import (
    bytes_section,
    fanout_section,
    ingest_section,
    initial_sync_section,
    met,
    num,
    relay_profile_section,
    replay_section,
    scaleout_section,
    table,
    times,
)

matplotlib.use("Agg")
import matplotlib.pyplot as plt

ORDER = ("replay", "ingest", "fanout", "bytes", "initial-sync", "scale-out", "relay-profile")
PLOT = "fanout.png"


def _load(out: Path) -> dict[str, dict[str, Any]]:
    found = {}
    for name in ORDER:
        path = out / f"{name}.json"
        if path.exists():
            found[name] = json.loads(path.read_text(encoding="utf-8"))
    return found


# -- the plot ---------------------------------------------------------------------------


def plot_fanout(record: dict[str, Any], path: Path) -> None:
    result = record["result"]
    figure, axis = plt.subplots(figsize=(7, 4.2), dpi=110)
    for backend, data in result["backends"].items():
        steps = data["steps"]
        clients = [step["clients"] for step in steps]
        axis.plot(clients, [s["p50_ms"] for s in steps], marker="o", label=f"{backend} p50")
        axis.plot(clients, [s["p99_ms"] for s in steps], marker="s", label=f"{backend} p99")
    floor = result.get("transport_floor", [])
    if floor:
        counts = [step["clients"] for step in floor]
        axis.plot(counts, [s["p50_ms"] for s in floor], "k:", marker=".", label="floor p50")
        axis.plot(counts, [s["p99_ms"] for s in floor], "k--", marker=".", label="floor p99")
    axis.axhline(100, color="grey", linestyle="--", linewidth=1, label="100 ms")
    axis.set_xscale("log")
    axis.set_yscale("log")
    axis.set_xlabel("connected WebSocket clients (couples × 2)")
    axis.set_ylabel("append → delivery (ms)")
    axis.set_title(
        f"Fan-out latency, {result['rate_per_client']} appends/s per client"
        + (" (quick run)" if record.get("quick") else "")
    )
    axis.grid(True, which="both", alpha=0.3)
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


# -- the whole report --------------------------------------------------------------------


def _summary(records: dict[str, dict[str, Any]]) -> list[str]:
    rows: list[list[str]] = []
    if "replay" in records:
        result = records["replay"]["result"]
        biggest = result["protocol_path"][-1]
        full = [s for s in result["full_path"] if s["rows"]]
        rows.append(
            [
                "1 cold replay",
                f"protocol path at {num(biggest['entries'])} entries vs raw",
                "≤ 2×",
                f"{times(biggest['ratio'])} ({met(biggest['ratio'] <= 2)})",
            ]
        )
        for sweep in full:
            last = sweep["rows"][-1]
            rows.append(
                [
                    "1 cold replay",
                    f"full client path, {sweep['history']}, {num(last['entries'])} entries",
                    "≤ 2×",
                    f"{times(last['ratio'])} ({met(last['ratio'] <= 2)})",
                ]
            )
    if "ingest" in records:
        for row in records["ingest"]["result"]["rows"]:
            if row["batch"] >= 100:
                rows.append(
                    [
                        "2 relay ingest",
                        f"{row['backend']}, batches of {row['batch']}, vs INSERT loop",
                        "≥ 50%",
                        f"{row['ratio']:.0%} ({met(row['ratio'] >= 0.5)})",
                    ]
                )
    if "fanout" in records:
        for backend, data in records["fanout"]["result"]["backends"].items():
            by_count = {step["clients"]: step for step in data["steps"]}
            at = "; ".join(
                f"{count}: {by_count[count]['p50_ms']:.0f}/{by_count[count]['p99_ms']:.0f}"
                + (
                    f" ({by_count[count]['p99_ratio']:.1f}× floor)"
                    if "p99_ratio" in by_count[count]
                    else ""
                )
                for count in (10, 100, 300)
                if count in by_count
            )
            rows.append(
                [
                    "3 fan-out",
                    f"{backend}: clients: p50/p99 ms (p99 vs transport floor); "
                    "largest count with p99 ≤ 100 ms",
                    "–",
                    f"{at}; largest: {data['limit']['largest_ok'] or 'none'}",
                ]
            )
    if "bytes" in records:
        padding = records["bytes"]["result"]["history_padding"]
        rows.append(
            [
                "4 bytes",
                "padding overhead of real plaintexts",
                "–",
                f"{padding['padding_overhead']:.0%}",
            ]
        )
    if "initial-sync" in records:
        result = records["initial-sync"]["result"]
        single = result["one_partner_writing"]
        rows.append(
            [
                "5 initial sync",
                f"one partner writing, {num(single['entries'])} entries",
                "–",
                f"{single['seconds']:.0f} s ({times(single['ratio'])} fetch + crypto)",
            ]
        )
        both = result["both_partners_writing"]["rows"]
        if both:
            rows.append(
                [
                    "5 initial sync",
                    f"both partners writing, {num(both[-1]['entries'])} entries (largest run)",
                    "–",
                    f"{both[-1]['seconds']:.0f} s ({times(both[-1]['ratio'])})",
                ]
            )
    if "scale-out" in records and "ratio" in records["scale-out"]["result"]:
        result = records["scale-out"]["result"]
        rows.append(["6 scale-out", "two processes vs twice one", "–", f"{result['ratio']:.0%}"])
    return table(["benchmark", "figure", "target", "this run"], rows)


def _machines(records: dict[str, dict[str, Any]]) -> list[str]:
    rows = []
    for name, record in records.items():
        machine = record["machine"]
        before = machine.get("load_average") or [math.nan] * 3
        after = record.get("load_average_after") or [math.nan] * 3
        rows.append(
            [
                name,
                record["finished_at"].replace("T", " ").replace("+00:00", ""),
                str(machine["cores"]),
                machine["cpu_model"],
                machine["python"],
                f"{before[0]:.2f} → {after[0]:.2f}",
                f"{record['seconds']:.0f} s",
            ]
        )
    return table(
        [
            "benchmark",
            "finished (UTC)",
            "cores",
            "CPU",
            "Python",
            "load (1 min) before → after",
            "took",
        ],
        rows,
    )


def write_report(out: Path, doc: Path) -> None:
    """Write ``doc`` (and the fan-out plot into ``out``) from ``out``'s JSON files."""
    records = _load(out)
    plot_link = os.path.relpath(out / PLOT, doc.parent)
    if "fanout" in records:
        plot_fanout(records["fanout"], out / PLOT)
    quick = any(record.get("quick") for record in records.values())
    lines = ["# Benchmarks", ""]
    if quick:
        lines += [
            "**Quick run: tiny sizes, to check the command works. These figures mean nothing.**",
            "",
        ]
    lines += [
        "Written by `.venv/bin/python -m bench` from the JSON results in "
        f"`{os.path.relpath(out, doc.parent)}/`; re-run it rather than editing this file. "
        "`--only NAME[,NAME]` runs some benchmarks (the others keep their last figures), "
        "`--quick` checks the command on tiny sizes, `--no-postgres` skips PostgreSQL "
        "(reached at `ACCORD_BENCH_PG_DSN`, default the CI server on 127.0.0.1:5432).",
        "",
        "Each figure is a ratio against a limit measured in the same run on the same "
        "machine. Absolute times are given for orientation and asserted nowhere; "
        "benchmarks are not tests. **The figures below come from a run on a possibly "
        "busy, shared 2-core machine** (other engineers' test runs were going on); the "
        "load average before and after each benchmark is listed, and the relay, "
        "PostgreSQL and the load generator always share the same cores.",
        "",
        "## Summary",
        "",
        *_summary(records),
        "## Machine",
        "",
        *_machines(records),
    ]
    sections = {
        "replay": replay_section,
        "ingest": ingest_section,
        "bytes": bytes_section,
        "initial-sync": initial_sync_section,
        "scale-out": scaleout_section,
        "relay-profile": relay_profile_section,
    }
    for name in ORDER:
        if name not in records:
            continue
        if name == "fanout":
            lines += fanout_section(records[name], plot_link)
        else:
            lines += sections[name](records[name])
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text("\n".join(lines).rstrip() + "\n", encoding="utf-8")
