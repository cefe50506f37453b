"""Concurrent writers, a SIGKILL in the middle of appends, and fan-out between processes."""

from __future__ import annotations

import asyncio
import itertools
from collections import defaultdict
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
from conftest import PG_ADMIN_DSN, make_database
from relay_helpers import Device, RelayAPI, b64, new_space, unb64

from protocol.entry import Entry, check_link

WRITERS = 50


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    connector = aiohttp.TCPConnector(limit=100)
    async with aiohttp.ClientSession(connector=connector) as session:
        yield session


async def space_with_devices(api: RelayAPI, count: int) -> list[Device]:
    """A space whose founder added ``count - 1`` members, all logged in."""
    founder = await api.founded(Device(space=new_space()))
    others = [Device(space=founder.space) for _ in range(count - 1)]
    for start in range(0, len(others), 32):
        batch = [founder.add_member(other) for other in others[start : start + 32]]
        status, body = await api.append(founder, *batch)
        assert status == 200, body
    await asyncio.gather(*(api.login(other) for other in others))
    return [founder, *others]


def assert_clean_feeds(entries: list[Entry]) -> dict[bytes, list[Entry]]:
    """Every feed is one chain 1..n with no repeat; returns the feeds."""
    feeds: dict[bytes, list[Entry]] = defaultdict(list)
    for entry in entries:
        feeds[entry.device].append(entry)
    for feed in feeds.values():
        assert [entry.seq for entry in feed] == list(range(1, len(feed) + 1))
        for before, after in itertools.pairwise(feed):
            check_link(after, before.id)
    return feeds


async def test_fifty_concurrent_writers(http: aiohttp.ClientSession, shared_relay: Any) -> None:
    api = RelayAPI(http, shared_relay.url)
    devices = await space_with_devices(api, WRITERS)
    acknowledged: dict[bytes, set[bytes]] = defaultdict(set)

    async def writer(device: Device) -> None:
        previous: Entry | None = None
        for index in range(4):
            entry = device.data(b"%d" % index)
            # Each new entry goes with a re-send of the one before (an idempotent retry).
            batch = [previous, entry] if previous is not None else [entry]
            status, body = await api.append(device, *batch)
            assert status == 200, body
            assert body["results"][-1]["status"] == "stored"
            if previous is not None:
                assert body["results"][0]["status"] == "duplicate"
            acknowledged[device.public].add(entry.id)
            previous = entry

    await asyncio.gather(*(writer(device) for device in devices))

    # Racing forks: five different entries at the same next seq of one feed, five times
    # the same entry of another feed.
    forked, repeated = devices[1], devices[2]
    rivals = [forked.data(b"rival %d" % n, advance=False) for n in range(5)]
    same = repeated.data(b"same")
    answers = await asyncio.gather(
        *(api.append(forked, rival) for rival in rivals),
        *(api.append(repeated, same) for _ in range(5)),
    )
    fork_statuses = sorted(status for status, _ in answers[:5])
    assert fork_statuses == [200, 409, 409, 409, 409]
    assert all(body["error"]["code"] == "fork" for status, body in answers[:5] if status == 409)
    winner = next(
        rival for rival, (status, _) in zip(rivals, answers[:5], strict=True) if status == 200
    )
    repeat_statuses = [body["results"][0]["status"] for _, body in answers[5:]]
    assert sorted(repeat_statuses) == ["duplicate"] * 4 + ["stored"]

    entries = await api.fetch_all(devices[0])
    ids = [entry.id for entry in entries]
    assert len(ids) == len(set(ids)), "an entry was stored twice"
    feeds = assert_clean_feeds(entries)
    for device in devices:
        stored = {entry.id for entry in feeds[device.public]}
        assert acknowledged[device.public] <= stored, "an acknowledged entry is missing"
    assert feeds[forked.public][-1].id == winner.id
    assert feeds[repeated.public][-1].id == same.id
    total = 1 + (WRITERS - 1) + WRITERS * 4 + 2
    assert len(entries) == total


async def test_sigkill_mid_stream_loses_no_acknowledged_entry(
    http: aiohttp.ClientSession, relay: Any
) -> None:
    api = RelayAPI(http, relay.url)
    devices = await space_with_devices(api, 6)
    acknowledged: set[bytes] = set()
    sent: dict[bytes, list[Entry]] = defaultdict(list)
    stop = asyncio.Event()

    async def stream(device: Device) -> None:
        while not stop.is_set():
            entry = device.data(b"x" * 300)
            sent[device.public].append(entry)
            try:
                status, _body = await api.append(device, entry)
            except (aiohttp.ClientError, ConnectionError):
                return
            if status != 200:
                return
            acknowledged.add(entry.id)

    streams = [asyncio.create_task(stream(device)) for device in devices]
    while len(acknowledged) < 60:
        await asyncio.sleep(0.01)
    await asyncio.get_running_loop().run_in_executor(None, relay.kill)
    stop.set()
    await asyncio.gather(*streams)
    assert len(acknowledged) >= 60

    await asyncio.get_running_loop().run_in_executor(None, relay.start)
    await api.login(devices[0])
    stored = await api.fetch_all(devices[0])
    stored_ids = {entry.id for entry in stored}
    assert acknowledged <= stored_ids
    assert_clean_feeds(stored)
    # The clients re-send what was never acknowledged: it lands once, in order.
    for device in devices:
        await api.login(device)
        pending = [entry for entry in sent[device.public] if entry.id not in acknowledged]
        if pending:
            status, body = await api.append(device, *pending)
            assert status == 200, body
    final = await api.fetch_all(devices[0])
    assert_clean_feeds(final)
    for device in devices:
        data = [e.id for e in final if e.device == device.public and e.type.value == "data"]
        assert data == [entry.id for entry in sent[device.public]]


@pytest.mark.postgres
async def test_two_relay_processes_fan_out(
    http: aiohttp.ClientSession, tmp_path: Path, start_relay: Any
) -> None:
    url, cleanup = make_database("postgres", tmp_path)
    try:
        first = start_relay(url)
        second = start_relay(url)
        api_first = RelayAPI(http, first.url)
        api_second = RelayAPI(http, second.url)
        alice = await api_first.founded(Device(space=new_space()))
        bob = Device(space=alice.space)
        status, body = await api_first.append(alice, alice.add_member(bob))
        assert status == 200, body
        # Bob signs in and listens on the other process.
        await api_second.login(bob)
        ws = await http.ws_connect(
            second.ws_url(b64(bob.space)), headers={"Authorization": f"Bearer {bob.token}"}
        )
        ready = await ws.receive_json(timeout=10)
        assert ready["type"] == "ready"
        entry = alice.data(b"across processes")
        assert (await api_first.append(alice, entry))[0] == 200
        push = await ws.receive_json(timeout=10)
        assert push["type"] == "entries"
        assert [unb64(item) for item in push["entries"]] == [entry.to_bytes()]
        # The token works on both processes; appends through the second reach the first.
        alice_ws = await http.ws_connect(
            first.ws_url(b64(alice.space)), headers={"Authorization": f"Bearer {alice.token}"}
        )
        assert (await alice_ws.receive_json(timeout=10))["type"] == "ready"
        reply_entry = bob.data(b"reply")
        await ws.send_json({"type": "append", "id": 1, "entries": [b64(reply_entry.to_bytes())]})
        assert (await ws.receive_json(timeout=10))["type"] == "appended"
        push = await alice_ws.receive_json(timeout=10)
        assert [unb64(item) for item in push["entries"]] == [reply_entry.to_bytes()]
        # A removal through one process closes the socket on the other.
        assert (await api_first.append(alice, alice.remove_member(bob)))[0] == 200
        error = await ws.receive_json(timeout=10)
        assert error["error"]["code"] == "device_removed"
        assert (await ws.receive(timeout=10)).data == 4403
        await alice_ws.close()
        first.stop()
        second.stop()
    finally:
        cleanup()


@pytest.mark.postgres
async def test_fan_out_survives_a_lost_listen_connection(
    http: aiohttp.ClientSession, tmp_path: Path, start_relay: Any
) -> None:
    url, cleanup = make_database("postgres", tmp_path)
    try:
        relay = start_relay(url)
        api = RelayAPI(http, relay.url)
        alice = await api.founded(Device(space=new_space()))
        bob = Device(space=alice.space)
        assert (await api.append(alice, alice.add_member(bob)))[0] == 200
        await api.login(bob)
        ws = await http.ws_connect(
            relay.ws_url(b64(bob.space)), headers={"Authorization": f"Bearer {bob.token}"}
        )
        assert (await ws.receive_json(timeout=10))["type"] == "ready"
        # Cut the relay's LISTEN connection from the database side, then append at once:
        # the entry lands while nobody listens.
        database = url.rsplit("/", 1)[1]

        async def terminate_listener() -> int:
            connection = await asyncpg.connect(PG_ADMIN_DSN)
            try:
                return len(
                    await connection.fetch(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = $1 AND query ILIKE 'LISTEN%'",
                        database,
                    )
                )
            finally:
                await connection.close()

        assert await terminate_listener() == 1
        entry = alice.data(b"while the listener was down")
        assert (await api.append(alice, entry))[0] == 200
        push = await ws.receive_json(timeout=20)
        assert push["type"] == "entries"
        assert [unb64(item) for item in push["entries"]] == [entry.to_bytes()]
        assert "fan-out listener reconnected" in relay.logs()
        await ws.close()
    finally:
        cleanup()
