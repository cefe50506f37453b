"""The benchmark command still runs to the end (``python -m bench --quick``).

Benchmarks are not tests: nothing here looks at a figure or a time. This only makes
sure the command cannot rot: it runs on tiny sizes in a subprocess, against real relay
processes on loopback, and must write every JSON result, the plot and the report.
PostgreSQL is left out to keep it short (the full command covers it).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
NAMES = ("replay", "ingest", "fanout", "bytes", "initial-sync", "scale-out", "relay-profile")


def test_quick_benchmark_run_writes_its_results(tmp_path: Path) -> None:
    out = tmp_path / "results"
    doc = tmp_path / "BENCHMARKS.md"
    command = [sys.executable, "-m", "bench", "--quick", "--no-postgres"]
    result = subprocess.run(
        [*command, "--out", str(out), "--doc", str(doc)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for name in NAMES:
        record = json.loads((out / f"{name}.json").read_text(encoding="utf-8"))
        assert record["benchmark"] == name
        assert record["quick"] is True
        assert record["machine"]["cores"] >= 1
        assert record["result"]
    replay = json.loads((out / "replay.json").read_text(encoding="utf-8"))["result"]
    assert all(row["ratio"] > 0 for row in replay["protocol_path"])
    fanout = json.loads((out / "fanout.json").read_text(encoding="utf-8"))["result"]
    steps = fanout["backends"]["sqlite"]["steps"]
    assert steps and all(step["missing"] == 0 and step["duplicates"] == 0 for step in steps)
    assert (out / "fanout.png").read_bytes().startswith(b"\x89PNG")
    report = doc.read_text(encoding="utf-8")
    assert "Quick run" in report
    for heading in ("1. Cold replay", "2. Relay ingest", "3. Fan-out", "4. Bytes"):
        assert heading in report
    assert "fanout.png" in report
