"""The WebSocket of a space (SPEC.md section 9.7): parse, dispatch, reply. No domain logic.

Lifecycle of one socket:

1. ``GET /v1/spaces/{space}/ws`` upgrades. The token comes in the ``Authorization``
   header (checked before the upgrade, errors are plain HTTP errors) or in the first
   message ``{"type": "auth", "token": ...}`` within 10 seconds (for browsers, which
   cannot set headers on a WebSocket; the token never appears in a URL or a log).
2. The relay subscribes the socket to the space (``server.fanout``) and sends
   ``{"type": "ready", "cursor": n, ...}``. Entries that land after ``cursor`` are
   pushed as ``{"type": "entries", ...}``; the client fetches what came before.
3. The client may send ``append`` and ``ping``; every reply carries the request's ``id``.
4. The relay closes the socket with 1001 (going away) when it stops, 4401 when the
   token expires, 4403 when the device is removed from the roster, 4008 when the
   client reads too slowly to keep up, and 4429 over the per-device limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

from protocol.errors import AccordError
from server import appkeys
from server.auth import Principal, authenticate, parse_bearer
from server.errors import EntryRefused, RelayError, RelayErrorCode, describe, error_body
from server.fanout import Subscriber
from server.http_common import path_space
from server.http_spaces import count_appended, result_json
from server.spaces import append_entries
from server.store import is_database_unavailable, now
from server.wire import b64encode, get_blob_list, parse_json_object

logger = logging.getLogger("accord.relay.ws")

AUTH_TIMEOUT = 10.0
HEARTBEAT_SECONDS = 30.0
CLOSE_UNAUTHORIZED = 4401
CLOSE_TOO_MANY = 4429

routes = web.RouteTableDef()


class _Socket:
    """One open WebSocket: sends are serialised so frames never interleave."""

    def __init__(self, ws: web.WebSocketResponse, app: web.Application) -> None:
        self.ws = ws
        self.app = app
        self._send_lock = asyncio.Lock()

    async def send(self, message: dict[str, Any]) -> None:
        async with self._send_lock:
            if not self.ws.closed:
                await self.ws.send_str(json.dumps(message, separators=(",", ":")))
                self.app[appkeys.METRICS].websocket_messages.inc(
                    direction="out", type=str(message.get("type"))
                )

    async def send_error(self, exc: BaseException, request_id: Any = None) -> None:
        code, message, extra = describe(exc)
        body = error_body(code, message, **extra)
        reply: dict[str, Any] = {"type": "error", **body}
        if request_id is not None:
            reply["id"] = request_id
        self.app[appkeys.METRICS].errors.inc(code=code)
        await self.send(reply)

    async def close(self, code: int, reason: str) -> None:
        await self.ws.close(code=code, message=reason.encode()[:120])


@routes.get("/v1/spaces/{space}/ws")
async def websocket(request: web.Request) -> web.StreamResponse:
    app = request.app
    space = path_space(request)
    if app[appkeys.LIFECYCLE].stopping:
        raise RelayError(RelayErrorCode.UNAVAILABLE, "the relay is stopping")
    principal: Principal | None = None
    slot: tuple[bytes, bytes] | None = None
    if "Authorization" in request.headers:
        principal = await _authenticate(app, parse_bearer(request.headers["Authorization"]), space)
        slot = _take_socket_slot(app, principal)
    try:
        ws = web.WebSocketResponse(
            heartbeat=HEARTBEAT_SECONDS, max_msg_size=app[appkeys.CONFIG].limits.max_body_bytes
        )
        await ws.prepare(request)
        socket = _Socket(ws, app)
        app[appkeys.WEBSOCKETS].add(ws)
        metrics = app[appkeys.METRICS]
        metrics.websockets.inc(1)
        try:
            if principal is None:
                principal = await _auth_message(socket, space)
                if principal is None:
                    return ws
                try:
                    slot = _take_socket_slot(app, principal)
                except RelayError as exc:
                    await socket.send_error(exc)
                    await socket.close(CLOSE_TOO_MANY, exc.code.value)
                    return ws
            await _serve(socket, principal)
        finally:
            metrics.websockets.inc(-1)
            app[appkeys.WEBSOCKETS].discard(ws)
        return ws
    finally:
        if slot is not None:
            _give_back_socket_slot(app, slot)


async def _authenticate(app: web.Application, token: str, space: bytes) -> Principal:
    async with app[appkeys.DATABASE].reading() as session:
        return await authenticate(session, token, space=space)


def _take_socket_slot(app: web.Application, principal: Principal) -> tuple[bytes, bytes]:
    """Count one more open WebSocket of the device, or refuse it over the limit. The check
    and the count happen with no await in between, so sockets opened at the same moment
    cannot all pass the check before any of them is counted."""
    limit = app[appkeys.CONFIG].limits.websockets_per_device
    slots = app[appkeys.SOCKET_SLOTS]
    key = (principal.space, principal.device)
    if slots.get(key, 0) >= limit:
        raise RelayError(
            RelayErrorCode.TOO_MANY_WEBSOCKETS,
            f"a device may keep at most {limit} WebSockets open on this relay",
        )
    slots[key] = slots.get(key, 0) + 1
    return key


def _give_back_socket_slot(app: web.Application, key: tuple[bytes, bytes]) -> None:
    slots = app[appkeys.SOCKET_SLOTS]
    left = slots.get(key, 0) - 1
    if left > 0:
        slots[key] = left
    else:
        slots.pop(key, None)


async def _auth_message(socket: _Socket, space: bytes) -> Principal | None:
    """Wait for ``{"type": "auth", "token": ...}``; None when the socket was closed instead."""
    try:
        message = await socket.ws.receive(timeout=AUTH_TIMEOUT)
    except TimeoutError:
        await socket.close(CLOSE_UNAUTHORIZED, "unauthorized")
        return None
    if message.type != WSMsgType.TEXT:
        await socket.close(CLOSE_UNAUTHORIZED, "unauthorized")
        return None
    try:
        body = parse_json_object(message.data)
        token = body.get("token")
        if body.get("type") != "auth" or not isinstance(token, str):
            raise RelayError(
                RelayErrorCode.UNAUTHORIZED, 'the first message must be {"type": "auth", "token"}'
            )
        return await _authenticate(socket.app, token, space)
    except (RelayError, AccordError) as exc:
        await socket.send_error(exc)
        await socket.close(CLOSE_UNAUTHORIZED, "unauthorized")
        return None


async def _serve(socket: _Socket, principal: Principal) -> None:
    hub = socket.app[appkeys.HUB]
    subscriber = await hub.subscribe(principal.space, principal.device)
    pusher = asyncio.get_running_loop().create_task(_push(socket, subscriber))
    expiry = asyncio.get_running_loop().create_task(_expire(subscriber, principal))
    try:
        await socket.send(
            {
                "type": "ready",
                "cursor": subscriber.cursor,
                "device": b64encode(principal.device),
                "expires_at": principal.expires_at,
            }
        )
        await _read(socket, principal)
    finally:
        hub.unsubscribe(subscriber)
        for task in (pusher, expiry):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def _expire(subscriber: Subscriber, principal: Principal) -> None:
    await asyncio.sleep(max(0, principal.expires_at - now()))
    subscriber.request_close(CLOSE_UNAUTHORIZED, "token_expired")


async def _push(socket: _Socket, subscriber: Subscriber) -> None:
    while True:
        push = await subscriber.queue.get()
        if push.close_code is not None:
            code = (
                RelayErrorCode.UNAUTHORIZED.value
                if push.close_code == CLOSE_UNAUTHORIZED
                else push.close_reason
            )
            with contextlib.suppress(ConnectionError, RuntimeError):
                await socket.send(error_body(code, push.close_reason) | {"type": "error"})
            await socket.close(push.close_code, push.close_reason)
            return
        try:
            await socket.send(
                {
                    "type": "entries",
                    "entries": [b64encode(data) for data in push.entries],
                    "cursor": push.cursor,
                }
            )
        except (ConnectionError, RuntimeError):
            return


async def _read(socket: _Socket, principal: Principal) -> None:
    metrics = socket.app[appkeys.METRICS]
    async for message in socket.ws:
        if message.type != WSMsgType.TEXT:
            await socket.send_error(
                RelayError(RelayErrorCode.BAD_REQUEST, "messages are JSON text frames")
            )
            continue
        request_id: Any = None
        try:
            body = parse_json_object(message.data)
            request_id = body.get("id")
            kind = body.get("type")
            metrics.websocket_messages.inc(direction="in", type=str(kind)[:32])
            if principal.expires_at <= now():
                raise RelayError(RelayErrorCode.UNAUTHORIZED, "the token has expired")
            # Every message counts against the device's rate, as an HTTP request would.
            socket.app[appkeys.LIMITERS].device.take((principal.space, principal.device))
            if kind == "ping":
                await socket.send(_with_id({"type": "pong"}, request_id))
            elif kind == "append":
                await socket.send(_with_id(await _append(socket, principal, body), request_id))
            else:
                raise RelayError(RelayErrorCode.BAD_REQUEST, f"unknown message type {kind!r}")
        except (RelayError, AccordError, EntryRefused) as exc:
            await socket.send_error(exc, request_id)
        except Exception as exc:  # keep the socket; report like the HTTP middleware does
            if is_database_unavailable(exc):
                await socket.send_error(
                    RelayError(RelayErrorCode.UNAVAILABLE, "the database is unavailable"),
                    request_id,
                )
                continue
            logger.exception("websocket message failed", extra={"event": "ws_error"})
            await socket.send_error(
                RelayError(RelayErrorCode.INTERNAL, "internal error"), request_id
            )


def _with_id(message: dict[str, Any], request_id: Any) -> dict[str, Any]:
    if request_id is not None:
        message["id"] = request_id
    return message


async def _append(socket: _Socket, principal: Principal, body: dict[str, Any]) -> dict[str, Any]:
    app = socket.app
    results = await append_entries(
        app[appkeys.DATABASE],
        app[appkeys.FANOUT],
        principal,
        get_blob_list(body, "entries", max_items=app[appkeys.CONFIG].limits.max_batch_entries),
        app[appkeys.CONFIG].limits,
    )
    count_appended(app, results)
    return {"type": "appended", "results": [result_json(result) for result in results]}


async def close_all(app: web.Application) -> None:
    """Close every open WebSocket with 1001 (going away): the relay is stopping."""
    open_sockets = app[appkeys.WEBSOCKETS]
    for ws in list(open_sockets):
        with contextlib.suppress(Exception):
            await ws.close(code=WSCloseCode.GOING_AWAY, message=b"relay shutting down")
