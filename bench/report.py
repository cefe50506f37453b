"""docs/BENCHMARKS.md and the fan-out plot, rebuilt from the JSON results.

Every sentence that states a result is made from the numbers in the JSON files, so
the report never claims more than the run measured; the only fixed prose explains
what each benchmark does.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

ORDER = ("replay", "ingest", "fanout", "bytes", "initial-sync", "scale-out")
PLOT = "fanout.png"


def _load(out: Path) -> dict[str, dict[str, Any]]:
    found = {}
    for name in ORDER:
        path = out / f"{name}.json"
        if path.exists():
            found[name] = json.loads(path.read_text(encoding="utf-8"))
    return found


def _n(value: float | int | None, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if digits == 0:
        return f"{value:,.0f}"
    return f"{value:,.{digits}f}"


def _x(value: float) -> str:
    return f"{value:.2f}×"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return [*lines, ""]


def _met(ok: bool) -> str:
    return "met" if ok else "**not met**"


# -- the plot ---------------------------------------------------------------------------


def plot_fanout(record: dict[str, Any], path: Path) -> None:
    result = record["result"]
    figure, axis = plt.subplots(figsize=(7, 4.2), dpi=110)
    for backend, data in result["backends"].items():
        steps = data["steps"]
        clients = [step["clients"] for step in steps]
        axis.plot(clients, [s["p50_ms"] for s in steps], marker="o", label=f"{backend} p50")
        axis.plot(clients, [s["p99_ms"] for s in steps], marker="s", label=f"{backend} p99")
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


# -- sections ---------------------------------------------------------------------------


def _header(record: dict[str, Any], title: str) -> list[str]:
    lines = [f"## {title}", "", f"Reproduce: `{record['command']}`", ""]
    if record.get("postgres_skipped"):
        lines += [f"PostgreSQL part skipped: {record['postgres_skipped']}.", ""]
    return lines


def _replay(record: dict[str, Any]) -> list[str]:
    result = record["result"]
    target = result["target_ratio"]
    lines = _header(record, "1. Cold replay")
    lines += [
        "A fresh device loads a couple's history (real records: agreement versions, "
        "affirmations, shared check-ins, pauses; see `bench/history.py`). The limit is "
        "one Ed25519 verification per entry plus one XChaCha20-Poly1305 decryption per "
        "data entry, called straight through PyNaCl on the same bytes. The *protocol "
        "path* is `protocol.entry` (decode, check space, author, signature and chain "
        "link, derive the key, decrypt, unpad). The *full client path* is one "
        "`Replica.ingest_many` of the whole history on a fresh device with its local "
        "store, as the sync engine calls it; afterwards every record must be readable.",
        "",
        "### Protocol path",
        "",
    ]
    rows = []
    for row in result["protocol_path"]:
        rows.append(
            [
                _n(row["entries"]),
                f"{row['time']['wall_s']:.2f} s",
                f"{row['raw_limit']['wall_s']:.2f} s",
                _n(row["per_entry_us"], 1),
                _n(row["raw_per_entry_us"], 1),
                _x(row["ratio"]),
                _met(row["ratio"] <= target),
            ]
        )
    lines += _table(
        ["entries", "protocol path", "raw limit", "µs/entry", "raw µs/entry", "ratio", "≤ 2×"],
        rows,
    )
    lines += ["### Full client path", ""]
    for sweep in result["full_path"]:
        lines += [f"History with {sweep['history']}:", ""]
        rows = []
        for row in sweep["rows"]:
            rows.append(
                [
                    _n(row["entries"]),
                    f"{row['time']['wall_s']:.1f} s",
                    f"{row['time']['cpu_s']:.1f} s",
                    _n(row["per_entry_us"] / 1000, 2),
                    _x(row["ratio"]),
                    _n(row.get("growth_exponent"), 2),
                    _n(row["waited"]),
                ]
            )
        lines += _table(
            ["entries", "wall", "CPU", "ms/entry", "ratio to raw", "growth exp.", "waits"],
            rows,
        )
        for skipped in sweep["not_run"]:
            lines += [
                f"Not run: {_n(skipped['size'])} entries, projected at "
                f"{_n(skipped['projected_s'])} s from the sizes above (budget exceeded).",
                "",
            ]
    lines += _replay_findings(result)
    return lines


def _replay_findings(result: dict[str, Any]) -> list[str]:
    lines = ["### What this run shows", ""]
    protocol = result["protocol_path"]
    worst = max(row["ratio"] for row in protocol)
    lines.append(
        f"- Protocol path: {', '.join(_x(row['ratio']) for row in protocol)} the raw limit "
        f"at {', '.join(_n(row['entries']) for row in protocol)} entries: the 2× target is "
        + ("met." if worst <= result["target_ratio"] else "not met.")
    )
    for sweep in result["full_path"]:
        rows = sweep["rows"]
        if not rows:
            continue
        last = rows[-1]
        exponents = [row["growth_exponent"] for row in rows if "growth_exponent" in row]
        steepest = max(exponents, default=1.0)
        reasons = ", ".join(
            f"{count / last['entries']:.2f} {reason}"
            for reason, count in sorted(last.get("wait_reasons", {}).items())
        )
        text = (
            f"- Full client path, {sweep['history']}: {_x(last['ratio'])} the raw limit at "
            f"{_n(last['entries'])} entries ({_n(last['per_entry_us'] / 1000, 2)} ms per "
            f"entry, {last['time']['cpu_s'] / max(last['time']['wall_s'], 1e-9):.0%} of it "
            "on the CPU, the rest waiting on the local store's disk syncs); growth "
            f"exponent up to {steepest:.2f} (1 is linear). Waits reported per entry: "
            f"{reasons or 'none'}."
        )
        lines.append(text)
        if sweep["history"].startswith("both") and steepest > 1.3:
            lines.append(
                "- Why the time grows faster than the history when both partners "
                "write: `Replica.ingest_many` orders a batch by seq alone. When one "
                "partner's feed is longer than the other's, an entry names (in `seen`) "
                "an entry of the other feed with a higher seq, which comes later in that "
                "order; it waits (`causal`), and the rest of its feed waits behind it "
                "(`gap`). The waiting entries are then retried in passes over the whole "
                "waiting set (`_drain_waiting`), each pass placing only a short run, so "
                "the work grows roughly with the square of the history. Ordering a "
                "batch causally (by the entries' references, as SPEC.md 4.5.4 ranks "
                "them) would avoid the waits. `epoch_key` waits are every data entry "
                "being held until the key envelope's sender is in the folded roster, "
                "then judged again once."
            )
    if not any(sweep["rows"] for sweep in result["full_path"]):
        lines.append("- The full client path was not measured.")
    lines += ["", "Where the time goes (cProfile, own time by kind of work):", ""]
    profiles = result["profiles"]
    columns = [
        (f"full path, {label}, {_n(data['data_entries'])} entries", data)
        for label, data in profiles["full_path"].items()
    ]
    columns.append(
        (
            f"protocol path, {_n(profiles['protocol_path']['data_entries'])} entries",
            profiles["protocol_path"],
        )
    )
    kinds: list[str] = []
    for _, data in columns:
        for bucket in data["buckets"]:
            if bucket["what"] not in kinds:
                kinds.append(bucket["what"])
    shares = [{b["what"]: b["share"] for b in data["buckets"]} for _, data in columns]
    rows = [[kind] + [f"{share.get(kind, 0.0):.0%}" for share in shares] for kind in kinds]
    lines += _table(["work", *(title for title, _ in columns)], rows)
    top = columns[0][1]["top_functions"][:6]
    lines += [f"Top functions by own time ({columns[0][0]}):", ""]
    lines += _table(
        ["function", "calls", "own s", "share"],
        [
            [f"`{f['function']}`", _n(f["calls"]), _n(f["own_s"], 3), f"{f['share']:.0%}"]
            for f in top
        ],
    )
    return lines


def _ingest(record: dict[str, Any]) -> list[str]:
    result = record["result"]
    lines = _header(record, "2. Relay ingest")
    lines += [
        "One device appends to a relay process over HTTP, one request after the other, "
        "in batches of 1 and of 100 (relay started with `--max-batch-entries 100` and "
        "rate limits raised). Each entry is authenticated, decoded, its signature "
        "verified, its chain checked under the space lock, stored and committed. The "
        "limit is a plain SQLAlchemy Core `INSERT` loop of the same rows into the same "
        "table of a fresh database of the same kind, through the relay's own engine "
        "settings, one transaction per batch. The stricter limit `executemany` sends "
        "each batch as one statement. Plaintexts are "
        f"{result['plaintext_bytes']} bytes (the mean of the generated history).",
        "",
    ]
    rows = []
    for row in result["rows"]:
        many = row.get("executemany")
        rows.append(
            [
                row["backend"],
                str(row["batch"]),
                _n(row["entries"]),
                _n(row["relay"]["entries_per_s"]),
                _n(row["insert_loop"]["entries_per_s"]),
                f"{row['ratio']:.0%}",
                _n(many["entries_per_s"]) if many else "–",
                f"{row['ratio_vs_executemany']:.0%}" if many else "–",
                _met(row["ratio"] >= result["target_ratio"]) if row["batch"] >= 100 else "–",
            ]
        )
    lines += _table(
        [
            "database",
            "batch",
            "entries",
            "relay /s",
            "INSERT loop /s",
            "ratio",
            "executemany /s",
            "ratio",
            "≥ 50% (batch 100)",
        ],
        rows,
    )
    singles = [row for row in result["rows"] if row["batch"] == 1]
    if singles:
        lines += [
            "Batches of 1 are bound by one request and one durable commit each "
            + ", ".join(
                f"({row['backend']}: {1000 / row['relay']['entries_per_s']:.1f} ms per "
                f"append against {1000 / row['insert_loop']['entries_per_s']:.1f} ms per "
                "committed INSERT)"
                for row in singles
            )
            + "; no target is set for them.",
            "",
        ]
    return lines


def _fanout(record: dict[str, Any], plot_link: str) -> list[str]:
    result = record["result"]
    lines = _header(record, "3. Fan-out")
    lines += [
        "`N` clients are `N/2` couples, each couple a space with both devices on a "
        "WebSocket. Every client appends one entry per request at random moments "
        f"(Poisson, {result['rate_per_client']} appends/s per client) and the relay "
        "pushes it to the partner. Latency runs from just before the append request to "
        "the partner's socket handing over the push. The ladder of counts stops at the "
        "first p99 above 100 ms. Relay, load generator and database share the machine; "
        "their CPU shares are given (1.0 = one core busy).",
        "",
        f"![fan-out latency against client count]({plot_link})",
        "",
    ]
    for backend, data in result["backends"].items():
        rows = [
            [
                _n(step["clients"]),
                _n(step["appends_per_s"], 1),
                _n(step["p50_ms"], 1),
                _n(step["p99_ms"], 1),
                _n(step["max_ms"], 1),
                f"{step['missing']}/{step['duplicates']}",
                f"{step['relay_cpu_share']:.2f}",
                f"{step['load_generator_cpu_share']:.2f}",
                f"{step.get('machine_busy_share', 0):.0%}",
            ]
            for step in data["steps"]
        ]
        lines += [f"{backend}:", ""]
        lines += _table(
            [
                "clients",
                "appends/s",
                "p50 ms",
                "p99 ms",
                "max ms",
                "lost/dup",
                "relay CPU",
                "generator CPU",
                "machine busy",
            ],
            rows,
        )
        limit = data["limit"]
        if limit["largest_ok"] is None:
            verdict = "p99 was above 100 ms at every count measured"
        elif limit["first_over"] is None:
            verdict = (
                f"p99 stayed within 100 ms up to {limit['largest_ok']} clients, the "
                "largest count measured"
            )
        else:
            verdict = (
                f"largest count measured with p99 within 100 ms: {limit['largest_ok']} "
                f"clients (p99 went above it at {limit['first_over']})"
            )
        lines += [f"{backend}: {verdict}.", ""]
    return lines


def _bytes(record: dict[str, Any]) -> list[str]:
    result = record["result"]
    backends = record["backends"]
    lines = _header(record, "4. Bytes")
    lines += [
        "Per plaintext size: its bucket (SPEC.md 4.4), the ciphertext (bucket + 16-byte "
        "tag), the encoded entry (header with one seen head, as in a couple's space, "
        "and the signature), and how much the relay's database grew per entry after a "
        "run of such entries was appended (SQLite: pages in use; PostgreSQL: "
        "`pg_total_relation_size('entries')`, indexes and TOAST included).",
        "",
    ]
    header = ["plaintext", "bucket", "padding", "ciphertext", "entry"]
    for backend in backends:
        header += [f"stored ({backend})", "per plaintext byte"]
    rows = []
    for row in result["rows"]:
        cells = [
            _n(row["plaintext"]),
            _n(row["padded"]),
            f"{row['padding_overhead']:.0%}",
            _n(row["ciphertext"]),
            _n(row["entry"]),
        ]
        for backend in backends:
            cells += [
                _n(row[f"stored_{backend}"]),
                _n(row[f"stored_{backend}_per_plaintext_byte"], 2),
            ]
        rows.append(cells)
    lines += _table(header, rows)
    padding = result["history_padding"]
    buckets = ", ".join(f"{count} in {size}" for size, count in padding["buckets"].items())
    lines += [
        f"Real plaintexts (the {_n(padding['entries'])} entries of the generated "
        f"history): mean {_n(padding['mean_plaintext'], 1)} bytes, padded to a mean of "
        f"{_n(padding['mean_padded'], 1)}: padding adds {padding['padding_overhead']:.0%}. "
        f"Buckets: {buckets}.",
        "",
    ]
    return lines


def _initial_sync(record: dict[str, Any]) -> list[str]:
    result = record["result"]
    lines = _header(record, "5. Initial sync")
    lines += [
        f"A year of use is estimated at {_n(result['year_of_entries'])} entries. The "
        "history is put on a SQLite relay process (both feeds uploaded as concurrent "
        "streams, so arrival order interleaves them), with the key envelope for Sam's "
        "new device. The time runs from the new device's first `SyncEngine.sync()` "
        "(the moment pairing has handed over its roster entry) to its first complete "
        "state: envelope and every page fetched, every entry ingested, heads checked, "
        "and the agreements view computed. The limit is fetching every page without "
        "doing anything with it, plus the raw crypto of the same entries.",
        "",
    ]
    header = [
        "history",
        "entries",
        "complete state",
        "sync",
        "agreements view",
        "fetch only",
        "raw crypto",
        "ratio",
    ]
    rows = []

    def cells(label: str, row: dict[str, Any]) -> list[str]:
        return [
            label,
            _n(row["entries"]),
            f"{row['seconds']:.1f} s",
            f"{row['sync_s']:.1f} s",
            f"{row['agreements_view_s']:.2f} s",
            f"{row['fetch_only_s']:.2f} s",
            f"{row['raw_crypto_s']:.2f} s",
            _x(row["ratio"]),
        ]

    both = result["both_partners_writing"]
    for row in both["rows"]:
        rows.append(cells("both partners writing", row))
    rows.append(cells("one partner writing", result["one_partner_writing"]))
    lines += _table(header, rows)
    reached = max((row["data_entries"] for row in both["rows"]), default=0)
    if reached < result["year_of_entries"]:
        projected = ", ".join(
            f"{_n(item['size'])} entries projected at {_n(item['projected_s'])} s"
            for item in both["not_run"]
        )
        lines += [
            f"With both partners writing, the year of history was **not** synced: the "
            f"largest size that fit the time budget was {_n(reached)} entries"
            + (f" ({projected})" if projected else "")
            + ". The cause is the ingest ordering described under benchmark 1. The "
            "one-partner history shows the per-entry cost without it.",
            "",
        ]
    return lines


def _scaleout(record: dict[str, Any]) -> list[str]:
    result = record["result"]
    lines = _header(record, "6. Scale-out")
    if "skipped" in result:
        return [*lines, f"Skipped: {result['skipped']}.", ""]
    lines += [
        f"{result['writers']} devices, each in its own space, append batches of "
        f"{result['batch']} as fast as the relay answers, first all to one relay "
        "process, then split over two relay processes sharing one PostgreSQL database "
        "(fan-out between them through LISTEN/NOTIFY).",
        "",
    ]
    rows = [
        [
            str(run["processes"]),
            _n(run["entries"]),
            _n(run["entries_per_s"]),
            ", ".join(f"{share:.2f}" for share in run["relay_cpu_share"]),
            f"{run['machine_busy_share']:.0%}",
        ]
        for run in (result["one"], result["two"])
    ]
    lines += _table(
        ["relay processes", "entries", "entries/s", "relay CPU (per process)", "machine busy"],
        rows,
    )
    lines += [
        f"Two processes reach {_x(result['speedup'])} the throughput of one, that is "
        f"{result['ratio']:.0%} of twice one."
        + (
            " The machine was nearly saturated with two (relays, PostgreSQL and the "
            "load generator share its cores), so this says more about the machine than "
            "about the relay."
            if result["two"]["machine_busy_share"] >= 0.85
            else ""
        ),
        "",
    ]
    return lines


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
                f"protocol path at {_n(biggest['entries'])} entries vs raw",
                "≤ 2×",
                f"{_x(biggest['ratio'])} ({_met(biggest['ratio'] <= 2)})",
            ]
        )
        for sweep in full:
            last = sweep["rows"][-1]
            rows.append(
                [
                    "1 cold replay",
                    f"full client path, {sweep['history']}, {_n(last['entries'])} entries",
                    "≤ 2×",
                    f"{_x(last['ratio'])} ({_met(last['ratio'] <= 2)})",
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
                        f"{row['ratio']:.0%} ({_met(row['ratio'] >= 0.5)})",
                    ]
                )
    if "fanout" in records:
        for backend, data in records["fanout"]["result"]["backends"].items():
            by_count = {step["clients"]: step for step in data["steps"]}
            at = ", ".join(
                f"{count}: {by_count[count]['p50_ms']:.0f}/{by_count[count]['p99_ms']:.0f}"
                for count in (10, 100, 300)
                if count in by_count
            )
            rows.append(
                [
                    "3 fan-out",
                    f"{backend} p50/p99 ms by clients; largest with p99 ≤ 100 ms",
                    "–",
                    f"{at}; {data['limit']['largest_ok'] or 'none'}",
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
                f"one partner writing, {_n(single['entries'])} entries",
                "–",
                f"{single['seconds']:.0f} s ({_x(single['ratio'])} fetch + crypto)",
            ]
        )
        both = result["both_partners_writing"]["rows"]
        if both:
            rows.append(
                [
                    "5 initial sync",
                    f"both partners writing, {_n(both[-1]['entries'])} entries (largest run)",
                    "–",
                    f"{both[-1]['seconds']:.0f} s ({_x(both[-1]['ratio'])})",
                ]
            )
    if "scale-out" in records and "ratio" in records["scale-out"]["result"]:
        result = records["scale-out"]["result"]
        rows.append(["6 scale-out", "two processes vs twice one", "–", f"{result['ratio']:.0%}"])
    return _table(["benchmark", "figure", "target", "this run"], rows)


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
    return _table(
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
        "replay": _replay,
        "ingest": _ingest,
        "bytes": _bytes,
        "initial-sync": _initial_sync,
        "scale-out": _scaleout,
    }
    for name in ORDER:
        if name not in records:
            continue
        if name == "fanout":
            lines += _fanout(records[name], plot_link)
        else:
            lines += sections[name](records[name])
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text("\n".join(lines).rstrip() + "\n", encoding="utf-8")
