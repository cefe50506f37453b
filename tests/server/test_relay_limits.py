"""Limits and hostile input: each limit has its own code, never a 500, and the relay stays up."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from relay_helpers import Device, RelayAPI, b64, new_space


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def code_of(body: object) -> str:
    assert isinstance(body, dict) and "error" in body, body
    return str(body["error"]["code"])


async def test_each_limit_has_its_code(
    http: aiohttp.ClientSession, relay_db_url: str, start_relay: Any
) -> None:
    relay = start_relay(
        relay_db_url,
        device_rate=0.5,
        device_burst=4,
        ip_rate=1.0,
        ip_burst=40,
        pairing_rate=0.1,
        pairing_burst=2,
        max_body_bytes=64 * 1024,
        max_entry_bytes=2000,
        max_batch_entries=3,
        pairing_ttl=1,
    )
    api = RelayAPI(http, relay.url)
    alice = await api.founded(Device(space=new_space()))
    # Entry size and batch size.
    status, body = await api.append(alice, alice.data(bytes(3000), advance=False))
    assert (status, code_of(body)) == (413, "entry_too_large")
    status, body = await api.append(alice, *[alice.data() for _ in range(4)])
    assert (status, code_of(body)) == (413, "batch_too_large")
    alice.seq, alice.head = 1, None
    # Body size, with and without a Content-Length.
    status, body = await api.call("POST", "/v1/spaces", raw=b"{" + b" " * 70000 + b"}")
    assert (status, code_of(body)) == (413, "body_too_large")

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(20):
            yield b" " * 8192

    async with http.post(relay.url + "/v1/spaces", data=chunks()) as answer:
        assert answer.status == 413
        assert code_of(await answer.json()) == "body_too_large"
    # The device rate: a burst of 4, then 429 with Retry-After.
    heads = f"/v1/spaces/{b64(alice.space)}/heads"
    statuses = []
    for _ in range(6):
        async with http.get(
            relay.url + heads, headers={"Authorization": f"Bearer {alice.token}"}
        ) as answer:
            statuses.append(answer.status)
            if answer.status == 429:
                assert code_of(await answer.json()) == "rate_limited"
                assert int(answer.headers["Retry-After"]) >= 1
    assert 429 in statuses and statuses[0] == 200
    # Pairing creation per address: a burst of 2.
    created = [(await api.call("POST", "/v1/pairing/channels"))[0] for _ in range(3)]
    assert created[:2] == [201, 201]
    status, body = await api.call("POST", "/v1/pairing/channels")
    assert (status, code_of(body)) == (429, "ip_rate_limited")
    # The address rate: a burst of 40 for everything but the probes.
    results = [await api.call("GET", "/v1/openapi.yaml") for _ in range(45)]
    assert any(status == 429 and code_of(body) == "ip_rate_limited" for status, body in results)
    async with http.get(relay.url + "/healthz") as answer:
        assert answer.status == 200


async def test_pairing_channels_expire(
    http: aiohttp.ClientSession, relay_db_url: str, start_relay: Any
) -> None:
    relay = start_relay(relay_db_url, pairing_ttl=1)
    api = RelayAPI(http, relay.url)
    status, grant = await api.call("POST", "/v1/pairing/channels", {"nameplate": True})
    assert status == 201
    await asyncio.sleep(2.1)
    status, body = await api.call("POST", f"/v1/pairing/channels/{grant['channel']}/claim")
    assert (status, code_of(body)) == (404, "unknown_channel")
    status, body = await api.call(
        "GET", f"/v1/pairing/channels/{grant['channel']}/messages", token=grant["side_token"]
    )
    assert (status, code_of(body)) == (404, "unknown_channel")
    status, body = await api.call("POST", f"/v1/pairing/nameplates/{grant['nameplate']}/claim")
    assert (status, code_of(body)) == (404, "unknown_channel")


async def test_hostile_requests_get_json_errors(
    http: aiohttp.ClientSession, shared_relay: Any
) -> None:
    api = RelayAPI(http, shared_relay.url)
    alice = await api.founded(Device(space=new_space()))
    space = b64(alice.space)
    cases: list[tuple[str, str, bytes | None, str | None, str]] = [
        ("POST", "/v1/spaces", b"{not json", None, "bad_json"),
        ("POST", "/v1/spaces", b"[1, 2]", None, "bad_json"),
        ("POST", "/v1/spaces", b"\xff\xfe\x00", None, "bad_json"),
        ("POST", "/v1/spaces", b"[" * 100_000 + b"]" * 100_000, None, "bad_json"),
        ("POST", "/v1/spaces", b'{"space": 5, "entry": null}', None, "bad_request"),
        (
            "POST",
            "/v1/spaces",
            b'{"space": "AAAAAAAAAAAAAAAAAAAAAA==", "entry": "", "sig": ""}',
            None,
            "bad_request",
        ),
        ("POST", "/v1/auth/token", b"{}", None, "bad_request"),
        ("POST", f"/v1/spaces/{space}/entries", b"{}", "garbage", "unauthorized"),
        ("POST", f"/v1/spaces/{space}/entries", b'{"entries": [1]}', alice.token, "bad_request"),
        ("POST", f"/v1/spaces/{space}/fetch", b'{"after": -1}', alice.token, "bad_request"),
        ("POST", f"/v1/spaces/{space}/fetch", b'{"limit": 1e9}', alice.token, "bad_request"),
        ("GET", "/v1/nowhere", None, None, "not_found"),
        ("DELETE", "/v1/spaces", None, None, "method_not_allowed"),
        ("PUT", "/healthz", None, None, "method_not_allowed"),
    ]
    for method, path, raw, token, expected in cases:
        status, body = await api.call(method, path, raw=raw, token=token)
        assert code_of(body) == expected, (method, path, raw and raw[:40], body)
        assert status in (400, 401, 404, 405), status
    # A forged entry signature: one flipped byte.
    genuine = alice.data(advance=False)
    entry = bytearray(genuine.to_bytes())
    entry[bytes(entry).index(genuine.sig) + 10] ^= 0x40
    status, body = await api.append_raw(alice, [bytes(entry)])
    assert (status, code_of(body)) == (400, "bad_signature")
    # Still up, and every error was JSON.
    async with http.get(shared_relay.url + "/healthz") as answer:
        assert answer.status == 200
        assert json.loads(await answer.text()) == {"status": "ok"}


async def test_metrics_and_health(http: aiohttp.ClientSession, relay: Any) -> None:
    api = RelayAPI(http, relay.url)
    alice = await api.founded(Device(space=new_space()))
    assert (await api.append(alice, alice.data(), alice.data()))[0] == 200
    await api.append(alice, alice.data(advance=False), alice.data(advance=False))
    await api.call("POST", "/v1/spaces", raw=b"nope")
    async with http.get(relay.url + "/metrics") as answer:
        assert answer.status == 200
        assert answer.content_type == "text/plain"
        text = await answer.text()
    assert 'accord_entries_total{result="stored"} 3' in text  # the founding entry and two
    assert 'accord_errors_total{code="bad_json"} 1' in text
    entries_route = 'method="POST",route="/v1/spaces/{space}/entries"'
    assert f'accord_http_requests_total{{{entries_route},status="200"}} 1' in text
    # The second batch forks at its second entry: refused whole.
    assert f'accord_http_requests_total{{{entries_route},status="409"}} 1' in text
    assert 'accord_errors_total{code="fork"} 1' in text
    assert "accord_websockets_open 0" in text
    # No secret or identifier ever appears in the metrics.
    assert alice.token not in text and b64(alice.space) not in text
    logs = relay.logs()
    assert alice.token not in logs and b64(alice.space) not in logs


async def test_cors_and_trusted_proxies(
    http: aiohttp.ClientSession, relay_db_url: str, start_relay: Any
) -> None:
    relay = start_relay(
        relay_db_url,
        cors_origin=["https://app.example"],
        trusted_proxy=["127.0.0.1"],
        ip_rate=0.01,
        ip_burst=5,
    )
    preflight = {
        "Origin": "https://app.example",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
    }
    async with http.options(relay.url + "/v1/spaces", headers=preflight) as answer:
        assert answer.status == 204
        assert answer.headers["Access-Control-Allow-Origin"] == "https://app.example"
        assert "POST" in answer.headers["Access-Control-Allow-Methods"]
        assert "Authorization" in answer.headers["Access-Control-Allow-Headers"]
    async with http.get(
        relay.url + "/healthz", headers={"Origin": "https://elsewhere.example"}
    ) as answer:
        assert "Access-Control-Allow-Origin" not in answer.headers

    async def status_from(address: str) -> int:
        headers = {"X-Forwarded-For": f"{address}, 127.0.0.1", "Origin": "https://app.example"}
        async with http.get(relay.url + "/v1/openapi.yaml", headers=headers) as answer:
            if answer.status == 429:
                assert answer.headers["Access-Control-Allow-Origin"] == "https://app.example"
            return answer.status

    # Each forwarded address has its own bucket of 5.
    first = [await status_from("203.0.113.7") for _ in range(6)]
    assert first == [200] * 5 + [429]
    assert await status_from("198.51.100.9") == 200
