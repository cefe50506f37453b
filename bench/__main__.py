"""``python -m bench``: run the benchmarks and write docs/BENCHMARKS.md.

    .venv/bin/python -m bench                       # everything (about 20 minutes)
    .venv/bin/python -m bench --only replay,ingest  # some of them
    .venv/bin/python -m bench --quick               # tiny sizes, into a temporary directory

Each benchmark writes its raw results to ``<out>/<name>.json`` (default
``docs/benchmarks/``); the report is then rebuilt from every JSON file there, so
running one benchmark refreshes its own figures and keeps the others'. Only
127.0.0.1 is ever contacted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import fanout, ingest, initial_sync, relay_profile, replay, scaleout, sizes
from bench.history import History, build_history
from bench.machine import machine_info
from bench.relays import REPO_ROOT, postgres_problem
from bench.report import write_report

NAMES = ("replay", "ingest", "fanout", "bytes", "initial-sync", "scale-out", "relay-profile")
COMMAND = ".venv/bin/python -m bench"


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    """Every size and setting of one run."""

    replay: replay.ReplaySettings
    ingest: ingest.IngestSettings
    fanout: fanout.FanoutSettings
    sizes: sizes.SizeSettings
    initial_sync: initial_sync.InitialSyncSettings
    scaleout: scaleout.ScaleOutSettings
    relay_profile: relay_profile.RelayProfileSettings
    #: Data entries of the generated histories (both partners writing; one writing).
    two_writer_entries: int
    one_writer_entries: int


FULL = Plan(
    replay=replay.ReplaySettings(),
    ingest=ingest.IngestSettings(),
    fanout=fanout.FanoutSettings(),
    sizes=sizes.SizeSettings(),
    initial_sync=initial_sync.InitialSyncSettings(),
    scaleout=scaleout.ScaleOutSettings(),
    relay_profile=relay_profile.RelayProfileSettings(),
    two_writer_entries=100_000,
    one_writer_entries=initial_sync.YEAR_OF_ENTRIES,
)

QUICK = Plan(
    replay=replay.ReplaySettings(
        sizes=(200, 400), repeats=1, full_sizes=(50, 100), full_budget_s=10, profile_size=50
    ),
    ingest=ingest.IngestSettings(runs=((1, 30), (100, 300)), repeats=1),
    fanout=fanout.FanoutSettings(
        counts=(4, 10),
        search=(),
        rate=2.0,
        samples=20,
        min_seconds=1.5,
        max_seconds=3.0,
        drain_seconds=3.0,
        bisect_steps=0,
        confirm=False,
    ),
    sizes=sizes.SizeSettings(plaintexts=(100, 1_000), entries=40),
    initial_sync=initial_sync.InitialSyncSettings(
        sizes=(50, 100), budget_s=10, one_writer_size=100
    ),
    scaleout=scaleout.ScaleOutSettings(writers=4, batch=10, entries=30, repeats=1),
    relay_profile=relay_profile.RelayProfileSettings(
        batch_100_entries=200, batch_1_entries=20, fanout_clients=6, fanout_seconds=1.5
    ),
    two_writer_entries=400,
    one_writer_entries=100,
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--only",
        help=f"comma-separated benchmarks to run (default all): {', '.join(NAMES)}",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="tiny sizes, to check the command works; writes into a temporary directory "
        "unless --out is given",
    )
    parser.add_argument("--out", type=Path, help="where the JSON results and the plot go")
    parser.add_argument("--doc", type=Path, help="the report to write (default <out>/..)")
    parser.add_argument("--no-postgres", action="store_true", help="skip the PostgreSQL halves")
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="run nothing; rebuild the report from the JSON results already in <out>",
    )
    return parser


def _selected(only: str | None) -> list[str]:
    if not only:
        return list(NAMES)
    chosen = [name.strip() for name in only.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in NAMES]
    if unknown:
        raise SystemExit(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(NAMES)}")
    return chosen


class _Histories:
    """The generated histories, built once, on first use."""

    def __init__(self, plan: Plan, log: Callable[[str], None]) -> None:
        self._plan = plan
        self._log = log
        self._built: dict[int, History] = {}

    def get(self, partners_writing: int) -> History:
        if partners_writing not in self._built:
            count = (
                self._plan.two_writer_entries
                if partners_writing == 2
                else self._plan.one_writer_entries
            )
            began = time.perf_counter()
            self._built[partners_writing] = build_history(count, partners_writing=partners_writing)
            self._log(
                f"  generated a history of {count} entries "
                f"({partners_writing} writing) in {time.perf_counter() - began:.0f} s"
            )
        return self._built[partners_writing]


def _run_one(
    name: str,
    plan: Plan,
    histories: _Histories,
    backends: tuple[str, ...],
    work: Path,
    log: Callable[[str], None],
) -> dict[str, Any]:
    if name == "replay":
        return replay.run(
            two_writers=histories.get(2),
            one_writer=histories.get(1),
            settings=plan.replay,
            log=log,
        )
    if name == "ingest":
        return asyncio.run(
            ingest.run(backends=backends, settings=plan.ingest, directory=work, log=log)
        )
    if name == "fanout":
        return asyncio.run(
            fanout.run(backends=backends, settings=plan.fanout, directory=work, log=log)
        )
    if name == "bytes":
        return asyncio.run(
            sizes.run(
                backends=backends,
                plaintext_sizes=histories.get(2).plaintext_sizes,
                settings=plan.sizes,
                directory=work,
                log=log,
            )
        )
    if name == "initial-sync":
        return initial_sync.run(
            two_writers=histories.get(2),
            one_writer=histories.get(1),
            settings=plan.initial_sync,
            directory=work,
            log=log,
        )
    if name == "scale-out":
        if "postgres" not in backends:
            return {"skipped": "scale-out needs PostgreSQL"}
        return asyncio.run(scaleout.run(settings=plan.scaleout, directory=work, log=log))
    if name == "relay-profile":
        return asyncio.run(relay_profile.run(settings=plan.relay_profile, directory=work, log=log))
    raise ValueError(name)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    names = _selected(args.only)
    plan = QUICK if args.quick else FULL
    out: Path = args.out or (
        Path(tempfile.mkdtemp(prefix="accord-bench-quick-"))
        if args.quick
        else REPO_ROOT / "docs" / "benchmarks"
    )
    out.mkdir(parents=True, exist_ok=True)
    doc: Path = args.doc or (
        out / "BENCHMARKS.md" if args.quick else REPO_ROOT / "docs" / "BENCHMARKS.md"
    )

    def log(line: str) -> None:
        print(line, flush=True)

    if args.report_only:
        write_report(out, doc)
        log(f"wrote {doc}")
        return 0

    backends: tuple[str, ...] = ("sqlite",)
    postgres_note = "not asked for (--no-postgres)"
    if not args.no_postgres:
        problem = asyncio.run(postgres_problem())
        if problem is None:
            backends = ("sqlite", "postgres")
            postgres_note = ""
        else:
            postgres_note = problem
            log(f"PostgreSQL halves skipped: {problem}")
    histories = _Histories(plan, log)
    with tempfile.TemporaryDirectory(prefix="accord-bench-") as scratch:
        for name in names:
            log(f"{name}:")
            machine = machine_info()
            began = time.perf_counter()
            result = _run_one(name, plan, histories, backends, Path(scratch) / name, log)
            record = {
                "benchmark": name,
                "command": f"{COMMAND} --only {name}" + (" --quick" if args.quick else ""),
                "quick": args.quick,
                "machine": machine,
                "load_average_after": machine_info()["load_average"],
                "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "seconds": round(time.perf_counter() - began, 1),
                "backends": list(backends),
                "postgres_skipped": postgres_note,
                "result": result,
            }
            path = out / f"{name}.json"
            path.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
            log(f"  wrote {path} ({record['seconds']} s)")
    write_report(out, doc)
    log(f"wrote {doc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
