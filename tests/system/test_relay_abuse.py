"""Oversized bodies, slow-loris connections and WebSocket floods, while others are served.

Each abuse gets its own code (or a clean close), and throughout, a
:class:`~tests.system.watchdog.Watchdog` (two devices in another space: an HTTP append
and its WebSocket push to the partner) keeps going with bounded latency.

The relay here is its own process on SQLite with the default limits, except a short
``body_read_seconds`` (so a trickled body is cut after 2 s, not 30) and a device rate of
100/s with bursts of 200 (so a flood meets the rate limit quickly).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from conftest import make_database

from tests.server.relay_helpers import Device, RelayAPI, b64, new_space
from tests.system.watchdog import Watchdog

BODY_LIMIT = 8 * 1024 * 1024
BODY_READ_SECONDS = 2
#: Slowest acceptable round of the healthy client while the relay is abused.
WORST_ROUND = 3.0


@pytest.fixture
def abused(tmp_path: Path, start_relay: Any) -> Iterator[Any]:
    url, cleanup = make_database("sqlite", tmp_path / "db")
    relay = start_relay(
        url,
        body_read_seconds=BODY_READ_SECONDS,
        device_rate=100.0,
        device_burst=200,
        websockets_per_device=4,
    )
    yield relay
    relay.stop()
    cleanup()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        yield session


def code_of(body: Any) -> str:
    assert isinstance(body, dict) and "error" in body, body
    return str(body["error"]["code"])


async def raw_exchange(port: int, request: bytes, *, trickle: float = 0.0) -> bytes:
    """Send ``request`` on a fresh connection (a byte every ``trickle`` seconds when
    given) and return everything the relay answers before closing."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        if trickle:
            for byte in request:
                writer.write(bytes([byte]))
                await writer.drain()
                await asyncio.sleep(trickle)
        else:
            writer.write(request)
            await writer.drain()
        return await asyncio.wait_for(reader.read(65536), 30)
    finally:
        writer.close()


def parse_answer(raw: bytes) -> tuple[int, Any]:
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, json.loads(body) if body else None


async def test_oversized_bodies_get_their_codes(abused: Any, http: aiohttp.ClientSession) -> None:
    api = RelayAPI(http, abused.url)
    alice = await api.founded(Device(space=new_space()))
    space = b64(alice.space)
    async with Watchdog(abused.url) as dog:
        # Declared too large, and streamed too large with no declared length.
        status, body = await api.call(
            "POST", f"/v1/spaces/{space}/entries", raw=b" " * (BODY_LIMIT + 1), token=alice.token
        )
        assert (status, code_of(body)) == (413, "body_too_large")

        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(BODY_LIMIT // 65536 + 2):
                yield b" " * 65536

        async with http.post(
            abused.url + f"/v1/spaces/{space}/entries",
            data=chunks(),
            headers={"Authorization": f"Bearer {alice.token}"},
        ) as answer:
            assert (answer.status, code_of(await answer.json())) == (413, "body_too_large")
        # One entry above the entry limit, inside the body limit.
        status, body = await api.call(
            "POST",
            f"/v1/spaces/{space}/entries",
            {"entries": [b64(bytes(1_114_129))]},
            token=alice.token,
        )
        assert (status, code_of(body)) == (413, "entry_too_large")
        # Too many entries, too many envelopes, a too large fetch page.
        status, body = await api.append(alice, *[alice.data(advance=False) for _ in range(65)])
        assert (status, code_of(body)) == (413, "batch_too_large")
        envelope = b64(alice.envelope_for(alice))
        status, body = await api.call(
            "PUT", f"/v1/spaces/{space}/keys", {"envelopes": [envelope] * 257}, token=alice.token
        )
        assert (status, code_of(body)) == (413, "batch_too_large")
        status, body = await api.fetch(alice, limit=257)
        assert (status, code_of(body)) == (400, "bad_request")
        # A pairing message above 16 KiB.
        status, grant = await api.call("POST", "/v1/pairing/channels")
        assert status == 201
        status, body = await api.call(
            "POST",
            f"/v1/pairing/channels/{grant['channel']}/messages",
            {"body": b64(bytes(16 * 1024 + 1))},
            token=grant["side_token"],
        )
        assert (status, code_of(body)) == (413, "message_too_large")
        # A WebSocket message above the body limit: close 1009.
        ws = await http.ws_connect(
            abused.ws_url(space), headers={"Authorization": f"Bearer {alice.token}"}
        )
        assert (await ws.receive_json(timeout=10))["type"] == "ready"
        # The relay closes as soon as it reads the frame's length, while we still send.
        with contextlib.suppress(ConnectionError):
            await ws.send_str(json.dumps({"type": "ping", "pad": "x" * (BODY_LIMIT + 10)}))
        closing = await ws.receive(timeout=30)
        assert closing.type == aiohttp.WSMsgType.CLOSE and closing.data == 1009, closing
        # Nothing of it was stored.
        assert (await api.fetch_all(alice))[1:] == []
        await dog.rounds_done(2)
    dog.report.check(rounds=2, worst=WORST_ROUND)


async def test_slow_loris_connections_are_cut_while_others_are_served(
    abused: Any, http: aiohttp.ClientSession
) -> None:
    port = abused.port
    stalled: list[asyncio.StreamWriter] = []
    async with Watchdog(abused.url) as dog:
        # Many connections that send headers and then trickle a body, a byte a second:
        # each is answered bad_request once body_read_seconds have passed.
        head = (
            b"POST /v1/spaces HTTP/1.1\r\nHost: relay\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100\r\n\r\n"
        )

        async def trickled_body() -> tuple[int, Any, float]:
            loop = asyncio.get_running_loop()
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(head)
            await writer.drain()
            started = loop.time()
            answer = asyncio.ensure_future(reader.read(65536))
            try:
                for byte in b'{"space": "' + b"A" * 80:
                    if answer.done():
                        break
                    writer.write(bytes([byte]))
                    await writer.drain()
                    await asyncio.sleep(1.0)
                raw = await asyncio.wait_for(answer, 30)
            finally:
                writer.close()
            status, body = parse_answer(raw)
            return status, body, loop.time() - started

        # Many connections that send half a request line and stop: they stay open (the
        # relay's keep-alive timeout closes them later), costing the relay nothing.
        for _ in range(50):
            _reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"POST /v1/spaces HTTP/1.1\r\nHost: re")
            await writer.drain()
            stalled.append(writer)

        slow = await asyncio.gather(*[trickled_body() for _ in range(30)])
        for status, body, took in slow:
            assert (status, code_of(body)) == (400, "bad_request"), body
            assert BODY_READ_SECONDS - 0.5 < took < BODY_READ_SECONDS + 5, took
        # A whole request trickled a byte at a time, within the limit: answered normally.
        request = (
            b"POST /v1/spaces HTTP/1.1\r\nHost: relay\r\nContent-Type: application/json\r\n"
            b"Content-Length: 2\r\nConnection: close\r\n\r\n{}"
        )
        status, body = parse_answer(await raw_exchange(port, request, trickle=0.01))
        assert (status, code_of(body)) == (400, "bad_request")
        status, body = parse_answer(
            await raw_exchange(
                port,
                b"GET /healthz HTTP/1.1\r\nHost: relay\r\nConnection: close\r\n\r\n",
                trickle=0.02,
            )
        )
        assert (status, body) == (200, {"status": "ok"})
        await dog.rounds_done(20)  # with the stalled connections still open
    for writer in stalled:
        writer.close()
    dog.report.check(rounds=20, worst=WORST_ROUND)


async def test_websocket_floods_get_their_codes_while_others_are_served(
    abused: Any, http: aiohttp.ClientSession
) -> None:
    api = RelayAPI(http, abused.url)
    flooder = await api.founded(Device(space=new_space()))
    url = abused.ws_url(b64(flooder.space))
    auth = {"Authorization": f"Bearer {flooder.token}"}
    async with Watchdog(abused.url) as dog:
        ws = await http.ws_connect(url, headers=auth)
        assert (await ws.receive_json(timeout=10))["type"] == "ready"

        async def flood(frames: list[str | bytes]) -> list[dict[str, Any]]:
            for frame in frames:
                if isinstance(frame, bytes):
                    await ws.send_bytes(frame)
                else:
                    await ws.send_str(frame)
            replies = []
            for _ in frames:
                replies.append(await ws.receive_json(timeout=30))
            return replies

        # 2,000 pings at once: the first ~200 are answered, the rest are rate limited.
        replies = await flood([json.dumps({"type": "ping", "id": n}) for n in range(2000)])
        kinds = [r["type"] if r["type"] != "error" else r["error"]["code"] for r in replies]
        assert kinds.count("pong") >= 150 and kinds.count("rate_limited") >= 1000, kinds[:5]
        assert set(kinds) == {"pong", "rate_limited"}
        # Garbage and binary frames: each gets its error, and the socket stays open.
        replies = await flood(["{not json"] * 300 + [b"\x00\x01"] * 300)
        codes = [r["error"]["code"] for r in replies]
        assert codes == ["bad_json"] * 300 + ["bad_request"] * 300
        await asyncio.sleep(2.5)  # the device's bucket refills
        assert await flood([json.dumps({"type": "ping", "id": "last"})]) == [
            {"type": "pong", "id": "last"}
        ]
        # Sockets beyond the per-device limit are refused with their code.
        more = [await http.ws_connect(url, headers=auth) for _ in range(3)]
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(url, headers=auth)
        assert refused.value.status == 429
        late = await http.ws_connect(url)
        await late.send_json({"type": "auth", "token": flooder.token})
        error = await late.receive_json(timeout=10)
        assert error["error"]["code"] == "too_many_websockets"
        assert (await late.receive(timeout=10)).data == 4429
        for socket in [ws, *more, late]:
            await socket.close()
        await dog.rounds_done(10)
    dog.report.check(rounds=10, worst=WORST_ROUND)
    status, body = await api.call("GET", "/healthz")
    assert (status, body) == (200, {"status": "ok"})


async def test_sockets_opened_at_once_cannot_pass_the_limit_together(
    abused: Any, http: aiohttp.ClientSession
) -> None:
    """Eight WebSockets of one device opened at the same moment: exactly the limit (4) are
    accepted, the others refused with 429, and a slot frees up when one closes."""
    api = RelayAPI(http, abused.url)
    device = await api.founded(Device(space=new_space()))
    url = abused.ws_url(b64(device.space))
    auth = {"Authorization": f"Bearer {device.token}"}

    async def attempt() -> aiohttp.ClientWebSocketResponse | int:
        try:
            return await http.ws_connect(url, headers=auth)
        except aiohttp.WSServerHandshakeError as refused:
            return refused.status

    outcomes = await asyncio.gather(*[attempt() for _ in range(8)])
    opened = [o for o in outcomes if isinstance(o, aiohttp.ClientWebSocketResponse)]
    assert len(opened) == 4 and sorted(o for o in outcomes if isinstance(o, int)) == [429] * 4
    await opened[0].close()
    for _ in range(100):  # the relay sees the close a moment later
        again = await attempt()
        if not isinstance(again, int):
            opened[0] = again
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("a closed socket's slot never came back")
    for socket in opened:
        await socket.close()


@pytest.mark.slow
async def test_a_stalled_request_line_is_closed_by_the_keepalive_timeout(abused: Any) -> None:
    """Half a request line, then nothing: the relay closes it (after about 75 s)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", abused.port)
    writer.write(b"POST /v1/spaces HTTP/1.1\r\nHost: re")
    await writer.drain()
    assert await asyncio.wait_for(reader.read(1000), 120) == b""
    writer.close()
