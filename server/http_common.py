"""Helpers every HTTP route uses: the client's address, JSON bodies, tokens, path values."""

from __future__ import annotations

import asyncio
import ipaddress
from typing import Any

from aiohttp import web

from protocol.crypto import SPACE_ID_BYTES
from server import appkeys
from server.auth import Principal, authenticate, parse_bearer
from server.errors import RelayError, RelayErrorCode
from server.wire import get_path_bytes, parse_json_object


def client_address(request: web.Request) -> str:
    """The client's IP address; X-Forwarded-For is believed only from a trusted proxy.

    With a trusted proxy in front, the address is the rightmost one in the header that
    is not itself a trusted proxy (the leftmost entries are the client's to forge).
    """
    remote = request.remote or "unknown"
    trusted = request.app[appkeys.CONFIG].trusted_proxies
    if not trusted or not _is_trusted(remote, trusted):
        return remote
    forwarded = request.headers.get("X-Forwarded-For", "")
    hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _is_trusted(hop, trusted):
            return hop
    return hops[0] if hops else remote


def _is_trusted(address: str, trusted: tuple[str, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    for entry in trusted:
        try:
            if ip in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue
    return False


async def read_json(request: web.Request) -> dict[str, Any]:
    """The request's JSON object body.

    Raises:
        RelayError: ``body_too_large`` above the body limit, ``bad_json`` when it is
            not a JSON object, ``bad_request`` when it takes longer than the limit's
            ``body_read_seconds`` to arrive.
    """
    limit = request.app[appkeys.CONFIG].limits.max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        raise RelayError(RelayErrorCode.BODY_TOO_LARGE, f"a request body is at most {limit} bytes")
    seconds = request.app[appkeys.CONFIG].limits.body_read_seconds
    try:
        async with asyncio.timeout(seconds):
            raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise RelayError(
            RelayErrorCode.BODY_TOO_LARGE, f"a request body is at most {limit} bytes"
        ) from None
    except TimeoutError:
        # A body trickled in (slow loris) must not hold the connection for ever.
        raise RelayError(
            RelayErrorCode.BAD_REQUEST, f"the request body did not arrive within {seconds:g} s"
        ) from None
    return parse_json_object(raw)


def path_space(request: web.Request) -> bytes:
    """The ``{space}`` path parameter.

    Raises:
        RelayError: ``bad_request`` when it is not 16 bytes of base64url.
    """
    return get_path_bytes(request.match_info["space"], name="space", size=SPACE_ID_BYTES)


async def authorize(request: web.Request, space: bytes | None) -> Principal:
    """Check the bearer token (for ``space`` when given) and the device's rate limit.

    Raises:
        RelayError: ``unauthorized``, ``forbidden``, ``rate_limited``.
        DeviceRemovedError: the token's device was removed.
    """
    token = parse_bearer(request.headers.get("Authorization"))
    async with request.app[appkeys.DATABASE].reading() as session:
        principal = await authenticate(session, token, space=space)
    request.app[appkeys.LIMITERS].device.take((principal.space, principal.device))
    return principal


def json_response(body: dict[str, Any], *, status: int = 200) -> web.Response:
    return web.json_response(body, status=status)
