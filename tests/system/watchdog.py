"""A healthy client that keeps using the relay while a test abuses it.

:class:`Watchdog` has two devices in a space of their own: the first appends an entry
over HTTP every ``interval`` seconds, the second follows the space's WebSocket and must
see each entry pushed. Each round trip (append, then the push to the other device) is
timed. A test starts it, abuses the relay from elsewhere, stops it, and checks that
every round went through, quickly: the relay kept serving other clients meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field

import aiohttp

from tests.server.relay_helpers import Device, RelayAPI, b64, new_space, unb64


@dataclass
class WatchdogReport:
    latencies: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def worst(self) -> float:
        return max(self.latencies, default=float("inf"))

    def check(self, *, rounds: int, worst: float) -> None:
        """At least ``rounds`` rounds, none failed, none slower than ``worst`` seconds."""
        assert not self.failures, self.failures[:5]
        assert len(self.latencies) >= rounds, (len(self.latencies), rounds)
        assert self.worst < worst, sorted(self.latencies)[-5:]


class Watchdog:
    """See the module docstring. ``async with Watchdog(url) as dog: ...; dog.report``."""

    def __init__(self, base_url: str, *, interval: float = 0.05, patience: float = 10.0) -> None:
        self.base_url = base_url
        self.interval = interval
        self.patience = patience
        self.report = WatchdogReport()
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._http: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Watchdog:
        self._http = aiohttp.ClientSession()
        api = RelayAPI(self._http, self.base_url)
        writer = await api.founded(Device(space=new_space()))
        reader = await api.join(writer, Device(space=writer.space), same_member=False)
        ws_url = self.base_url.replace("http://", "ws://") + f"/v1/spaces/{b64(writer.space)}/ws"
        ws = await self._http.ws_connect(
            ws_url, headers={"Authorization": f"Bearer {reader.token}"}
        )
        ready = await ws.receive_json(timeout=10)
        assert ready["type"] == "ready", ready
        self._task = asyncio.ensure_future(self._run(api, writer, ws))
        return self

    async def rounds_done(self, count: int, *, timeout: float = 30.0) -> None:
        """Wait until ``count`` rounds went through in all (or one failed): the relay is
        shown serving others after the abuse too, however fast the abuse itself was."""
        deadline = time.monotonic() + timeout
        while (
            len(self.report.latencies) < count
            and not self.report.failures
            and self._task is not None
            and not self._task.done()
            and time.monotonic() < deadline
        ):
            await asyncio.sleep(self.interval)

    async def __aexit__(self, *exc: object) -> None:
        self._stop.set()
        if self._task is not None:
            await asyncio.wait_for(self._task, self.patience + 5)
        if self._http is not None:
            await self._http.close()

    async def _run(
        self, api: RelayAPI, writer: Device, ws: aiohttp.ClientWebSocketResponse
    ) -> None:
        try:
            while not self._stop.is_set():
                entry = writer.data(b"still here")
                started = time.monotonic()
                try:
                    status, body = await asyncio.wait_for(api.append(writer, entry), self.patience)
                    if status != 200:
                        self.report.failures.append(f"append {status} {body}")
                        return
                    await asyncio.wait_for(self._pushed(ws, entry.id), self.patience)
                except (TimeoutError, aiohttp.ClientError, ConnectionError) as exc:
                    self.report.failures.append(f"round failed: {exc!r}")
                    return
                self.report.latencies.append(time.monotonic() - started)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), self.interval)
        finally:
            await ws.close()

    @staticmethod
    async def _pushed(ws: aiohttp.ClientWebSocketResponse, wanted: bytes) -> None:
        from protocol.entry import entry_id

        while True:
            message = await ws.receive_json()
            if message.get("type") == "entries":
                if any(entry_id(unb64(raw)) == wanted for raw in message["entries"]):
                    return
