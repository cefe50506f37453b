"""Many WebSocket clients pushing entries at once, with fan-out latency and exactly-once checks.

:func:`run_load` sets up ``spaces`` spaces of two devices each (a founder and a second
member added by a real roster entry), opens one WebSocket per device, then has every
device append one entry every ``interval`` seconds over its WebSocket for ``duration``
seconds, each waiting for the relay's ``appended`` before the next. Every device records
what is pushed to it. Afterwards it waits until everything stored was delivered, and
reports:

* the fan-out latency of each delivery: from sending the ``append`` to the partner
  receiving the pushed entry (p50, p99, max);
* entries stored but never delivered to the partner (lost), delivered more than once
  (duplicates), pushed back to their own author, or pushed that nobody stored;
* per device, the relay's stored feed against what the relay acknowledged.

Entries are real: sealed and signed by the protocol core, verified by the relay.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from protocol.entry import entry_id
from tests.server.relay_helpers import Device, RelayAPI, b64, new_space, unb64

SETUP_CONCURRENCY = 16


@dataclass
class LoadReport:
    clients: int
    spaces: int
    duration: float
    stored: int = 0
    delivered: int = 0
    latencies: list[float] = field(default_factory=list)
    lost: int = 0
    duplicates: int = 0
    echoed: int = 0
    unknown: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    feed_mismatches: int = 0

    def quantile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    def summary(self) -> dict[str, Any]:
        return {
            "clients": self.clients,
            "spaces": self.spaces,
            "seconds": self.duration,
            "stored": self.stored,
            "delivered": self.delivered,
            "entries_per_second": round(self.stored / self.duration, 1),
            "p50_ms": round(self.quantile(0.50) * 1000, 1),
            "p99_ms": round(self.quantile(0.99) * 1000, 1),
            "max_ms": round(max(self.latencies, default=0) * 1000, 1),
            "mean_ms": round(statistics.fmean(self.latencies) * 1000, 1) if self.latencies else 0,
            "lost": self.lost,
            "duplicates": self.duplicates,
            "echoed": self.echoed,
            "unknown": self.unknown,
            "errors": dict(self.errors),
            "feed_mismatches": self.feed_mismatches,
        }


@dataclass
class _Client:
    device: Device
    partner: _Client | None = None
    ws: aiohttp.ClientWebSocketResponse | None = None
    sent_at: dict[bytes, float] = field(default_factory=dict)
    stored: list[bytes] = field(default_factory=list)
    received: Counter[bytes] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    replies: dict[int, asyncio.Future[dict[str, Any]]] = field(default_factory=dict)


async def _make_space(api: RelayAPI) -> tuple[_Client, _Client]:
    founder = await api.founded(Device(space=new_space()))
    partner = await api.join(founder, Device(space=founder.space), same_member=False)
    founder.saw(partner)
    first, second = _Client(device=founder), _Client(device=partner)
    first.partner, second.partner = second, first
    return first, second


async def _read(client: _Client, partner_sent: dict[bytes, float]) -> None:
    assert client.ws is not None
    async for message in client.ws:
        if message.type != aiohttp.WSMsgType.TEXT:
            client.errors[f"frame:{message.type.name}"] += 1
            break
        now = time.monotonic()
        body = json.loads(message.data)
        kind = body.get("type")
        if kind == "entries":
            for raw in body["entries"]:
                eid = entry_id(unb64(raw))
                client.received[eid] += 1
                sent = partner_sent.get(eid)
                if sent is not None and client.received[eid] == 1:
                    client.latencies.append(now - sent)
        elif kind in {"appended", "error"} and isinstance(body.get("id"), int):
            future = client.replies.pop(body["id"], None)
            if future is not None and not future.done():
                future.set_result(body)
        elif kind == "error":
            client.errors[body["error"]["code"]] += 1
    close = client.ws.close_code
    if close not in (None, 1000):
        client.errors[f"close:{close}"] += 1


async def _push(client: _Client, stop: asyncio.Event, interval: float, offset: float) -> None:
    assert client.ws is not None
    loop = asyncio.get_running_loop()
    await asyncio.sleep(offset)
    request = 0
    while not stop.is_set():
        started = loop.time()
        entry = client.device.data(b"load " + str(request).encode(), advance=False)
        request += 1
        future: asyncio.Future[dict[str, Any]] = loop.create_future()
        client.replies[request] = future
        client.sent_at[entry.id] = time.monotonic()
        await client.ws.send_str(
            json.dumps({"type": "append", "id": request, "entries": [b64(entry.to_bytes())]})
        )
        try:
            reply = await asyncio.wait_for(future, 30)
        except TimeoutError:
            client.errors["append_timeout"] += 1
            return
        if reply["type"] != "appended":
            client.errors[reply["error"]["code"]] += 1
            return
        client.device.seq, client.device.head = entry.seq, entry.id
        client.stored.append(entry.id)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), max(0.0, interval - (loop.time() - started)))


async def run_load(
    base_url: str, *, spaces: int, duration: float, interval: float, drain: float = 30.0
) -> LoadReport:
    """See the module docstring."""
    report = LoadReport(clients=2 * spaces, spaces=spaces, duration=duration)
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:
        api = RelayAPI(http, base_url)
        gate = asyncio.Semaphore(SETUP_CONCURRENCY)

        async def make() -> tuple[_Client, _Client]:
            async with gate:
                return await _make_space(api)

        pairs = await asyncio.gather(*[make() for _ in range(spaces)])
        clients = [client for pair in pairs for client in pair]
        ws_base = base_url.replace("http://", "ws://")

        async def connect(client: _Client) -> None:
            async with gate:
                client.ws = await http.ws_connect(
                    f"{ws_base}/v1/spaces/{b64(client.device.space)}/ws",
                    headers={"Authorization": f"Bearer {client.device.token}"},
                    max_msg_size=0,
                )
                ready = await client.ws.receive_json(timeout=30)
                assert ready["type"] == "ready", ready

        await asyncio.gather(*[connect(client) for client in clients])
        readers = [
            asyncio.ensure_future(_read(client, client.partner.sent_at))  # type: ignore[union-attr]
            for client in clients
        ]
        stop = asyncio.Event()
        pushers = [
            asyncio.ensure_future(_push(client, stop, interval, interval * n / len(clients)))
            for n, client in enumerate(clients)
        ]
        await asyncio.sleep(duration)
        stop.set()
        await asyncio.gather(*pushers)
        # Wait until every stored entry reached the partner (or the drain time is up).
        deadline = time.monotonic() + drain
        while time.monotonic() < deadline:
            if all(
                all(client.partner.received[eid] for eid in client.stored)  # type: ignore[union-attr]
                for client in clients
            ):
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)  # a late duplicate would show up here
        for client in clients:
            assert client.ws is not None
            await client.ws.close()
        await asyncio.gather(*readers, return_exceptions=True)

        for client in clients:
            partner = client.partner
            assert partner is not None
            stored = set(client.stored)
            report.stored += len(stored)
            report.latencies.extend(client.latencies)
            report.delivered += sum(partner.received[eid] for eid in stored)
            report.lost += sum(1 for eid in stored if partner.received[eid] == 0)
            report.duplicates += sum(1 for eid in stored if partner.received[eid] > 1)
            report.echoed += sum(1 for eid in client.received if eid in stored)
            theirs = set(partner.stored)
            report.unknown += sum(1 for eid in client.received if eid not in theirs)
            report.errors.update(client.errors)
        # The relay's feeds hold exactly what it acknowledged, in order.
        for first, second in pairs:
            entries = await api.fetch_all(first.device)
            for client in (first, second):
                feed = [e.id for e in entries if e.device == client.device.public]
                if feed[-len(client.stored) :] != client.stored and client.stored:
                    report.feed_mismatches += 1
    return report
