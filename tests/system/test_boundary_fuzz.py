"""Hypothesis fuzzing of every decoder at the relay's HTTP and WebSocket boundary.

Every endpoint gets random bytes, random JSON, and bodies of the right shape whose
fields hold random JSON or base64 of near misses of valid wire values (entries,
envelopes, signatures, keys made by the protocol core), with a real token most of the
time, so the fuzzed data reaches the entry, envelope and pairing decoders. Every answer
must be a success, or a JSON error whose code is listed in SPEC.md section 10 with that
code's status: never a 500, never an error outside the spec. The WebSocket gets random
frames after authenticating: each gets one reply (an ``error`` with a listed code, a
``pong`` or an ``appended``) and the socket stays open. Afterwards the relay still
serves a healthy client and its log holds no internal error.

The default run keeps the example counts moderate; ``pytest -m slow`` runs many more.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import aiohttp
import pytest
from conftest import run_sync
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol.crypto import SigContext
from tests.server.relay_helpers import Device, RelayAPI, new_space
from tests.system.wire_fuzz import (
    Samples,
    b64,
    decode_error,
    documented_codes,
    json_scalars,
    json_values,
)

CODES = documented_codes()
EXAMPLES = 60
SLOW_EXAMPLES = 1500
FUZZ_SETTINGS = dict(
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Endpoint:
    method: str
    path: str  # with {space}, {channel}, {nameplate}
    fields: tuple[str, ...] = ()
    auth: str = "token"  # "token", "side" or "none"
    query: tuple[str, ...] = ()


ENDPOINTS = {
    "create_space": Endpoint(
        method="POST", path="/v1/spaces", fields=("space", "entry", "sig"), auth="none"
    ),
    "challenge": Endpoint(
        method="POST", path="/v1/auth/challenge", fields=("space", "device"), auth="none"
    ),
    "token": Endpoint(
        method="POST",
        path="/v1/auth/token",
        fields=("space", "device", "challenge", "sig"),
        auth="none",
    ),
    "append": Endpoint(method="POST", path="/v1/spaces/{space}/entries", fields=("entries",)),
    "fetch": Endpoint(
        method="POST", path="/v1/spaces/{space}/fetch", fields=("have", "after", "limit")
    ),
    "heads": Endpoint(method="GET", path="/v1/spaces/{space}/heads"),
    "roster": Endpoint(method="GET", path="/v1/spaces/{space}/roster"),
    "put_keys": Endpoint(method="PUT", path="/v1/spaces/{space}/keys", fields=("envelopes",)),
    "get_keys": Endpoint(method="GET", path="/v1/spaces/{space}/keys", query=("epoch",)),
    "new_channel": Endpoint(
        method="POST", path="/v1/pairing/channels", fields=("nameplate",), auth="none"
    ),
    "claim": Endpoint(method="POST", path="/v1/pairing/channels/{channel}/claim", auth="none"),
    "claim_nameplate": Endpoint(
        method="POST", path="/v1/pairing/nameplates/{nameplate}/claim", auth="none"
    ),
    "post_message": Endpoint(
        method="POST", path="/v1/pairing/channels/{channel}/messages", fields=("body",), auth="side"
    ),
    "read_messages": Endpoint(
        method="GET",
        path="/v1/pairing/channels/{channel}/messages",
        auth="side",
        query=("after", "wait"),
    ),
    "burn": Endpoint(method="DELETE", path="/v1/pairing/channels/{channel}", auth="side"),
}


@pytest.fixture(scope="module")
def target(relay_pool: Any) -> Iterator[tuple[Any, Samples]]:
    """The shared SQLite relay and valid wire values of a space made on it."""
    relay = relay_pool.get("sqlite")

    async def make() -> Samples:
        async with aiohttp.ClientSession() as http_session:
            api = RelayAPI(http_session, relay.url)
            founder = await api.founded(Device(space=new_space()))
            partner = Device(space=founder.space)
            await api.join(founder, partner, same_member=False)
            status, channel = await api.call("POST", "/v1/pairing/channels", {"nameplate": True})
            assert status == 201, channel
        return Samples(
            space=founder.space,
            token=str(founder.token),
            device=founder.public,
            entries=(
                founder.data(b"fuzz", advance=False).to_bytes(),
                partner.data(b"other", advance=False).to_bytes(),
            ),
            envelope=founder.envelope_for(partner),
            signature=founder.key.sign(SigContext.CREATE_SPACE + founder.space),
            channel=channel["channel"],
            side_token=channel["side_token"],
            nameplate=channel["nameplate"],
        )

    yield relay, run_sync(make())


def check_answer(status: int, body: bytes, what: str) -> None:
    """A success, or a JSON error with a code of SPEC.md section 10 and its status."""
    assert status != 500, (what, body[:300])
    if 200 <= status < 300:
        return
    error = decode_error(body)
    assert error is not None, (what, status, body[:300])
    code, _message = error
    assert code in CODES and code != "internal", (what, status, code)
    assert CODES[code] == status, (what, status, code)


def segment(draw: st.DrawFn, valid: str) -> str:
    """A path segment: usually the valid one, sometimes any text (quoted)."""
    if draw(st.integers(0, 7)) > 0:
        return valid
    return urllib.parse.quote(draw(st.text(max_size=30)), safe="") or "x"


def as_key(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


@st.composite
def requests(
    draw: st.DrawFn, endpoint: Endpoint, samples: Samples
) -> tuple[str, str, bytes | None, dict[str, str]]:
    path = endpoint.path.format(
        space=segment(draw, b64(samples.space)),
        channel=segment(draw, samples.channel),
        nameplate=segment(draw, samples.nameplate),
    )
    if endpoint.query:
        params = {}
        for name in endpoint.query:
            if draw(st.booleans()):
                # Long-poll waits are kept short: a valid long wait only waits.
                value = draw(st.one_of(st.integers(-5, 1), st.text(max_size=8)))
                params[name] = str(value)
        if params:
            path += "?" + urllib.parse.urlencode(params)
    headers = {"Content-Type": "application/json"}
    token = {"token": samples.token, "side": samples.side_token}.get(endpoint.auth)
    credential = draw(st.sampled_from(["valid"] * 8 + ["none", "garbage"]))
    if token is not None and credential == "valid":
        headers["Authorization"] = f"Bearer {token}"
    elif credential == "garbage":
        headers["Authorization"] = draw(
            st.sampled_from(["Bearer ", "Basic x", "Bearer " + "A" * 43])
        )
    kind = draw(st.sampled_from(["none", "raw", "json"] + ["shaped"] * 7))
    body: bytes | None = None
    if kind == "raw":
        body = draw(st.binary(max_size=400))
    elif kind == "json":
        body = json.dumps(draw(json_values)).encode()
    elif kind == "shaped":
        fields: dict[str, Any] = {}
        for name in endpoint.fields or ("x",):
            if draw(st.integers(0, 11)) == 0:
                continue  # a missing field
            if name in {"entries", "envelopes"}:
                items = samples.field(name)
                batch = st.lists(items, min_size=1, max_size=3)
                fields[name] = draw(st.one_of(batch, batch, batch, json_values))
            elif name == "have":
                fields[name] = draw(
                    st.dictionaries(samples.field("device").map(as_key), json_scalars, max_size=3)
                )
            else:
                fields[name] = draw(samples.field(name))
        body = json.dumps(fields).encode()
    return endpoint.method, path, body, headers


def send(
    port: int, method: str, path: str, body: bytes | None, headers: dict[str, str]
) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(method, path, body=body, headers=headers)
        answer = connection.getresponse()
        return answer.status, answer.read()
    finally:
        connection.close()


def healthy(relay: Any, samples: Samples) -> None:
    """The relay answers its probe and a real signed-in call."""
    status, body = send(relay.port, "GET", "/healthz", None, {})
    assert (status, json.loads(body)) == (200, {"status": "ok"})
    status, body = send(
        relay.port,
        "GET",
        f"/v1/spaces/{b64(samples.space)}/heads",
        None,
        {"Authorization": f"Bearer {samples.token}"},
    )
    assert status == 200 and "heads" in json.loads(body), body


def fresh_channel(relay: Any, samples: Samples) -> Samples:
    """``samples`` with a pairing channel of its own (fuzzing may burn or fill one)."""
    status, body = send(relay.port, "POST", "/v1/pairing/channels", b'{"nameplate": true}', {})
    assert status == 201, body
    channel = json.loads(body)
    return replace(
        samples,
        channel=channel["channel"],
        side_token=channel["side_token"],
        nameplate=channel["nameplate"],
    )


def fuzz_endpoint(name: str, target: tuple[Any, Samples], examples: int) -> None:
    relay, samples = target
    endpoint = ENDPOINTS[name]
    if "{channel}" in endpoint.path or "{nameplate}" in endpoint.path:
        samples = fresh_channel(relay, samples)
    log_start = len(relay.logs())

    @settings(max_examples=examples, **FUZZ_SETTINGS)  # type: ignore[arg-type]
    @given(request=requests(endpoint, samples))
    def run(request: tuple[str, str, bytes | None, dict[str, str]]) -> None:
        method, path, body, headers = request
        status, answer = send(relay.port, method, path, body, headers)
        check_answer(status, answer, f"{method} {path} {body[:80] if body else body!r}")

    run()
    healthy(relay, samples)
    new_logs = relay.logs()[log_start:]
    assert "internal_error" not in new_logs and "Traceback" not in new_logs, new_logs[-3000:]


@pytest.mark.parametrize("name", sorted(ENDPOINTS))
def test_every_endpoint_answers_fuzz_with_documented_errors(
    name: str, target: tuple[Any, Samples]
) -> None:
    fuzz_endpoint(name, target, EXAMPLES)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(ENDPOINTS))
def test_every_endpoint_answers_fuzz_with_documented_errors_long(
    name: str, target: tuple[Any, Samples]
) -> None:
    fuzz_endpoint(name, target, SLOW_EXAMPLES)


# -- the WebSocket -----------------------------------------------------------------------


class SocketDriver:
    """One authenticated WebSocket, driven from synchronous hypothesis tests."""

    def __init__(self, relay: Any, samples: Samples) -> None:
        self.loop = asyncio.new_event_loop()
        self.relay = relay
        self.samples = samples
        self.session: aiohttp.ClientSession | None = None
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.loop.run_until_complete(self._open())

    async def _open(self) -> None:
        self.session = aiohttp.ClientSession()
        self.ws = await self.session.ws_connect(
            self.relay.ws_url(b64(self.samples.space)),
            headers={"Authorization": f"Bearer {self.samples.token}"},
        )
        ready = await self.ws.receive_json(timeout=10)
        assert ready["type"] == "ready", ready

    def exchange(self, frame: str | bytes) -> dict[str, Any]:
        async def go() -> dict[str, Any]:
            assert self.ws is not None
            if isinstance(frame, bytes):
                await self.ws.send_bytes(frame)
            else:
                await self.ws.send_str(frame)
            message = await self.ws.receive(timeout=10)
            assert message.type == aiohttp.WSMsgType.TEXT, (message.type, message.data)
            reply = json.loads(message.data)
            assert isinstance(reply, dict)
            return reply

        return self.loop.run_until_complete(go())

    def close(self) -> None:
        async def go() -> None:
            if self.ws is not None:
                await self.ws.close()
            if self.session is not None:
                await self.session.close()

        self.loop.run_until_complete(go())
        self.loop.close()


@st.composite
def frames(draw: st.DrawFn, samples: Samples) -> str | bytes:
    kind = draw(st.sampled_from(["binary", "text", "json", "shaped", "shaped", "shaped"]))
    if kind == "binary":
        return draw(st.binary(max_size=200))
    if kind == "text":
        return draw(st.text(max_size=200))
    if kind == "json":
        return json.dumps(draw(json_values))
    message: dict[str, Any] = {
        "type": draw(st.sampled_from(["append", "ping", "auth", "entries", "", "APPEND"]))
    }
    if draw(st.booleans()):
        message["id"] = draw(json_values)
    if draw(st.integers(0, 4)) > 0:
        message["entries"] = draw(
            st.one_of(st.lists(samples.field_values(), max_size=4), json_values)
        )
    return json.dumps(message)


def fuzz_socket(target: tuple[Any, Samples], examples: int) -> None:
    relay, samples = target
    driver = SocketDriver(relay, samples)
    try:

        @settings(max_examples=examples, **FUZZ_SETTINGS)  # type: ignore[arg-type]
        @given(frame=frames(samples))
        def run(frame: str | bytes) -> None:
            reply = driver.exchange(frame)
            assert reply["type"] in {"error", "pong", "appended"}, reply
            if reply["type"] == "error":
                code = reply["error"]["code"]
                assert code in CODES and code != "internal", reply

        run()
        assert driver.exchange(json.dumps({"type": "ping", "id": 1})) == {"type": "pong", "id": 1}
    finally:
        driver.close()
    healthy(relay, samples)


def test_websocket_frames_get_documented_errors(target: tuple[Any, Samples]) -> None:
    fuzz_socket(target, 150)


@pytest.mark.slow
def test_websocket_frames_get_documented_errors_long(target: tuple[Any, Samples]) -> None:
    fuzz_socket(target, 5000)
