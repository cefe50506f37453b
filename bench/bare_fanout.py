"""The transport floor for the fan-out benchmark: a bare pass-through, not a relay.

``python -m bench.bare_fanout --port P`` serves the few routes the fan-out load
generator calls, with the relay's wire shapes (SPEC.md 9), and does nothing else: no
signature, no chain, no database, no durable commit. An appended entry is pushed at
once, as the same ``entries`` message, to every other socket of its space. The
latency the load generator measures against it is what aiohttp, JSON, base64 and
loopback cost on this machine under the same load: the limit the relay's fan-out is
compared with. It listens on 127.0.0.1 only and is started and stopped by the
benchmark.
"""

from __future__ import annotations

import argparse
import base64
import json
import secrets
from collections import defaultdict
from typing import Any

from aiohttp import WSMsgType, web

_SOCKETS = web.AppKey("sockets", dict)
_TOKENS = web.AppKey("tokens", dict)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


async def _json(request: web.Request) -> dict[str, Any]:
    body = await request.json()
    return body if isinstance(body, dict) else {}


async def create_space(request: web.Request) -> web.Response:
    await request.read()
    return web.json_response({}, status=201)


async def challenge(request: web.Request) -> web.Response:
    await request.read()
    return web.json_response({"challenge": _b64(secrets.token_bytes(32)), "expires_at": 0})


async def token(request: web.Request) -> web.Response:
    body = await _json(request)
    issued = secrets.token_urlsafe(24)
    request.app[_TOKENS][issued] = (str(body.get("space")), str(body.get("device")))
    return web.json_response({"token": issued, "expires_at": 0})


def _principal(request: web.Request) -> tuple[str, str]:
    issued = request.headers.get("Authorization", "").removeprefix("Bearer ")
    found = request.app[_TOKENS].get(issued)
    if found is None:
        raise web.HTTPUnauthorized()
    return found  # type: ignore[no-any-return]


async def append(request: web.Request) -> web.Response:
    space, device = _principal(request)
    body = await _json(request)
    message = json.dumps({"type": "entries", "entries": body.get("entries", []), "cursor": 0})
    for other, socket in list(request.app[_SOCKETS][space].items()):
        if other != device and not socket.closed:
            await socket.send_str(message)
    return web.json_response({"results": []})


async def websocket(request: web.Request) -> web.StreamResponse:
    socket = web.WebSocketResponse(heartbeat=30.0)
    await socket.prepare(request)
    first = await socket.receive(timeout=10)
    if first.type != WSMsgType.TEXT:
        await socket.close()
        return socket
    found = request.app[_TOKENS].get(json.loads(first.data).get("token"))
    if found is None:
        await socket.close()
        return socket
    space, device = found
    sockets = request.app[_SOCKETS][space]
    sockets[device] = socket
    await socket.send_str(json.dumps({"type": "ready", "cursor": 0}))
    try:
        async for _ in socket:
            pass
    finally:
        if sockets.get(device) is socket:
            del sockets[device]
    return socket


async def healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok")


def create_app() -> web.Application:
    app = web.Application(client_max_size=8 * 1024 * 1024)
    app[_SOCKETS] = defaultdict(dict)
    app[_TOKENS] = {}
    app.router.add_get("/healthz", healthz)
    app.router.add_post("/v1/spaces", create_space)
    app.router.add_post("/v1/auth/challenge", challenge)
    app.router.add_post("/v1/auth/token", token)
    app.router.add_post("/v1/spaces/{space}/entries", append)
    app.router.add_get("/v1/spaces/{space}/ws", websocket)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    web.run_app(create_app(), host="127.0.0.1", port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
