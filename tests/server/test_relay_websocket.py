"""The space WebSocket on a real relay process: auth, pushes, appends, closes."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from relay_helpers import Device, RelayAPI, b64, new_space, unb64

from protocol.entry import Entry


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def receive(ws: aiohttp.ClientWebSocketResponse, timeout: float = 10) -> dict[str, Any]:
    message = await ws.receive(timeout=timeout)
    assert message.type == aiohttp.WSMsgType.TEXT, message
    value = json.loads(message.data)
    assert isinstance(value, dict) and "type" in value
    return value


async def connect(
    http: aiohttp.ClientSession, relay: Any, device: Device, *, header: bool = True
) -> aiohttp.ClientWebSocketResponse:
    headers = {"Authorization": f"Bearer {device.token}"} if header else {}
    ws = await http.ws_connect(relay.ws_url(b64(device.space)), headers=headers)
    if not header:
        await ws.send_json({"type": "auth", "token": device.token})
    ready = await receive(ws)
    assert ready["type"] == "ready", ready
    assert ready["device"] == device.id_b64
    return ws


async def test_pushes_entries_and_accepts_appends(
    http: aiohttp.ClientSession, shared_relay: Any
) -> None:
    api = RelayAPI(http, shared_relay.url)
    alice = await api.founded(Device(space=new_space()))
    bob = await api.join(alice, Device(space=alice.space), same_member=False)
    alice_ws = await connect(http, shared_relay, alice)
    bob_ws = await connect(http, shared_relay, bob, header=False)
    # Over HTTP: pushed to Bob, not back to Alice.
    entry = alice.data(b"over http")
    assert (await api.append(alice, entry))[0] == 200
    push = await receive(bob_ws)
    assert push["type"] == "entries"
    assert [unb64(item) for item in push["entries"]] == [entry.to_bytes()]
    assert push["cursor"] > 0
    # Over the socket, with a request id echoed back.
    second = bob.data(b"over ws")
    await bob_ws.send_json({"type": "append", "id": 7, "entries": [b64(second.to_bytes())]})
    reply = await receive(bob_ws)
    assert reply == {
        "type": "appended",
        "id": 7,
        "results": [
            {
                "id": b64(second.id),
                "seq": second.seq,
                "position": reply["results"][0]["position"],
                "status": "stored",
            }
        ],
    }
    push = await receive(alice_ws)
    assert [Entry.from_bytes(unb64(item)).id for item in push["entries"]] == [second.id]
    # A duplicate over the socket; an error keeps the socket open.
    await bob_ws.send_json({"type": "append", "id": 8, "entries": [b64(second.to_bytes())]})
    reply = await receive(bob_ws)
    assert reply["results"][0]["status"] == "duplicate"
    await bob_ws.send_json({"type": "append", "id": 9, "entries": [b64(alice.data().to_bytes())]})
    reply = await receive(bob_ws)
    assert reply["type"] == "error" and reply["id"] == 9
    assert reply["error"]["code"] == "forbidden"
    await bob_ws.send_json({"type": "ping", "id": "p"})
    assert await receive(bob_ws) == {"type": "pong", "id": "p"}
    await bob_ws.send_str("not json")
    assert (await receive(bob_ws))["error"]["code"] == "bad_json"
    await bob_ws.send_json({"type": "dance"})
    assert (await receive(bob_ws))["error"]["code"] == "bad_request"
    await bob_ws.send_bytes(b"\x00")
    assert (await receive(bob_ws))["error"]["code"] == "bad_request"
    await bob_ws.send_json({"type": "append", "id": 10, "entries": "x"})
    assert (await receive(bob_ws))["error"]["code"] == "bad_request"
    await alice_ws.close()
    await bob_ws.close()


async def test_websocket_auth_failures(http: aiohttp.ClientSession, shared_relay: Any) -> None:
    api = RelayAPI(http, shared_relay.url)
    alice = await api.founded(Device(space=new_space()))
    url = shared_relay.ws_url(b64(alice.space))
    # A bad token in the header: a plain HTTP error, no upgrade.
    with pytest.raises(aiohttp.WSServerHandshakeError) as failure:
        await http.ws_connect(url, headers={"Authorization": "Bearer " + b64(bytes(32))})
    assert failure.value.status == 401
    # A bad first message: an error, then close 4401.
    ws = await http.ws_connect(url)
    await ws.send_json({"type": "auth", "token": "nope"})
    error = await receive(ws)
    assert error["type"] == "error" and error["error"]["code"] == "unauthorized"
    closing = await ws.receive(timeout=5)
    assert closing.type == aiohttp.WSMsgType.CLOSE and closing.data == 4401
    # Something other than an auth message first.
    ws = await http.ws_connect(url)
    await ws.send_json({"type": "ping"})
    assert (await receive(ws))["error"]["code"] == "unauthorized"
    # A token of another space.
    other = await api.founded(Device(space=new_space()))
    ws = await http.ws_connect(url)
    await ws.send_json({"type": "auth", "token": other.token})
    assert (await receive(ws))["error"]["code"] == "forbidden"


async def test_removed_device_socket_closes_at_once(
    http: aiohttp.ClientSession, shared_relay: Any
) -> None:
    api = RelayAPI(http, shared_relay.url)
    alice = await api.founded(Device(space=new_space()))
    laptop = await api.join(alice, Device(space=alice.space), same_member=True)
    ws = await connect(http, shared_relay, laptop)
    assert (await api.append(alice, alice.remove_device(laptop)))[0] == 200
    error = await receive(ws)
    assert error["type"] == "error" and error["error"]["code"] == "device_removed"
    closing = await ws.receive(timeout=5)
    assert closing.type == aiohttp.WSMsgType.CLOSE and closing.data == 4403


async def test_websocket_limit_per_device(
    http: aiohttp.ClientSession, relay_db_url: str, start_relay: Any
) -> None:
    relay = start_relay(relay_db_url, websockets_per_device=2)
    api = RelayAPI(http, relay.url)
    alice = await api.founded(Device(space=new_space()))
    first = await connect(http, relay, alice)
    second = await connect(http, relay, alice, header=False)
    with pytest.raises(aiohttp.WSServerHandshakeError) as failure:
        await http.ws_connect(
            relay.ws_url(b64(alice.space)), headers={"Authorization": f"Bearer {alice.token}"}
        )
    assert failure.value.status == 429
    third = await http.ws_connect(relay.ws_url(b64(alice.space)))
    await third.send_json({"type": "auth", "token": alice.token})
    assert (await receive(third))["error"]["code"] == "too_many_websockets"
    assert (await third.receive(timeout=5)).data == 4429
    # Closing one frees a place.
    await first.close()
    await asyncio.sleep(0.2)
    again = await connect(http, relay, alice)
    await again.close()
    await second.close()


async def test_going_away_on_graceful_stop(http: aiohttp.ClientSession, relay: Any) -> None:
    api = RelayAPI(http, relay.url)
    alice = await api.founded(Device(space=new_space()))
    ws = await connect(http, relay, alice)
    # A pairing long-poll in flight is answered at once when the relay stops.
    status, grant = await api.call("POST", "/v1/pairing/channels")
    assert status == 201
    polling = asyncio.create_task(
        api.call(
            "GET",
            f"/v1/pairing/channels/{grant['channel']}/messages?wait=25",
            token=grant["side_token"],
        )
    )
    await asyncio.sleep(0.3)
    started = time.monotonic()
    stopping = asyncio.get_running_loop().run_in_executor(None, relay.stop)
    closing = await ws.receive(timeout=15)
    assert closing.type == aiohttp.WSMsgType.CLOSE and closing.data == 1001
    assert await polling == (200, {"messages": []})
    assert await stopping == 0
    assert time.monotonic() - started < 8


@pytest.mark.slow
async def test_socket_closes_when_its_token_expires(
    http: aiohttp.ClientSession, relay_db_url: str, start_relay: Any
) -> None:
    relay = start_relay(relay_db_url, token_ttl=60)
    api = RelayAPI(http, relay.url)
    alice = await api.founded(Device(space=new_space()))
    ws = await connect(http, relay, alice)
    error = await receive(ws, timeout=90)
    assert error["type"] == "error" and error["error"]["code"] == "unauthorized"
    closing = await ws.receive(timeout=10)
    assert closing.type == aiohttp.WSMsgType.CLOSE and closing.data == 4401
