"""A TCP proxy on loopback that cuts, delays and stalls connections at random points.

Theory of operation: the proxy listens on 127.0.0.1 and opens one upstream connection
(to the relay) per client connection, then pumps bytes both ways. When a connection
opens, a seeded random generator picks its fate:

* ``clean``: bytes pass untouched;
* ``delay``: every chunk waits a few milliseconds before it is passed on;
* ``cut``: after a random number of bytes in one direction, both sides are reset
  (``abort()``, a TCP RST): the other side sees the connection die mid-request or
  mid-response, possibly after the relay has already committed what it was asked;
* ``stall``: after a random number of bytes, one direction stops for a while, then
  goes on;
* ``stall_cut``: a stall, then a reset.

The fates are drawn from one ``random.Random(seed)``, so a failing run can be replayed
with the same seed (connection order still depends on timing). :meth:`FaultProxy.heal`
makes every new connection clean, and :meth:`FaultProxy.cut_all` resets every open
connection at once (to break live WebSockets on demand). :attr:`FaultProxy.fates`
counts what was done, so a test can check that faults really happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import Counter
from dataclasses import dataclass

CHUNK = 16 * 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class FaultOdds:
    """Relative weights of each fate of a new connection."""

    clean: float = 0.45
    delay: float = 0.2
    cut: float = 0.15
    stall: float = 0.1
    stall_cut: float = 0.1
    #: A cut or stall happens after up to this many bytes in its direction.
    max_offset: int = 3000
    #: Delays per chunk and stall lengths, in seconds.
    delay_range: tuple[float, float] = (0.002, 0.04)
    stall_range: tuple[float, float] = (0.2, 1.2)


@dataclass(frozen=True, slots=True, kw_only=True)
class Fate:
    """What happens to one connection."""

    kind: str
    upstream: bool = True  # the direction the cut or stall hits: client -> relay when True
    offset: int = 0
    pause: float = 0.0
    delay: float = 0.0


class _Link:
    """One proxied connection: a client side and an upstream side."""

    def __init__(
        self,
        client: tuple[asyncio.StreamReader, asyncio.StreamWriter],
        upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter],
        fate: Fate,
    ) -> None:
        self.client_reader, self.client_writer = client
        self.up_reader, self.up_writer = upstream
        self.fate = fate
        self.aborted = False

    def abort(self) -> None:
        if self.aborted:
            return
        self.aborted = True
        for writer in (self.client_writer, self.up_writer):
            with contextlib.suppress(Exception):
                writer.transport.abort()

    async def run(self) -> None:
        pumps = [
            asyncio.ensure_future(self._pump(self.client_reader, self.up_writer, upstream=True)),
            asyncio.ensure_future(self._pump(self.up_reader, self.client_writer, upstream=False)),
        ]
        try:
            await asyncio.gather(*pumps, return_exceptions=True)
        finally:
            for pump in pumps:
                pump.cancel()
            for writer in (self.client_writer, self.up_writer):
                with contextlib.suppress(Exception):
                    writer.close()

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, upstream: bool
    ) -> None:
        fate = self.fate
        hits_here = fate.kind in {"cut", "stall", "stall_cut"} and fate.upstream == upstream
        passed = 0
        fired = False
        try:
            while not self.aborted:
                data = await reader.read(CHUNK)
                if not data:
                    with contextlib.suppress(Exception):
                        if writer.can_write_eof():
                            writer.write_eof()
                    return
                if hits_here and not fired and passed + len(data) > fate.offset:
                    fired = True
                    head = data[: max(fate.offset - passed, 0)]
                    if head:
                        writer.write(head)
                        await writer.drain()
                    if fate.kind == "cut":
                        self.abort()
                        return
                    await asyncio.sleep(fate.pause)
                    if fate.kind == "stall_cut":
                        self.abort()
                        return
                    data = data[len(head) :]
                if fate.kind == "delay":
                    await asyncio.sleep(fate.delay)
                passed += len(data)
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            self.abort()


class FaultProxy:
    """A seeded fault-injecting TCP proxy in front of ``upstream_host:upstream_port``."""

    def __init__(
        self,
        upstream_host: str,
        upstream_port: int,
        *,
        seed: int,
        odds: FaultOdds | None = None,
    ) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.seed = seed
        self.odds = odds or FaultOdds()
        self._rng = random.Random(seed)
        self._server: asyncio.base_events.Server | None = None
        self._links: set[_Link] = set()
        self.healed = False
        self.fates: Counter[str] = Counter()
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> FaultProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def __aenter__(self) -> FaultProxy:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def heal(self) -> None:
        """Every connection opened from now on is clean."""
        self.healed = True

    def cut_all(self) -> int:
        """Reset every open connection now; returns how many there were."""
        links = list(self._links)
        for link in links:
            link.abort()
        self.fates["cut_all"] += len(links)
        return len(links)

    def _draw(self) -> Fate:
        if self.healed:
            return Fate(kind="clean")
        odds = self.odds
        rng = self._rng
        kind = rng.choices(
            ["clean", "delay", "cut", "stall", "stall_cut"],
            weights=[odds.clean, odds.delay, odds.cut, odds.stall, odds.stall_cut],
        )[0]
        return Fate(
            kind=kind,
            upstream=rng.random() < 0.5,
            offset=rng.randrange(0, odds.max_offset),
            pause=rng.uniform(*odds.stall_range),
            delay=rng.uniform(*odds.delay_range),
        )

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        fate = self._draw()
        self.fates[fate.kind] += 1
        try:
            upstream = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.transport.abort()
            return
        link = _Link((reader, writer), upstream, fate)
        self._links.add(link)
        try:
            await link.run()
        finally:
            self._links.discard(link)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for link in list(self._links):
            link.abort()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)
