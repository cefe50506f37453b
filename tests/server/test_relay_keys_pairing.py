"""Key envelopes and the pairing rendezvous on a real relay (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
from relay_helpers import Device, RelayAPI, b64, new_space, unb64

from protocol.epochs import wrap_epoch_key


@pytest.fixture
async def api(shared_relay) -> AsyncIterator[RelayAPI]:
    async with aiohttp.ClientSession() as http:
        yield RelayAPI(http, shared_relay.url)


def code_of(body: object) -> str:
    assert isinstance(body, dict) and "error" in body, body
    return str(body["error"]["code"])


# -- key envelopes --------------------------------------------------------------------------


async def test_envelopes_are_stored_for_their_recipient(api: RelayAPI) -> None:
    alice = await api.founded(Device(space=new_space()))
    bob = await api.join(alice, Device(space=alice.space), same_member=False)
    laptop = await api.join(alice, Device(space=alice.space), same_member=True)
    keys = f"/v1/spaces/{b64(alice.space)}/keys"
    for_bob = [alice.envelope_for(bob, 0), alice.envelope_for(bob, 1)]
    for_laptop = alice.envelope_for(laptop, 1)
    body = {"envelopes": [b64(item) for item in [*for_bob, for_laptop]]}
    status, answer = await api.call("PUT", keys, body, token=alice.token)
    assert (status, answer) == (200, {"stored": 3, "duplicate": 0})
    status, answer = await api.call("PUT", keys, body, token=alice.token)
    assert (status, answer) == (200, {"stored": 0, "duplicate": 3})
    status, answer = await api.call("GET", keys, token=bob.token)
    assert status == 200 and [unb64(item) for item in answer["envelopes"]] == for_bob
    status, answer = await api.call("GET", keys + "?epoch=1", token=bob.token)
    assert [unb64(item) for item in answer["envelopes"]] == for_bob[1:]
    status, answer = await api.call("GET", keys + "?epoch=1", token=laptop.token)
    assert [unb64(item) for item in answer["envelopes"]] == [for_laptop]
    status, answer = await api.call("GET", keys, token=alice.token)
    assert answer == {"envelopes": []}
    status, answer = await api.call("GET", keys + "?epoch=x", token=alice.token)
    assert (status, code_of(answer)) == (400, "bad_request")


async def test_envelope_errors(api: RelayAPI) -> None:
    alice = await api.founded(Device(space=new_space()))
    bob = await api.join(alice, Device(space=alice.space), same_member=False)
    keys = f"/v1/spaces/{b64(alice.space)}/keys"

    async def put(device: Device, envelope: bytes) -> tuple[int, object]:
        return await api.call("PUT", keys, {"envelopes": [b64(envelope)]}, token=device.token)

    # Signed by Alice but uploaded by Bob.
    status, body = await put(bob, alice.envelope_for(bob))
    assert (status, code_of(body)) == (403, "forbidden")
    # To a device that is not in the roster.
    status, body = await put(alice, alice.envelope_for(Device(space=alice.space)))
    assert (status, code_of(body)) == (403, "unknown_device")
    # For another space.
    stray = wrap_epoch_key(
        from_key=alice.key, to=bob.public, space=new_space(), epoch=0, epoch_key=bytes(32)
    ).to_bytes()
    status, body = await put(alice, stray)
    assert (status, code_of(body)) == (400, "wrong_space")
    # A forged signature: one byte of the signature flipped.
    envelope = bytearray(alice.envelope_for(bob))
    envelope[-1] ^= 1
    status, body = await put(alice, bytes(envelope))
    assert (status, code_of(body)) == (400, "bad_signature")
    status, body = await put(alice, b"\x00garbage")
    assert (status, code_of(body)) == (400, "malformed")
    status, body = await api.call("PUT", keys, {"envelopes": []}, token=alice.token)
    assert (status, code_of(body)) == (400, "bad_request")
    # To a removed device.
    laptop = await api.join(alice, Device(space=alice.space), same_member=True)
    assert (await api.append(alice, alice.remove_device(laptop)))[0] == 200
    status, body = await put(alice, alice.envelope_for(laptop))
    assert (status, code_of(body)) == (403, "device_removed")
    # Nothing above was stored.
    status, body = await api.call("GET", keys, token=bob.token)
    assert body == {"envelopes": []}


# -- pairing rendezvous -----------------------------------------------------------------------


async def test_pairing_channel_round_trip(api: RelayAPI) -> None:
    status, inviter = await api.call("POST", "/v1/pairing/channels")
    assert status == 201, inviter
    assert set(inviter) == {"channel", "side_token", "expires_at"}
    assert 0 < inviter["expires_at"] - time.time() <= 121
    channel = inviter["channel"]
    base = f"/v1/pairing/channels/{channel}"
    status, joiner = await api.call("POST", base + "/claim")
    assert status == 200 and joiner["channel"] == channel
    # The code lives 2 minutes; a claimed channel lives on for the session (SPEC 11.1).
    assert joiner["expires_at"] == inviter["expires_at"] + 180
    # Claimed once: a second claimant is refused, and the pairing goes on.
    status, body = await api.call("POST", base + "/claim")
    assert (status, code_of(body)) == (409, "channel_claimed")
    a, b = inviter["side_token"], joiner["side_token"]
    status, body = await api.call("POST", base + "/messages", {"body": b64(b"pake-a")}, token=a)
    assert (status, body) == (201, {"seq": 1})
    status, body = await api.call("GET", base + "/messages", token=b)
    assert body == {"messages": [{"seq": 1, "body": b64(b"pake-a")}]}
    # A side never reads its own messages back.
    status, body = await api.call("GET", base + "/messages", token=a)
    assert body == {"messages": []}
    # A long-poll wakes when the other side posts.
    waiting = asyncio.create_task(api.call("GET", base + "/messages?after=0&wait=10", token=a))
    await asyncio.sleep(0.3)
    assert not waiting.done()
    started = time.monotonic()
    status, body = await api.call("POST", base + "/messages", {"body": b64(b"hello-b")}, token=b)
    assert body == {"seq": 2}
    status, body = await waiting
    assert body == {"messages": [{"seq": 2, "body": b64(b"hello-b")}]}
    assert time.monotonic() - started < 5
    # Burned by either side: gone for both.
    status, body = await api.call("DELETE", base, token=b)
    assert status == 204
    for token in (a, b):
        status, body = await api.call("GET", base + "/messages", token=token)
        assert (status, code_of(body)) == (404, "unknown_channel")
    status, body = await api.call("POST", base + "/claim")
    assert (status, code_of(body)) == (404, "unknown_channel")


async def test_pairing_by_nameplate(api: RelayAPI) -> None:
    status, inviter = await api.call("POST", "/v1/pairing/channels", {"nameplate": True})
    assert status == 201, inviter
    nameplate = inviter["nameplate"]
    assert nameplate.isdigit() and 1 <= int(nameplate) <= 9999
    status, joiner = await api.call("POST", f"/v1/pairing/nameplates/{nameplate}/claim")
    assert status == 200 and joiner["channel"] == inviter["channel"]
    # The nameplate is freed by the claim; it cannot be claimed again.
    status, body = await api.call("POST", f"/v1/pairing/nameplates/{nameplate}/claim")
    assert (status, code_of(body)) == (404, "unknown_channel")
    status, body = await api.call("POST", "/v1/pairing/nameplates/12ab/claim")
    assert (status, code_of(body)) == (400, "bad_request")


async def test_pairing_errors_and_limits(api: RelayAPI) -> None:
    status, inviter = await api.call("POST", "/v1/pairing/channels")
    base = f"/v1/pairing/channels/{inviter['channel']}"
    token = inviter["side_token"]
    # Wrong, missing or malformed side tokens.
    status, body = await api.call("GET", base + "/messages", token=b64(bytes(32)))
    assert (status, code_of(body)) == (401, "unauthorized")
    status, body = await api.call("GET", base + "/messages")
    assert (status, code_of(body)) == (401, "unauthorized")
    status, body = await api.call("DELETE", base, token="%%%")
    assert (status, code_of(body)) == (401, "unauthorized")
    # Payload and message limits.
    status, body = await api.call(
        "POST", base + "/messages", {"body": b64(bytes(16 * 1024 + 1))}, token=token
    )
    assert (status, code_of(body)) == (413, "message_too_large")
    for seq in range(1, 17):
        status, body = await api.call("POST", base + "/messages", {"body": b64(b"m")}, token=token)
        assert (status, body) == (201, {"seq": seq})
    status, body = await api.call("POST", base + "/messages", {"body": b64(b"m")}, token=token)
    assert (status, code_of(body)) == (409, "channel_full")
    status, body = await api.call("POST", base + "/messages", {"nobody": 1}, token=token)
    assert (status, code_of(body)) == (400, "bad_request")
    # Unknown channels, bad ids and queries.
    status, body = await api.call("POST", "/v1/pairing/channels/AAAAAAAAAAAAAAAAAAAAAA/claim")
    assert (status, code_of(body)) == (404, "unknown_channel")
    status, body = await api.call("POST", "/v1/pairing/channels/no*such/claim")
    assert (status, code_of(body)) == (400, "bad_request")
    status, body = await api.call("GET", base + "/messages?wait=999", token=token)
    assert (status, code_of(body)) == (400, "bad_request")
    status, body = await api.call("POST", "/v1/pairing/channels", {"nameplate": "yes"})
    assert (status, code_of(body)) == (400, "bad_request")
