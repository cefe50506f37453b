"""HTTP routes of the pairing rendezvous (SPEC.md section 9.8); the logic is in server.pairing."""

from __future__ import annotations

import re

from aiohttp import web

from server import appkeys, pairing
from server.auth import parse_bearer
from server.errors import RelayError, RelayErrorCode
from server.http_common import client_address, json_response, read_json
from server.wire import b64encode, get_bool, get_bytes, parse_query_int

routes = web.RouteTableDef()

_CHANNEL_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_NAMEPLATE_RE = re.compile(r"^[0-9]{1,8}$")


def _channel(request: web.Request) -> str:
    channel = request.match_info["channel"]
    if not _CHANNEL_RE.match(channel):
        raise RelayError(RelayErrorCode.BAD_REQUEST, "a channel id is 1 to 64 base64url characters")
    return channel


def _grant_json(grant: pairing.ChannelGrant) -> dict[str, object]:
    body: dict[str, object] = {
        "channel": grant.channel,
        "side_token": grant.side_token,
        "expires_at": grant.expires_at,
    }
    if grant.nameplate is not None:
        body["nameplate"] = grant.nameplate
    return body


def _limit_pairing(request: web.Request) -> None:
    request.app[appkeys.LIMITERS].pairing.take(client_address(request))


@routes.post("/v1/pairing/channels")
async def create_channel(request: web.Request) -> web.Response:
    _limit_pairing(request)
    body = await read_json(request) if request.can_read_body else {}
    with_nameplate = get_bool(body, "nameplate", default=False)
    app = request.app
    grant = await pairing.create_channel(
        app[appkeys.DATABASE], ttl=app[appkeys.CONFIG].pairing_ttl, with_nameplate=with_nameplate
    )
    app[appkeys.METRICS].pairing_channels.inc()
    return json_response(_grant_json(grant), status=201)


@routes.post("/v1/pairing/channels/{channel}/claim")
async def claim_channel(request: web.Request) -> web.Response:
    _limit_pairing(request)
    grant = await pairing.claim(request.app[appkeys.DATABASE], channel=_channel(request))
    return json_response(_grant_json(grant))


@routes.post("/v1/pairing/nameplates/{nameplate}/claim")
async def claim_nameplate(request: web.Request) -> web.Response:
    _limit_pairing(request)
    nameplate = request.match_info["nameplate"]
    if not _NAMEPLATE_RE.match(nameplate):
        raise RelayError(RelayErrorCode.BAD_REQUEST, "a nameplate is 1 to 8 decimal digits")
    grant = await pairing.claim(
        request.app[appkeys.DATABASE], nameplate=nameplate.lstrip("0") or "0"
    )
    return json_response(_grant_json(grant))


@routes.post("/v1/pairing/channels/{channel}/messages")
async def post_message(request: web.Request) -> web.Response:
    channel = _channel(request)
    token = parse_bearer(request.headers.get("Authorization"))
    body = await read_json(request)
    payload = get_bytes(body, "body")
    app = request.app
    seq = await pairing.post_message(
        app[appkeys.DATABASE],
        app[appkeys.FANOUT],
        channel=channel,
        token=token,
        body=payload,
        limits=app[appkeys.CONFIG].limits,
    )
    return json_response({"seq": seq}, status=201)


@routes.get("/v1/pairing/channels/{channel}/messages")
async def read_messages(request: web.Request) -> web.Response:
    channel = _channel(request)
    token = parse_bearer(request.headers.get("Authorization"))
    app = request.app
    limits = app[appkeys.CONFIG].limits
    after = parse_query_int(
        request.query.get("after"), name="after", default=0, minimum=0, maximum=2**31 - 1
    )
    wait = parse_query_int(
        request.query.get("wait"),
        name="wait",
        default=0,
        minimum=0,
        maximum=int(limits.pairing_wait_seconds),
    )
    if app[appkeys.LIFECYCLE].stopping:
        wait = 0
    messages = await pairing.read_messages(
        app[appkeys.DATABASE],
        app[appkeys.FANOUT],
        channel=channel,
        token=token,
        after=after,
        wait=float(wait),
    )
    return json_response(
        {"messages": [{"seq": item.seq, "body": b64encode(item.body)} for item in messages]}
    )


@routes.delete("/v1/pairing/channels/{channel}")
async def burn_channel(request: web.Request) -> web.Response:
    channel = _channel(request)
    token = parse_bearer(request.headers.get("Authorization"))
    app = request.app
    await pairing.burn(app[appkeys.DATABASE], app[appkeys.FANOUT], channel=channel, token=token)
    return web.Response(status=204)
