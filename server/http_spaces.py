"""HTTP routes for spaces, authentication, entries, fetch, heads and the roster (SPEC.md 9.2-9.6).

Each handler parses its JSON, calls the domain core (``server.spaces``, ``server.auth``)
and shapes the answer. Errors are raised, never answered here: the middleware in
``server.app`` maps them.
"""

from __future__ import annotations

from aiohttp import web

from protocol.crypto import SIGNATURE_BYTES
from server import appkeys, auth, envelopes, spaces
from server.errors import RelayError, RelayErrorCode
from server.http_common import authorize, json_response, path_space, read_json
from server.wire import (
    b64decode,
    b64encode,
    get_blob_list,
    get_bytes,
    get_device,
    get_int,
    get_space,
    parse_query_int,
)

routes = web.RouteTableDef()


@routes.post("/v1/spaces")
async def create_space(request: web.Request) -> web.Response:
    body = await read_json(request)
    space = get_space(body)
    entry = get_bytes(body, "entry")
    signature = get_bytes(body, "sig", size=SIGNATURE_BYTES)
    app = request.app
    result = await spaces.create_space(
        app[appkeys.DATABASE],
        app[appkeys.FANOUT],
        space=space,
        raw_entry=entry,
        signature=signature,
        limits=app[appkeys.CONFIG].limits,
    )
    app[appkeys.METRICS].entries.inc(result="stored")
    return json_response(
        {"space": b64encode(space), "id": b64encode(result.id), "position": result.position},
        status=201,
    )


@routes.post("/v1/auth/challenge")
async def auth_challenge(request: web.Request) -> web.Response:
    body = await read_json(request)
    space = get_space(body)
    device = get_device(body)
    config = request.app[appkeys.CONFIG]
    async with request.app[appkeys.DATABASE].writing() as session:
        challenge, expires_at = await auth.issue_challenge(
            session, space=space, device=device, ttl=config.challenge_ttl
        )
    return json_response({"challenge": b64encode(challenge), "expires_at": expires_at})


@routes.post("/v1/auth/token")
async def auth_token(request: web.Request) -> web.Response:
    body = await read_json(request)
    space = get_space(body)
    device = get_device(body)
    challenge = get_bytes(body, "challenge", size=auth.CHALLENGE_BYTES)
    signature = get_bytes(body, "sig", size=SIGNATURE_BYTES)
    config = request.app[appkeys.CONFIG]
    token, expires_at = await auth.issue_token(
        request.app[appkeys.DATABASE],
        space=space,
        device=device,
        challenge=challenge,
        signature=signature,
        ttl=config.token_ttl,
    )
    return json_response({"token": token, "expires_at": expires_at})


@routes.post("/v1/spaces/{space}/entries")
async def append(request: web.Request) -> web.Response:
    space = path_space(request)
    principal = await authorize(request, space)
    body = await read_json(request)
    app = request.app
    raw_entries = get_blob_list(
        body, "entries", max_items=app[appkeys.CONFIG].limits.max_batch_entries
    )
    results = await spaces.append_entries(
        app[appkeys.DATABASE],
        app[appkeys.FANOUT],
        principal,
        raw_entries,
        app[appkeys.CONFIG].limits,
    )
    count_appended(app, results)
    return json_response({"results": [result_json(result) for result in results]})


def count_appended(app: web.Application, results: list[spaces.AppendResult]) -> None:
    metric = app[appkeys.METRICS].entries
    for result in results:
        metric.inc(result=result.status.value)


def result_json(result: spaces.AppendResult) -> dict[str, object]:
    return {
        "id": b64encode(result.id),
        "seq": result.seq,
        "position": result.position,
        "status": result.status.value,
    }


@routes.post("/v1/spaces/{space}/fetch")
async def fetch(request: web.Request) -> web.Response:
    space = path_space(request)
    await authorize(request, space)
    body = await read_json(request)
    limits = request.app[appkeys.CONFIG].limits
    have_raw = body.get("have", {})
    if not isinstance(have_raw, dict):
        raise RelayError(RelayErrorCode.BAD_REQUEST, "have must be an object {device: seq}")
    if len(have_raw) > limits.max_have_devices:
        raise RelayError(
            RelayErrorCode.BAD_REQUEST, f"have names at most {limits.max_have_devices} devices"
        )
    have: dict[bytes, int] = {}
    for key, seq in have_raw.items():
        device = b64decode(key, name="have key")
        if len(device) != 32:
            raise RelayError(RelayErrorCode.BAD_REQUEST, "have keys are 32-byte device keys")
        if not isinstance(seq, int) or isinstance(seq, bool) or not 0 <= seq < 2**63:
            raise RelayError(RelayErrorCode.BAD_REQUEST, "have values are seqs (integers >= 0)")
        have[device] = seq
    limit = get_int(
        body, "limit", default=limits.max_fetch_entries, minimum=1, maximum=limits.max_fetch_entries
    )
    after = get_int(body, "after", default=0, minimum=0)
    page = await spaces.fetch(
        request.app[appkeys.DATABASE],
        space,
        have=have,
        after=after,
        limit=limit,
        max_bytes=limits.max_body_bytes,
    )
    return json_response(
        {
            "entries": [b64encode(data) for data in page.entries],
            "cursor": page.cursor,
            "more": page.more,
        }
    )


@routes.get("/v1/spaces/{space}/heads")
async def heads(request: web.Request) -> web.Response:
    space = path_space(request)
    await authorize(request, space)
    found = await spaces.heads(request.app[appkeys.DATABASE], space)
    return json_response(
        {
            "heads": {
                b64encode(device): {"seq": head.seq, "id": b64encode(head.id)}
                for device, head in found.items()
            }
        }
    )


@routes.get("/v1/spaces/{space}/roster")
async def roster(request: web.Request) -> web.Response:
    space = path_space(request)
    await authorize(request, space)
    devices = await spaces.roster_devices(request.app[appkeys.DATABASE], space)
    return json_response(
        {
            "devices": [
                {
                    "device": b64encode(item.device),
                    "member": b64encode(item.member),
                    "status": "removed" if item.removed else "active",
                    "added_at": item.added_at,
                    "removed_at": item.removed_at,
                    "cut_seq": item.cut_seq,
                }
                for item in devices
            ]
        }
    )


@routes.put("/v1/spaces/{space}/keys")
async def put_keys(request: web.Request) -> web.Response:
    space = path_space(request)
    principal = await authorize(request, space)
    body = await read_json(request)
    app = request.app
    raw = get_blob_list(body, "envelopes", max_items=app[appkeys.CONFIG].limits.max_envelopes)
    result = await envelopes.put_envelopes(
        app[appkeys.DATABASE], principal, raw, app[appkeys.CONFIG].limits
    )
    return json_response({"stored": result.stored, "duplicate": result.duplicate})


@routes.get("/v1/spaces/{space}/keys")
async def get_keys(request: web.Request) -> web.Response:
    space = path_space(request)
    principal = await authorize(request, space)
    raw_epoch = request.query.get("epoch")
    epoch = (
        None
        if raw_epoch is None
        else parse_query_int(raw_epoch, name="epoch", default=0, minimum=0, maximum=2**63 - 1)
    )
    found = await envelopes.envelopes_for(request.app[appkeys.DATABASE], principal, epoch=epoch)
    return json_response({"envelopes": [b64encode(data) for data in found]})
