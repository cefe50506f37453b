"""A hostile relay: an aiohttp proxy in front of the real relay that rewrites its answers.

Every HTTP request is passed to the real relay as it came (method, path, query, body,
``Authorization`` and ``Content-Type``), and the answer is passed back, except that
while a :class:`Tamper` is set, the entries of every ``fetch`` answer and the heads of
every ``heads`` answer go through it first. The WebSocket is not offered (the proxy
answers its path with 404), so clients behind it sync over HTTP only.

The tampers are what a hostile relay can do without any key: flip bits, drop, hold
back, reorder or replay stored entries, and lie about its heads. Clients must name each
one and merge none of it.
"""

from __future__ import annotations

import base64
import json
import random
from collections.abc import Iterable
from typing import Any

import aiohttp
from aiohttp import web

from protocol.entry import Entry, entry_id


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Tamper:
    """Rewrites what the relay answers. The base class changes nothing."""

    def fetch(self, entries: list[bytes]) -> list[bytes]:
        return entries

    def heads(self, heads: dict[str, Any]) -> dict[str, Any]:
        return heads


def flip_ciphertext_byte(raw: bytes, position: int = 17) -> bytes:
    """The same entry with one bit of its ciphertext flipped (its signature kept)."""
    entry = Entry.from_bytes(raw)
    body = bytearray(entry.body)
    body[position % len(body)] ^= 0x01
    return Entry(
        type=entry.type,
        space=entry.space,
        device=entry.device,
        seq=entry.seq,
        prev=entry.prev,
        epoch=entry.epoch,
        seen=entry.seen,
        nonce=entry.nonce,
        body=bytes(body),
        sig=entry.sig,
    ).to_bytes()


class FlipCiphertext(Tamper):
    """Flips a ciphertext bit in every copy of the entries ``targets`` it serves."""

    def __init__(self, targets: Iterable[bytes]) -> None:
        self.targets = set(targets)
        self.served = 0

    def fetch(self, entries: list[bytes]) -> list[bytes]:
        out = []
        for raw in entries:
            if entry_id(raw) in self.targets:
                raw = flip_ciphertext_byte(raw)
                self.served += 1
            out.append(raw)
        return out


class Replay(Tamper):
    """Adds old entries (already delivered, or of another space) to every answer."""

    def __init__(self, old: Iterable[bytes]) -> None:
        self.old = list(old)

    def fetch(self, entries: list[bytes]) -> list[bytes]:
        return self.old + entries


class Drop(Tamper):
    """Leaves the entries ``targets`` out of every answer (entries and heads stay
    otherwise true, so the relay says it has more than it gives)."""

    def __init__(self, targets: Iterable[bytes]) -> None:
        self.targets = set(targets)
        self.dropped = 0

    def fetch(self, entries: list[bytes]) -> list[bytes]:
        kept = [raw for raw in entries if entry_id(raw) not in self.targets]
        self.dropped += len(entries) - len(kept)
        return kept


class Reorder(Tamper):
    """Holds the entries ``held`` back for the first ``hold_for`` answers, and serves
    every answer shuffled (seeded)."""

    def __init__(self, held: Iterable[bytes], *, hold_for: int = 1, seed: int = 0) -> None:
        self.held = set(held)
        self.hold_for = hold_for
        self.answers = 0
        self._rng = random.Random(seed)

    def fetch(self, entries: list[bytes]) -> list[bytes]:
        self.answers += 1
        if self.answers <= self.hold_for:
            entries = [raw for raw in entries if entry_id(raw) not in self.held]
        shuffled = list(entries)
        self._rng.shuffle(shuffled)
        return shuffled


class Inject(Tamper):
    """Adds entries the real relay refused to store (a colluding relay)."""

    def __init__(self, extra: Iterable[bytes]) -> None:
        self.extra = list(extra)

    def fetch(self, entries: list[bytes]) -> list[bytes]:
        return entries + self.extra


_FORWARDED_HEADERS = ("Authorization", "Content-Type")


class TamperingRelay:
    """The proxy itself: ``await TamperingRelay(url).start()``, then point clients at
    :attr:`url` and set :attr:`tamper`."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.tamper: Tamper | None = None
        self.fetches = 0
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> TamperingRelay:
        self._session = aiohttp.ClientSession()
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = int(server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
        return self

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    async def __aenter__(self) -> TamperingRelay:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        if request.path.endswith("/ws"):
            raise web.HTTPNotFound()
        assert self._session is not None
        headers = {k: request.headers[k] for k in _FORWARDED_HEADERS if k in request.headers}
        body = await request.read()
        async with self._session.request(
            request.method,
            self.upstream + request.path_qs,
            data=body if body else None,
            headers=headers,
        ) as answer:
            status = answer.status
            data = await answer.read()
            content_type = answer.content_type
        tamper = self.tamper
        if status == 200 and tamper is not None:
            data = self._rewrite(request.path, data, tamper)
        return web.Response(body=data, status=status, content_type=content_type)

    def _rewrite(self, path: str, data: bytes, tamper: Tamper) -> bytes:
        if path.endswith("/fetch"):
            self.fetches += 1
            body = json.loads(data)
            entries = tamper.fetch([unb64(item) for item in body["entries"]])
            body["entries"] = [b64(raw) for raw in entries]
            return json.dumps(body).encode()
        if path.endswith("/heads"):
            body = json.loads(data)
            body["heads"] = tamper.heads(body["heads"])
            return json.dumps(body).encode()
        return data
