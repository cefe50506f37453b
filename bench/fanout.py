"""Benchmark 3: fan-out. Time from an append to its delivery on the partner's WebSocket.

The load is shaped like Accord's use: ``N`` connected clients are ``N / 2`` couples,
each couple a space of its own with both devices on a WebSocket. Every client appends
entries (HTTP, one entry per request, as the sync engine pushes a local change) at
random moments (a Poisson process, ``rate`` appends per second per client), and the
relay pushes each entry to the partner's socket. A latency is measured from just
before the append request is sent to the moment the partner's socket hands over the
push that carries the entry (matched by entry id), all in this one process's clock.

Client counts grow along a ladder; 10, 100 and 300 are always measured, and the
ladder stops at the first count whose p99 is above 100 ms; a couple of steps then
halve the gap between the last count within the limit and that one. A step whose p99
is above the limit is run a second time and judged on the samples of both runs.

The limit measured in the same run is the transport floor: the same load generator
against :mod:`bench.bare_fanout`, a pass-through with the relay's wire shapes and
nothing else (no checks, no database), at 10, 100 and 300 clients. The ratios are
relay p50 / floor p50 and relay p99 / floor p99. Every entry appended must
be delivered exactly once; the count of any that were not is reported. The CPU time
the relay process and this load generator used is reported too, so a reader can tell
which one was the bottleneck on a small machine.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from bench.feeds import TYPICAL_PLAINTEXT, Couple, Feed, couple_space
from bench.machine import MachineLoad, ratio
from bench.relays import RelayProcess, bare_fanout, relay_on
from client_lib.relay_client import LiveConnection, RelayClient
from protocol.entry import entry_id

P99_LIMIT_MS = 100.0
_SETUP_CONCURRENCY = 16


@dataclass(frozen=True, slots=True, kw_only=True)
class FanoutSettings:
    #: Always measured.
    counts: tuple[int, ...] = (10, 100, 300)
    #: Measured after those, in order, until p99 goes above the limit.
    search: tuple[int, ...] = (500, 750, 1_000, 1_500, 2_000)
    #: Appends per second per connected client.
    rate: float = 0.2
    #: Each step runs long enough for about this many appends, within these bounds.
    samples: int = 600
    min_seconds: float = 15.0
    max_seconds: float = 45.0
    #: Seconds given to the last deliveries after the writers stop.
    drain_seconds: float = 5.0
    #: Extra steps halving the gap around the first count above the limit.
    bisect_steps: int = 2
    #: Measure a step whose p99 is above the limit once more, on both runs' samples.
    confirm: bool = True


@dataclass(slots=True)
class _Tally:
    sent: dict[bytes, float] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    duplicates: int = 0
    seen: set[bytes] = field(default_factory=set)

    def delivered(self, raw: bytes, at: float) -> None:
        eid = entry_id(raw)
        if eid in self.seen:
            self.duplicates += 1
            return
        self.seen.add(eid)
        sent = self.sent.get(eid)
        if sent is not None:
            self.latencies.append(at - sent)


def percentile(values: list[float], share: float) -> float:
    """The ``share`` quantile of ``values`` (nearest rank); NaN when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(0, math.ceil(share * len(ordered)) - 1)
    return ordered[rank]


async def _join(
    couple: Couple, url: str, session: aiohttp.ClientSession, gate: asyncio.Semaphore
) -> tuple[RelayClient, RelayClient]:
    async with gate:
        founder = RelayClient(
            url, device_key=couple.founder.key, space=couple.founder.space, session=session
        )
        partner = RelayClient(
            url, device_key=couple.partner.key, space=couple.partner.space, session=session
        )
        await founder.create_space(couple.founding)
        await founder.append([couple.add_partner])
        await founder.token()
        await partner.token()
        return founder, partner


async def _listen(live: LiveConnection, tally: _Tally) -> None:
    async for batch in live.pushes():
        at = time.perf_counter()
        for raw in batch:
            tally.delivered(raw, at)


async def _write(
    client: RelayClient,
    entries: list[bytes],
    tally: _Tally,
    *,
    rate: float,
    until: float,
    rng: random.Random,
) -> None:
    moment = time.perf_counter()
    for raw in entries:
        moment += rng.expovariate(rate)
        if moment >= until:
            return
        await asyncio.sleep(max(0.0, moment - time.perf_counter()))
        tally.sent[entry_id(raw)] = time.perf_counter()
        await client.append([raw])


async def measure_step(
    url: str, clients: int, settings: FanoutSettings, cpu_of_relay: Callable[[], float]
) -> dict[str, Any]:
    """One step of the ladder: ``clients`` connected clients for a while."""
    couples = [couple_space() for _ in range(max(1, clients // 2))]
    seconds = min(
        settings.max_seconds,
        max(settings.min_seconds, settings.samples / (settings.rate * 2 * len(couples))),
    )
    per_writer = math.ceil(settings.rate * seconds * 2) + 5
    feeds: list[Feed] = [feed for c in couples for feed in (c.founder, c.partner)]
    plan = {id(feed): _plan(feed, per_writer) for feed in feeds}
    tally = _Tally()
    rng = random.Random(clients)
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session, AsyncExitStack() as stack:
        gate = asyncio.Semaphore(_SETUP_CONCURRENCY)
        pairs = await asyncio.gather(*(_join(c, url, session, gate) for c in couples))
        lives = await asyncio.gather(
            *(stack.enter_async_context(client.websocket()) for pair in pairs for client in pair)
        )
        listeners = [asyncio.create_task(_listen(live, tally)) for live in lives]
        writers_of = [client for pair in pairs for client in pair]
        # Warm up: one entry per client, delivered before the clock starts (first
        # requests pay for connections and the relay's first-use caches).
        await asyncio.gather(
            *(
                client.append([plan[id(feed)].pop()])
                for client, feed in zip(writers_of, feeds, strict=True)
            )
        )
        await _settle(tally, len(feeds), settings.drain_seconds)
        relay_cpu, own_cpu, machine = cpu_of_relay(), time.process_time(), MachineLoad()
        start = time.perf_counter()
        until = start + seconds
        await asyncio.gather(
            *(
                _write(
                    client,
                    plan[id(feed)],
                    tally,
                    rate=settings.rate,
                    until=until,
                    rng=random.Random(rng.random()),
                )
                for client, feed in zip(writers_of, feeds, strict=True)
            )
        )
        ran = time.perf_counter() - start
        relay_cpu, own_cpu = cpu_of_relay() - relay_cpu, time.process_time() - own_cpu
        machine_busy = machine.share()
        deadline = time.perf_counter() + settings.drain_seconds
        while len(tally.seen & tally.sent.keys()) < len(tally.sent):
            if time.perf_counter() >= deadline:
                break
            await asyncio.sleep(0.05)
        for task in listeners:
            task.cancel()
        await asyncio.gather(*listeners, return_exceptions=True)
    latencies_ms = [value * 1000 for value in tally.latencies]
    missing = len(tally.sent.keys() - tally.seen)
    return {
        "clients": 2 * len(couples),
        "seconds": round(ran, 1),
        "appends": len(tally.sent),
        "appends_per_s": round(len(tally.sent) / ran, 1),
        "delivered": len(latencies_ms),
        "missing": missing,
        "duplicates": tally.duplicates,
        "p50_ms": round(percentile(latencies_ms, 0.50), 1),
        "p99_ms": round(percentile(latencies_ms, 0.99), 1),
        "max_ms": round(max(latencies_ms, default=math.nan), 1),
        "relay_cpu_share": round(relay_cpu / ran, 2),
        "load_generator_cpu_share": round(own_cpu / ran, 2),
        "machine_busy_share": machine_busy,
        "runs": 1,
        "latencies_ms": latencies_ms,
    }


def merge_steps(first: dict[str, Any], second: dict[str, Any]) -> dict[str, Any]:
    """Two runs of one client count as one step: counts add up, percentiles are taken
    over every latency of both, CPU shares are weighted by run time."""
    latencies = first["latencies_ms"] + second["latencies_ms"]
    ran = first["seconds"] + second["seconds"]

    def weighted(name: str) -> float:
        total = first[name] * first["seconds"] + second[name] * second["seconds"]
        return round(total / ran, 2) if ran else 0.0

    appends = first["appends"] + second["appends"]
    return {
        "clients": first["clients"],
        "seconds": round(ran, 1),
        "appends": appends,
        "appends_per_s": round(appends / ran, 1) if ran else 0.0,
        "delivered": len(latencies),
        "missing": first["missing"] + second["missing"],
        "duplicates": first["duplicates"] + second["duplicates"],
        "p50_ms": round(percentile(latencies, 0.50), 1),
        "p99_ms": round(percentile(latencies, 0.99), 1),
        "max_ms": round(max(latencies, default=math.nan), 1),
        "relay_cpu_share": weighted("relay_cpu_share"),
        "load_generator_cpu_share": weighted("load_generator_cpu_share"),
        "machine_busy_share": weighted("machine_busy_share"),
        "runs": first["runs"] + second["runs"],
        "latencies_ms": latencies,
    }


def _plan(feed: Feed, count: int) -> list[bytes]:
    """The feed's next ``count`` entries; the last one (popped first) warms up."""
    entries = feed.many(count, TYPICAL_PLAINTEXT)
    return [*entries[1:], entries[0]]


async def _settle(tally: _Tally, count: int, seconds: float) -> None:
    """Wait until ``count`` warm-up entries were delivered, then forget them."""
    deadline = time.perf_counter() + seconds
    while len(tally.seen) < count and time.perf_counter() < deadline:
        await asyncio.sleep(0.02)
    tally.seen.clear()


def _within(step: dict[str, Any]) -> bool:
    return bool(step["p99_ms"] <= P99_LIMIT_MS and not step["missing"])


def largest_within_limit(steps: list[dict[str, Any]]) -> dict[str, Any]:
    """The largest client count measured before the first p99 above the limit."""
    best: int | None = None
    first_over: int | None = None
    for step in sorted(steps, key=lambda item: item["clients"]):
        if not _within(step):
            first_over = step["clients"]
            break
        best = step["clients"]
    return {"largest_ok": best, "first_over": first_over, "p99_limit_ms": P99_LIMIT_MS}


async def _ladder(
    backend: str, relay: RelayProcess, settings: FanoutSettings, log: Callable[[str], None]
) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = []

    async def step_at(clients: int) -> dict[str, Any]:
        step = await measure_step(relay.url, clients, settings, relay.cpu_seconds)
        if settings.confirm and not _within(step):
            # A p99 above the limit is measured again and judged on both runs' samples,
            # so one stall of a shared disk does not decide the step alone.
            again = await measure_step(relay.url, clients, settings, relay.cpu_seconds)
            step = merge_steps(step, again)
        steps.append(step)
        log(
            f"  {backend}, {step['clients']} clients: p50 {step['p50_ms']} ms, "
            f"p99 {step['p99_ms']} ms, {step['appends_per_s']} appends/s, "
            f"missing {step['missing']}, relay CPU {step['relay_cpu_share']:.0%}"
        )
        return step

    ladder = sorted(set(settings.counts)) + [
        count for count in settings.search if count > max(settings.counts)
    ]
    for clients in ladder:
        step = await step_at(clients)
        if clients >= max(settings.counts) and not _within(step):
            break
    # Narrow the gap between the last count within the limit and the first above it.
    for _ in range(settings.bisect_steps):
        limit = largest_within_limit(steps)
        low, high = limit["largest_ok"], limit["first_over"]
        if low is None or high is None:
            break
        middle = (low + high) // 4 * 2
        if middle in (low, high) or high - low < 0.15 * high:
            break
        await step_at(middle)
    return sorted(steps, key=lambda step: step["clients"])


def _without_samples(step: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in step.items() if name != "latencies_ms"}


async def run(
    *,
    backends: tuple[str, ...],
    settings: FanoutSettings,
    directory: Path,
    log: Callable[[str], None],
) -> dict[str, Any]:
    """Benchmark 3 on each backend."""
    results: dict[str, Any] = {}
    for backend in backends:
        async with relay_on(backend, directory / f"fanout-{backend}") as relays:
            steps = [
                _without_samples(step) for step in await _ladder(backend, relays[0], settings, log)
            ]
        results[backend] = {"steps": steps, "limit": largest_within_limit(steps)}
    floor: list[dict[str, Any]] = []
    async with bare_fanout(directory / "fanout-floor") as bare:
        for clients in sorted(set(settings.counts)):
            step = _without_samples(
                await measure_step(bare.url, clients, settings, bare.cpu_seconds)
            )
            floor.append(step)
            log(
                f"  transport floor, {step['clients']} clients: p50 {step['p50_ms']} ms, "
                f"p99 {step['p99_ms']} ms"
            )
    by_count = {step["clients"]: step for step in floor}
    for data in results.values():
        for step in data["steps"]:
            base = by_count.get(step["clients"])
            if base is not None:
                step["p50_ratio"] = ratio(step["p50_ms"], base["p50_ms"])
                step["p99_ratio"] = ratio(step["p99_ms"], base["p99_ms"])
    return {
        "rate_per_client": settings.rate,
        "plaintext_bytes": TYPICAL_PLAINTEXT,
        "backends": results,
        "transport_floor": floor,
    }
