"""The relay's HTTP API for spaces, authentication, entries, fetch, heads and roster:
happy paths and every error code, on a real relay process (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from relay_helpers import Device, RelayAPI, b64, new_space, unb64

from protocol.crypto import SigContext
from protocol.entry import Entry, seal
from protocol.roster import Found, encode_record
from server.auth import auth_message


@pytest.fixture
async def api(shared_relay) -> AsyncIterator[RelayAPI]:
    async with aiohttp.ClientSession() as http:
        yield RelayAPI(http, shared_relay.url)


def code_of(body: object) -> str:
    assert isinstance(body, dict) and "error" in body, body
    return str(body["error"]["code"])


# -- spaces ------------------------------------------------------------------------------


async def test_create_space_then_exists(api: RelayAPI) -> None:
    founder = Device(space=new_space())
    founding = founder.found()
    status, body = await api.create_space(founder, founding)
    assert status == 201, body
    assert body["space"] == b64(founder.space)
    assert body["id"] == b64(founding.id)
    assert body["position"] == 1
    status, body = await api.create_space(founder, founding)
    assert (status, code_of(body)) == (409, "space_exists")


async def test_create_space_refuses_bad_requests(api: RelayAPI) -> None:
    founder = Device(space=new_space())
    entry = founder.found()
    good_sig = founder.key.sign(SigContext.CREATE_SPACE + founder.space)
    # Signature over another space id.
    bad_sig = founder.key.sign(SigContext.CREATE_SPACE + new_space())
    body = {"space": b64(founder.space), "entry": b64(entry.to_bytes()), "sig": b64(bad_sig)}
    status, answer = await api.call("POST", "/v1/spaces", body)
    assert (status, code_of(answer)) == (400, "bad_signature")
    # The founding entry names another space.
    other = Device(space=new_space(), key=founder.key)
    body = {
        "space": b64(founder.space),
        "entry": b64(other.found().to_bytes()),
        "sig": b64(good_sig),
    }
    status, answer = await api.call("POST", "/v1/spaces", body)
    assert (status, code_of(answer)) == (400, "wrong_space")
    # A data entry cannot found a space.
    data = Device(space=founder.space, key=founder.key).data()
    body = {"space": b64(founder.space), "entry": b64(data.to_bytes()), "sig": b64(good_sig)}
    status, answer = await api.call("POST", "/v1/spaces", body)
    assert (status, code_of(answer)) == (400, "malformed")
    # A found record naming another device.
    stranger = Device(space=founder.space)
    wrong = Device(space=founder.space, key=founder.key).roster(
        Found(member=stranger.member, device=stranger.public)
    )
    body = {"space": b64(founder.space), "entry": b64(wrong.to_bytes()), "sig": b64(good_sig)}
    status, answer = await api.call("POST", "/v1/spaces", body)
    assert (status, code_of(answer)) == (409, "roster_invalid")
    # Bytes that are not an entry, a short space id, a missing field.
    body = {"space": b64(founder.space), "entry": b64(b"\xa0"), "sig": b64(good_sig)}
    status, answer = await api.call("POST", "/v1/spaces", body)
    assert (status, code_of(answer)) == (400, "malformed")
    body = {"space": b64(b"short"), "entry": b64(entry.to_bytes()), "sig": b64(good_sig)}
    status, answer = await api.call("POST", "/v1/spaces", body)
    assert (status, code_of(answer)) == (400, "bad_request")
    status, answer = await api.call("POST", "/v1/spaces", {"space": b64(founder.space)})
    assert (status, code_of(answer)) == (400, "bad_request")
    # Nothing was created by any of these.
    status, answer = await api.create_space(founder, entry)
    assert status == 201, answer


# -- authentication ------------------------------------------------------------------------


async def test_auth_challenge_and_token(api: RelayAPI) -> None:
    founder = await api.founded(Device(space=new_space()))
    assert founder.token
    status, body = await api.call(
        "GET", f"/v1/spaces/{b64(founder.space)}/heads", token=founder.token
    )
    assert status == 200, body


async def test_auth_errors(api: RelayAPI) -> None:
    founder = await api.founded(Device(space=new_space()))
    space = b64(founder.space)
    # Unknown space, unknown device.
    status, body = await api.call(
        "POST", "/v1/auth/challenge", {"space": b64(new_space()), "device": founder.id_b64}
    )
    assert (status, code_of(body)) == (404, "unknown_space")
    stranger = Device(space=founder.space)
    status, body = await api.call(
        "POST", "/v1/auth/challenge", {"space": space, "device": stranger.id_b64}
    )
    assert (status, code_of(body)) == (403, "unknown_device")

    async def challenge() -> bytes:
        status, body = await api.call(
            "POST", "/v1/auth/challenge", {"space": space, "device": founder.id_b64}
        )
        assert status == 200, body
        assert body["expires_at"] > 0
        return unb64(body["challenge"])

    def token_request(challenge: bytes, sig: bytes) -> dict[str, str]:
        return {
            "space": space,
            "device": founder.id_b64,
            "challenge": b64(challenge),
            "sig": b64(sig),
        }

    # A signature by another key; the challenge is then used up.
    first = await challenge()
    forged = stranger.key.sign(
        auth_message(space=founder.space, device=founder.public, challenge=first)
    )
    status, body = await api.call("POST", "/v1/auth/token", token_request(first, forged))
    assert (status, code_of(body)) == (401, "auth_failed")
    good = founder.key.sign(
        auth_message(space=founder.space, device=founder.public, challenge=first)
    )
    status, body = await api.call("POST", "/v1/auth/token", token_request(first, good))
    assert (status, code_of(body)) == (401, "auth_failed")
    # A good answer works once, and a replay fails.
    second = await challenge()
    good = founder.key.sign(
        auth_message(space=founder.space, device=founder.public, challenge=second)
    )
    status, body = await api.call("POST", "/v1/auth/token", token_request(second, good))
    assert status == 200, body
    status, body = await api.call("POST", "/v1/auth/token", token_request(second, good))
    assert (status, code_of(body)) == (401, "auth_failed")
    # A challenge never issued.
    made_up = bytes(32)
    sig = founder.key.sign(
        auth_message(space=founder.space, device=founder.public, challenge=made_up)
    )
    status, body = await api.call("POST", "/v1/auth/token", token_request(made_up, sig))
    assert (status, code_of(body)) == (401, "auth_failed")


async def test_tokens_are_checked(api: RelayAPI) -> None:
    founder = await api.founded(Device(space=new_space()))
    other = await api.founded(Device(space=new_space()))
    heads = f"/v1/spaces/{b64(founder.space)}/heads"
    status, body = await api.call("GET", heads)
    assert (status, code_of(body)) == (401, "unauthorized")
    status, body = await api.call("GET", heads, headers={"Authorization": "Basic abc"})
    assert (status, code_of(body)) == (401, "unauthorized")
    status, body = await api.call("GET", heads, token="not-a-token!")
    assert (status, code_of(body)) == (401, "unauthorized")
    status, body = await api.call("GET", heads, token=b64(bytes(32)))
    assert (status, code_of(body)) == (401, "unauthorized")
    # A token of another space.
    status, body = await api.call("GET", heads, token=other.token)
    assert (status, code_of(body)) == (403, "forbidden")
    # A malformed space id in the path.
    status, body = await api.call("GET", "/v1/spaces/xyz/heads", token=founder.token)
    assert (status, code_of(body)) == (400, "bad_request")


# -- append -------------------------------------------------------------------------------


async def test_append_is_idempotent(api: RelayAPI) -> None:
    device = await api.founded(Device(space=new_space()))
    first, second = device.data(b"one"), device.data(b"two")
    status, body = await api.append(device, first, second)
    assert status == 200, body
    assert [item["status"] for item in body["results"]] == ["stored", "stored"]
    assert [item["seq"] for item in body["results"]] == [2, 3]
    assert [item["position"] for item in body["results"]] == [2, 3]
    assert body["results"][0]["id"] == b64(first.id)
    # Re-sent, alone and with a new entry: nothing is stored twice.
    third = device.data(b"three")
    status, body = await api.append(device, first, second, third)
    assert status == 200, body
    assert [item["status"] for item in body["results"]] == ["duplicate", "duplicate", "stored"]
    assert body["results"][1]["position"] == 3
    entries = await api.fetch_all(device)
    assert [entry.seq for entry in entries] == [1, 2, 3, 4]


async def test_forged_replayed_out_of_order_and_forked_entries(api: RelayAPI) -> None:
    device = await api.founded(Device(space=new_space()))
    stored = [device.data(b"a"), device.data(b"b")]
    status, body = await api.append(device, *stored)
    assert status == 200, body

    # Forged: another key signed it, with this device's name on it.
    forger = Device(space=device.space, seq=device.seq, head=device.head)
    forged = forger.data(advance=False)
    forged = Entry(**{**_fields(forged), "device": device.public})
    status, body = await api.append_raw(device, [forged.to_bytes()])
    assert (status, code_of(body), body["error"]["index"]) == (400, "bad_signature", 0)

    # A fork: a different entry at a seq already stored.
    alternative = seal(
        device_key=device.key,
        space=device.space,
        seq=3,
        prev=stored[0].id,
        epoch=0,
        epoch_key=bytes(32),
        plaintext=b"other",
    )
    status, body = await api.append(device, alternative)
    assert (status, code_of(body)) == (409, "fork")

    # Out of order: seq 5 before seq 4 (a gap).
    fourth, fifth = device.data(b"4"), device.data(b"5")
    status, body = await api.append(device, fifth)
    assert (status, code_of(body)) == (409, "feed_gap")
    # A broken chain: seq 4 whose prev is not the head.
    broken = seal(
        device_key=device.key,
        space=device.space,
        seq=4,
        prev=bytes(32),
        epoch=0,
        epoch_key=bytes(32),
        plaintext=b"x",
    )
    status, body = await api.append(device, broken)
    assert (status, code_of(body)) == (409, "broken_chain")
    # A batch is all or nothing: a good entry followed by a bad one stores neither.
    status, body = await api.append(device, fourth, broken)
    assert (status, code_of(body), body["error"]["index"]) == (409, "fork", 1)
    # Replayed into another space.
    elsewhere = await api.founded(Device(space=new_space(), key=device.key))
    status, body = await api.append(elsewhere, stored[0])
    assert (status, code_of(body)) == (400, "wrong_space")
    # A later epoch, then an earlier one.
    status, body = await api.append(device, fourth)
    assert status == 200, body
    device.seq, device.head = fourth.seq, fourth.id
    device.epoch = 3
    later = device.data(b"epoch 3")
    device.epoch = 2
    earlier = device.data(b"epoch 2")
    status, body = await api.append(device, later, earlier)
    assert (status, code_of(body), body["error"]["index"]) == (409, "wrong_epoch", 1)

    # The stored feed is exactly what was accepted.
    entries = await api.fetch_all(device)
    assert [entry.id for entry in entries] == [entries[0].id, stored[0].id, stored[1].id, fourth.id]


def _fields(entry: Entry) -> dict[str, object]:
    return {
        name: getattr(entry, name)
        for name in (
            "type",
            "space",
            "device",
            "seq",
            "prev",
            "epoch",
            "seen",
            "nonce",
            "body",
            "sig",
        )
    }


async def test_append_refuses_other_feeds_and_bad_batches(api: RelayAPI) -> None:
    alice = await api.founded(Device(space=new_space()))
    bob = await api.join(alice, Device(space=alice.space), same_member=False)
    # Bob may not upload Alice's entries, even genuine ones.
    status, body = await api.append(bob, alice.data())
    assert (status, code_of(body)) == (403, "forbidden")
    alice.seq, alice.head = alice.seq - 1, None  # undo; the entry was never stored
    space = b64(alice.space)
    status, body = await api.call(
        "POST", f"/v1/spaces/{space}/entries", {"entries": []}, token=bob.token
    )
    assert (status, code_of(body)) == (400, "bad_request")
    status, body = await api.call(
        "POST", f"/v1/spaces/{space}/entries", {"entries": ["a"] * 65}, token=bob.token
    )
    assert (status, code_of(body)) == (413, "batch_too_large")
    status, body = await api.call(
        "POST", f"/v1/spaces/{space}/entries", {"entries": ["!!"]}, token=bob.token
    )
    assert (status, code_of(body)) == (400, "bad_request")
    status, body = await api.call(
        "POST", f"/v1/spaces/{space}/entries", {"entries": "nope"}, token=bob.token
    )
    assert (status, code_of(body)) == (400, "bad_request")
    # An entry of an unsupported format version.
    import cbor2

    raw = cbor2.loads(bob.data(advance=False).to_bytes())
    raw["v"] = 2
    status, body = await api.append_raw(bob, [cbor2.dumps(raw, canonical=True)])
    assert (status, code_of(body)) == (400, "unsupported_version")


# -- fetch, heads, roster -------------------------------------------------------------------


async def test_fetch_pages_in_feed_order(api: RelayAPI) -> None:
    alice = await api.founded(Device(space=new_space()))
    bob = await api.join(alice, Device(space=alice.space), same_member=False)
    for round_ in range(5):
        assert (await api.append(alice, alice.data(b"a%d" % round_)))[0] == 200
        assert (await api.append(bob, bob.data(b"b%d" % round_), bob.data(b"c")))[0] == 200
    everything = await api.fetch_all(bob)
    assert len(everything) == 2 + 5 + 10
    # Each feed comes in its own order.
    for device in (alice.public, bob.public):
        seqs = [entry.seq for entry in everything if entry.device == device]
        assert seqs == sorted(seqs) == list(range(1, len(seqs) + 1))
    # Pages of 4 give the same entries, and "more" is false at the end only.
    pages, after = [], 0
    while True:
        status, body = await api.fetch(bob, after=after, limit=4)
        assert status == 200, body
        pages.append(body)
        after = body["cursor"]
        if not body["more"]:
            break
    paged = [Entry.from_bytes(unb64(item)) for page in pages for item in page["entries"]]
    assert [entry.id for entry in paged] == [entry.id for entry in everything]
    assert all(page["more"] for page in pages[:-1])
    # The have-vector leaves out what the client holds.
    status, body = await api.fetch(bob, have={alice.public: alice.seq, bob.public: 8})
    assert status == 200, body
    rest = [Entry.from_bytes(unb64(item)) for item in body["entries"]]
    assert [(entry.device, entry.seq) for entry in rest] == [(bob.public, 9), (bob.public, 10)]
    # Bad fetch requests.
    space = b64(alice.space)
    for bad in ({"have": []}, {"have": {"xx": 1}}, {"have": {b64(alice.public): -1}}, {"limit": 0}):
        status, body = await api.call("POST", f"/v1/spaces/{space}/fetch", bad, token=bob.token)
        assert (status, code_of(body)) == (400, "bad_request"), bad


async def test_heads_and_roster(api: RelayAPI) -> None:
    alice = await api.founded(Device(space=new_space()))
    laptop = await api.join(alice, Device(space=alice.space), same_member=True)
    assert (await api.append(laptop, laptop.data()))[0] == 200
    status, body = await api.call("GET", f"/v1/spaces/{b64(alice.space)}/heads", token=laptop.token)
    assert status == 200
    assert body["heads"] == {
        alice.id_b64: {"seq": alice.seq, "id": b64(alice.head or b"")},
        laptop.id_b64: {"seq": 1, "id": b64(laptop.head or b"")},
    }
    status, body = await api.call("GET", f"/v1/spaces/{b64(alice.space)}/roster", token=alice.token)
    assert status == 200
    devices = {item["device"]: item for item in body["devices"]}
    assert devices[laptop.id_b64]["member"] == b64(alice.member)
    assert {item["status"] for item in devices.values()} == {"active"}
    assert (await api.call("GET", f"/v1/spaces/{b64(new_space())}/roster", token=alice.token))[
        0
    ] == 403


async def test_removed_device_is_shut_out_at_once(api: RelayAPI) -> None:
    alice = await api.founded(Device(space=new_space()))
    laptop = await api.join(alice, Device(space=alice.space), same_member=True)
    assert (await api.append(laptop, laptop.data()))[0] == 200
    status, body = await api.append(alice, alice.remove_device(laptop))
    assert status == 200, body
    status, body = await api.append(laptop, laptop.data())
    assert (status, code_of(body)) == (403, "device_removed")
    status, body = await api.call("GET", f"/v1/spaces/{b64(alice.space)}/heads", token=laptop.token)
    assert (status, code_of(body)) == (403, "device_removed")
    status, body = await api.call(
        "POST", "/v1/auth/challenge", {"space": b64(alice.space), "device": laptop.id_b64}
    )
    assert (status, code_of(body)) == (403, "device_removed")
    status, body = await api.call("GET", f"/v1/spaces/{b64(alice.space)}/roster", token=alice.token)
    removed = {item["device"]: item for item in body["devices"]}[laptop.id_b64]
    assert removed["status"] == "removed" and removed["cut_seq"] == 1


async def test_roster_entries_are_checked(api: RelayAPI) -> None:
    alice = await api.founded(Device(space=new_space()))
    bob = await api.join(alice, Device(space=alice.space), same_member=False)
    # Bob may not add a device to Alice's member, nor remove Alice's device.
    intruder = Device(space=alice.space)
    intruder.member = alice.member
    from protocol.roster import AddDevice, RemoveDevice, join_proof

    proof = join_proof(intruder.key, space=alice.space, member=alice.member, by=bob.public)
    status, body = await api.append(
        bob, bob.roster(AddDevice(member=alice.member, device=intruder.public, proof=proof))
    )
    assert (status, code_of(body)) == (409, "roster_invalid")
    bob.seq, bob.head = 0, None
    status, body = await api.append(bob, bob.roster(RemoveDevice(device=alice.public, last_seq=2)))
    assert (status, code_of(body)) == (409, "roster_invalid")
    # A second found record.
    bob.seq, bob.head = 0, None
    status, body = await api.append(bob, bob.roster(Found(member=bob.member, device=bob.public)))
    assert (status, code_of(body)) == (409, "roster_invalid")
    # A record that is not a roster record at all.
    bob.seq, bob.head = 0, None
    from protocol.entry import seal_roster

    junk = seal_roster(
        device_key=bob.key,
        space=bob.space,
        seq=1,
        prev=None,
        epoch=0,
        record=encode_record(Found(member=bob.member, device=bob.public))[:-3],
    )
    status, body = await api.append(bob, junk)
    assert (status, code_of(body)) == (400, "malformed")


async def test_a_removal_undoes_what_the_removed_device_did_past_its_cut(api: RelayAPI) -> None:
    """A stolen laptop adds a device just before the owner removes it with a cut below that
    record: the added device no longer counts, on the relay as for the clients' fold."""
    from protocol.roster import RemoveDevice

    phone = await api.founded(Device(space=new_space()))
    laptop = await api.join(phone, Device(space=phone.space), same_member=True)
    thief = await api.join(laptop, Device(space=phone.space), same_member=True)
    assert (await api.append(thief, thief.data()))[0] == 200
    # The phone never saw the laptop's record: it cuts the laptop at 0.
    status, body = await api.append(
        phone, phone.roster(RemoveDevice(device=laptop.public, last_seq=0))
    )
    assert status == 200, body
    for device in (laptop, thief):
        status, body = await api.call(
            "GET", f"/v1/spaces/{b64(phone.space)}/heads", token=device.token
        )
        assert (status, code_of(body)) == (403, "device_removed")
    status, body = await api.call("GET", f"/v1/spaces/{b64(phone.space)}/roster", token=phone.token)
    devices = {item["device"]: item for item in body["devices"]}
    assert devices[thief.id_b64]["status"] == "removed" and devices[thief.id_b64]["cut_seq"] == 0
    assert devices[laptop.id_b64]["cut_seq"] == 0
    assert devices[phone.id_b64]["status"] == "active"
    # The phone can still add devices and write.
    tablet = await api.join(phone, Device(space=phone.space), same_member=True)
    assert (await api.append(tablet, tablet.data()))[0] == 200
