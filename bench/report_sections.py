"""The six sections of docs/BENCHMARKS.md, each made from one benchmark's JSON record.

Every sentence that states a result is made from the numbers in the record, so the
report never claims more than the run measured; the fixed prose only explains what
each benchmark does, and why a shape in the numbers arises where the run shows it.
"""

from __future__ import annotations

import math
from typing import Any


def num(value: float | int | None, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if digits == 0:
        return f"{value:,.0f}"
    return f"{value:,.{digits}f}"


def times(value: float) -> str:
    return f"{value:.2f}×"


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return [*lines, ""]


def met(ok: bool) -> str:
    return "met" if ok else "**not met**"


def _header(record: dict[str, Any], title: str) -> list[str]:
    lines = [f"## {title}", "", f"Reproduce: `{record['command']}`", ""]
    if record.get("postgres_skipped"):
        lines += [f"PostgreSQL part skipped: {record['postgres_skipped']}.", ""]
    return lines


def replay_section(record: dict[str, Any]) -> list[str]:
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
        kind = "cpu_s" if row.get("ratio_of") == "cpu" else "wall_s"
        rows.append(
            [
                num(row["entries"]),
                f"{row['time'][kind]:.2f} s",
                f"{row['raw_limit'][kind]:.2f} s",
                f"{row['time']['wall_s']:.2f} s / {row['raw_limit']['wall_s']:.2f} s",
                num(row["per_entry_us"], 1),
                num(row["raw_per_entry_us"], 1),
                times(row["ratio"]),
                met(row["ratio"] <= target),
            ]
        )
    lines += [
        "Both run in turn in the same process, best of "
        f"{result['protocol_path'][0]['time']['runs']} runs each; this work never waits, "
        "so the ratio is of CPU times, which the other engineers' load on this shared "
        "machine disturbs less than wall-clock time (wall times are shown too).",
        "",
    ]
    lines += table(
        [
            "entries",
            "protocol path (CPU)",
            "raw limit (CPU)",
            "wall: protocol / raw",
            "µs/entry",
            "raw µs/entry",
            "ratio",
            "≤ 2×",
        ],
        rows,
    )
    lines += ["### Full client path", ""]
    for sweep in result["full_path"]:
        lines += [f"History with {sweep['history']}:", ""]
        rows = []
        for row in sweep["rows"]:
            rows.append(
                [
                    num(row["entries"]),
                    f"{row['time']['wall_s']:.1f} s",
                    f"{row['time']['cpu_s']:.1f} s",
                    num(row["per_entry_us"] / 1000, 2),
                    times(row["ratio"]),
                    num(row.get("growth_exponent"), 2),
                    num(row["waited"]),
                ]
            )
        lines += table(
            ["entries", "wall", "CPU", "ms/entry", "ratio to raw", "growth exp.", "waits"],
            rows,
        )
        for skipped in sweep["not_run"]:
            lines += [
                f"Not run: {num(skipped['size'])} entries, projected at "
                f"{num(skipped['projected_s'])} s from the sizes above (budget exceeded).",
                "",
            ]
    lines += _replay_findings(result)
    return lines


def _replay_findings(result: dict[str, Any]) -> list[str]:
    lines = ["### What this run shows", ""]
    protocol = result["protocol_path"]
    worst = max(row["ratio"] for row in protocol)
    lines.append(
        f"- Protocol path: {', '.join(times(row['ratio']) for row in protocol)} the raw limit "
        f"at {', '.join(num(row['entries']) for row in protocol)} entries: the 2× target is "
        + ("met." if worst <= result["target_ratio"] else "not met.")
    )
    for sweep in result["full_path"]:
        rows = sweep["rows"]
        if not rows:
            continue
        last = rows[-1]
        exponents = [row["growth_exponent"] for row in rows if "growth_exponent" in row]
        # Small sizes take fractions of a second and their exponents are mostly noise:
        # the one between the two largest sizes says how the work grows.
        steepest = exponents[-1] if exponents else 1.0
        order_waits = sum(
            count
            for reason, count in last.get("wait_reasons", {}).items()
            if reason in {"gap", "causal"}
        )
        reasons = ", ".join(
            f"{count / last['entries']:.2f} {reason}"
            for reason, count in sorted(last.get("wait_reasons", {}).items())
        )
        text = (
            f"- Full client path, {sweep['history']}: {times(last['ratio'])} the raw limit at "
            f"{num(last['entries'])} entries ({num(last['per_entry_us'] / 1000, 2)} ms per "
            f"entry, {last['time']['cpu_s'] / max(last['time']['wall_s'], 1e-9):.0%} of it "
            "on the CPU, the rest waiting on the local store's disk syncs); growth "
            f"exponent between the two largest sizes {steepest:.2f} (1 is linear). Waits "
            "reported per entry: "
            f"{reasons or 'none'}."
        )
        lines.append(text)
        if sweep["history"].startswith("both") and order_waits > last["entries"] // 10:
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
        elif sweep["history"].startswith("both"):
            lines.append(
                "- With both partners writing, the feeds name each other; "
                "`Replica.ingest_many` places a batch in causal order (each entry after "
                "what its `prev` and `seen` name, as SPEC.md 4.5.4 ranks them) and "
                "retries the entries left waiting once, in the same order, so the work "
                "grows with the history, not with its square."
            )
    if not any(sweep["rows"] for sweep in result["full_path"]):
        lines.append("- The full client path was not measured.")
    protocol_buckets = result["profiles"]["protocol_path"]["buckets"]
    crypto = sum(b["share"] for b in protocol_buckets if "libsodium" in b["what"])
    others = [b for b in protocol_buckets if "libsodium" not in b["what"]][:2]
    lines.append(
        f"- In the protocol path, the libsodium calls (signature, AEAD, BLAKE2b, "
        f"padding, with PyNaCl's argument checks) are {crypto:.0%} of the profiled time; "
        "the largest other shares are "
        + " and ".join(f"{b['what']} ({b['share']:.0%})" for b in others)
        + ". Each entry is decoded and checked as canonical CBOR (one re-encoding, "
        "compared with the received bytes); its signed bytes and AEAD header are slices "
        "of the received bytes, and it is hashed for its id."
    )
    for sweep in result["full_path"]:
        profile = result["profiles"]["full_path"].get(sweep["history"])
        if profile and profile["buckets"]:
            top = profile["buckets"][0]
            lines.append(
                f"- In the full client path ({sweep['history']}), the largest share is "
                f"{top['what']} ({top['share']:.0%}): each entry is placed in its own "
                "local transaction, with a disk sync."
                if top["what"] == "local SQLite store"
                else f"- In the full client path ({sweep['history']}), the largest share "
                f"is {top['what']} ({top['share']:.0%})."
            )
    lines += ["", "Where the time goes (cProfile, own time by kind of work):", ""]
    profiles = result["profiles"]
    columns = [
        (f"full path, {label}, {num(data['data_entries'])} entries", data)
        for label, data in profiles["full_path"].items()
    ]
    columns.append(
        (
            f"protocol path, {num(profiles['protocol_path']['data_entries'])} entries",
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
    lines += table(["work", *(title for title, _ in columns)], rows)
    top = columns[0][1]["top_functions"][:6]
    lines += [f"Top functions by own time ({columns[0][0]}):", ""]
    lines += table(
        ["function", "calls", "own s", "share"],
        [
            [
                f"`{f['function']}`",
                num(f["calls"]),
                num(f["own_s"], 3),
                f"{f['share']:.0%}",
            ]
            for f in top
        ],
    )
    return lines


def ingest_section(record: dict[str, Any]) -> list[str]:
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
        "each batch as one statement. The relay and the limits run in turn, each the "
        f"best of {result['rows'][0]['relay'].get('runs', 1)} run(s). Plaintexts are "
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
                num(row["entries"]),
                num(row["relay"]["entries_per_s"]),
                num(row["insert_loop"]["entries_per_s"]),
                f"{row['ratio']:.0%}",
                num(many["entries_per_s"]) if many else "–",
                f"{row['ratio_vs_executemany']:.0%}" if many else "–",
                met(row["ratio"] >= result["target_ratio"]) if row["batch"] >= 100 else "–",
            ]
        )
    lines += table(
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
    for row in result["rows"]:
        if row["batch"] >= 100 and row["ratio"] > 1 and "ratio_vs_executemany" in row:
            lines += [
                f"On {row['backend']} the relay beats the per-row INSERT loop with batches "
                f"of {row['batch']}: its ORM flush sends a batch's rows as one multi-row "
                "insert. Against `executemany` of the same rows it reaches "
                f"{row['ratio_vs_executemany']:.0%}.",
                "",
            ]
    return lines


def fanout_section(record: dict[str, Any], plot_link: str) -> list[str]:
    result = record["result"]
    lines = _header(record, "3. Fan-out")
    lines += [
        "`N` clients are `N/2` couples, each couple a space with both devices on a "
        "WebSocket. Every client appends one entry per request at random moments "
        f"(Poisson, {result['rate_per_client']} appends/s per client) and the relay "
        "pushes it to the partner. Latency runs from just before the append request to "
        "the partner's socket handing over the push. The ladder of counts stops at the "
        "first p99 above 100 ms, then halves the gap below it. The limit is the "
        "*transport floor*: the same load against `bench/bare_fanout.py`, a "
        "pass-through with the relay's wire shapes and no checks, no database and no "
        "durable commit; the ratios divide the relay's p50 and p99 by the floor's at the "
        "same count. A step whose p99 is above 100 ms is run a second time and judged "
        "on the samples of both runs (*runs* = 2). With fewer than a few hundred "
        "samples, p99 is close to the largest latency seen, so a single stall (a disk "
        "sync on a shared machine) moves it. Relay, load generator and database share "
        "the machine; their CPU shares are given (1.0 = one core busy).",
        "",
        f"![fan-out latency against client count]({plot_link})",
        "",
    ]
    floor = result.get("transport_floor", [])
    if floor:
        lines += ["Transport floor:", ""]
        lines += table(
            ["clients", "appends/s", "delivered", "p50 ms", "p99 ms", "max ms", "lost/dup"],
            [
                [
                    num(step["clients"]),
                    num(step["appends_per_s"], 1),
                    num(step["delivered"]),
                    num(step["p50_ms"], 1),
                    num(step["p99_ms"], 1),
                    num(step["max_ms"], 1),
                    f"{step['missing']}/{step['duplicates']}",
                ]
                for step in floor
            ],
        )
    for backend, data in result["backends"].items():
        rows = [
            [
                num(step["clients"]),
                str(step.get("runs", 1)),
                num(step["appends_per_s"], 1),
                num(step["delivered"]),
                num(step["p50_ms"], 1),
                num(step["p99_ms"], 1),
                times(step["p50_ratio"]) if "p50_ratio" in step else "–",
                times(step["p99_ratio"]) if "p99_ratio" in step else "–",
                num(step["max_ms"], 1),
                f"{step['missing']}/{step['duplicates']}",
                f"{step['relay_cpu_share']:.2f}",
                f"{step['load_generator_cpu_share']:.2f}",
                f"{step.get('machine_busy_share', 0):.0%}",
            ]
            for step in data["steps"]
        ]
        lines += [f"{backend}:", ""]
        lines += table(
            [
                "clients",
                "runs",
                "appends/s",
                "delivered",
                "p50 ms",
                "p99 ms",
                "p50 / floor",
                "p99 / floor",
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


def bytes_section(record: dict[str, Any]) -> list[str]:
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
            num(row["plaintext"]),
            num(row["padded"]),
            f"{row['padding_overhead']:.0%}",
            num(row["ciphertext"]),
            num(row["entry"]),
        ]
        for backend in backends:
            cells += [
                num(row[f"stored_{backend}"]),
                num(row[f"stored_{backend}_per_plaintext_byte"], 2),
            ]
        rows.append(cells)
    lines += table(header, rows)
    padding = result["history_padding"]
    buckets = ", ".join(f"{count} in {size}" for size, count in padding["buckets"].items())
    lines += [
        f"Real plaintexts (the {num(padding['entries'])} entries of the generated "
        f"history): mean {num(padding['mean_plaintext'], 1)} bytes, padded to a mean of "
        f"{num(padding['mean_padded'], 1)}: padding adds {padding['padding_overhead']:.0%}. "
        f"Buckets: {buckets}.",
        "",
    ]
    return lines


def initial_sync_section(record: dict[str, Any]) -> list[str]:
    result = record["result"]
    lines = _header(record, "5. Initial sync")
    lines += [
        f"A year of use is estimated at {num(result['year_of_entries'])} entries. The "
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
            num(row["entries"]),
            f"{row['seconds']:.1f} s",
            f"{row['sync_s']:.1f} s",
            f"{row['agreements_view_s']:.2f} s",
            f"{row['fetch_only_s']:.2f} s",
            f"{row['raw_crypto_s']:.2f} s",
            times(row["ratio"]),
        ]

    both = result["both_partners_writing"]
    for row in both["rows"]:
        rows.append(cells("both partners writing", row))
    rows.append(cells("one partner writing", result["one_partner_writing"]))
    lines += table(header, rows)
    reached = max((row["data_entries"] for row in both["rows"]), default=0)
    if reached < result["year_of_entries"]:
        projected = ", ".join(
            f"{num(item['size'])} entries projected at {num(item['projected_s'])} s"
            for item in both["not_run"]
        )
        lines += [
            f"With both partners writing, the year of history was **not** synced: the "
            f"largest size that fit the time budget was {num(reached)} entries"
            + (f" ({projected})" if projected else "")
            + ". The cause is the ingest ordering described under benchmark 1. The "
            "one-partner history shows the per-entry cost without it.",
            "",
        ]
    return lines


def scaleout_section(record: dict[str, Any]) -> list[str]:
    result = record["result"]
    lines = _header(record, "6. Scale-out")
    if "skipped" in result:
        return [*lines, f"Skipped: {result['skipped']}.", ""]
    lines += [
        f"{result['writers']} devices, each in its own space, append batches of "
        f"{result['batch']} as fast as the relay answers, either all to one relay "
        "process or split over two relay processes sharing one PostgreSQL database "
        "(fan-out between them through LISTEN/NOTIFY). The two set-ups run in turn, "
        f"{result['one'].get('runs', 1)} time(s) each; the best of each is shown.",
        "",
    ]
    rows = [
        [
            str(run["processes"]),
            num(run["entries"]),
            num(run["entries_per_s"]),
            ", ".join(f"{share:.2f}" for share in run["relay_cpu_share"]),
            f"{run['machine_busy_share']:.0%}",
        ]
        for run in (result["one"], result["two"])
    ]
    lines += table(
        ["relay processes", "entries", "entries/s", "relay CPU (per process)", "machine busy"],
        rows,
    )
    lines += [
        f"Two processes reach {times(result['speedup'])} the throughput of one, that is "
        f"{result['ratio']:.0%} of twice one."
        + (
            " With two processes the machine's cores were nearly all busy (relays, "
            "PostgreSQL and the load generator share them), so the ratio is capped by "
            "this machine rather than by the relay."
            if result["two"]["machine_busy_share"] >= 0.85
            else ""
        ),
        "",
    ]
    return lines


def relay_profile_section(record: dict[str, Any]) -> list[str]:
    result = record["result"]
    lines = _header(record, "Where the relay's time goes")
    lines += [
        "Not a figure: a relay process on SQLite profiled with cProfile while it serves "
        "the workloads of benchmarks 2 and 3 (each on a relay of its own; start-up is "
        "left out). Only the event-loop thread is profiled (the SQLite driver's thread, "
        "where the database work and its disk syncs happen, is not), and time spent "
        "waiting in the loop's poll is idle and left out. Profiling slows the relay, so "
        "no figure comes from these runs.",
        "",
    ]
    workloads = {label: data for label, data in result["workloads"].items() if "buckets" in data}
    if not workloads:
        return [*lines, "No profile was written.", ""]
    kinds: list[str] = []
    for data in workloads.values():
        for bucket in data["buckets"]:
            if bucket["what"] not in kinds:
                kinds.append(bucket["what"])
    shares = [{b["what"]: b["share"] for b in data["buckets"]} for data in workloads.values()]
    rows = [[kind] + [f"{share.get(kind, 0.0):.0%}" for share in shares] for kind in kinds]
    rows.append(
        ["busy / idle seconds"]
        + [f"{data['total_s']:.1f} / {data['idle_s']:.1f}" for data in workloads.values()]
    )
    lines += table(["work (event-loop thread)", *workloads], rows)
    for label, data in workloads.items():
        largest = data["buckets"][0]
        lines += [
            f"- {label}: the largest share of the event loop's busy time is "
            f"{largest['what']} ({largest['share']:.0%}); it was busy "
            f"{data['total_s']:.1f} s and idle {data['idle_s']:.1f} s.",
        ]
    lines.append("")
    for label, data in workloads.items():
        lines += [f"Top functions by own time, {label}:", ""]
        lines += table(
            ["function", "calls", "own s", "share"],
            [
                [f"`{f['function']}`", num(f["calls"]), num(f["own_s"], 3), f"{f['share']:.0%}"]
                for f in data["top_functions"][:5]
            ],
        )
    return lines
