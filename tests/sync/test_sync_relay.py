"""The sync engine against a real relay on loopback, on SQLite and on PostgreSQL.

Two partners join one space the way pairing leaves them (roster entry and key
envelopes through the relay), edit offline, sync in both orders, and converge.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from client_lib.account import Account
from client_lib.keystore import FAST_FOR_TESTS, SpaceKind
from client_lib.sync import SyncEngine, SyncReport, set_relay_url
from protocol.roster import AddMember, join_proof


def _account(base: Path, name: str) -> Account:
    return Account.create(
        name, display_name=name.capitalize(), no_passphrase=True, base=base, limits=FAST_FOR_TESTS
    )


async def _pair(base: Path, relay_url: str) -> tuple[Account, Account, bytes]:
    alex = _account(base, "alex")
    handle = alex.create_space("us")
    space = handle.space
    set_relay_url(handle.replica, relay_url)
    async with SyncEngine(handle.replica, device_key=alex.keystore.device_key) as engine:
        await engine.sync()
    sam = _account(base, "sam")
    key = sam.keystore.device_key
    proof = join_proof(key, space=space, member=sam.member_id, by=alex.device)
    handle.replica.append_roster(AddMember(member=sam.member_id, device=key.public, proof=proof))
    async with SyncEngine(handle.replica, device_key=alex.keystore.device_key) as engine:
        await engine.sync()
        # Pairing hands these over in its welcome; here they travel through the relay.
        await engine.client.put_envelopes(handle.replica.envelopes_for(key.public))
    replica = sam.adopt_space(space, kind=SpaceKind.SHARED, label="us")
    set_relay_url(replica, relay_url)
    async with SyncEngine(replica, device_key=key) as engine:
        report = await engine.sync()
        assert report.problems == []
        assert report.envelopes_received >= 1
    return alex, sam, space


def _views(account: Account, space: bytes) -> list[tuple[object, ...]]:
    return [
        (view.item, view.status, view.level, tuple(h.id for h in view.heads))
        for view in account.space(space).agreements.items()
    ]


async def _sync(account: Account, space: bytes) -> None:
    replica = account.replica(space)
    async with SyncEngine(replica, device_key=account.keystore.device_key) as engine:
        report = await engine.sync()
        assert report.problems == [], report.problems


async def test_offline_edits_converge_through_the_relay(tmp_path: Path, shared_relay) -> None:
    alex, sam, space = await _pair(tmp_path, shared_relay.url)
    a = alex.space(space).agreements
    a.set_my_name("Alex")
    item = a.create_item(kind="permission", level="ask", title="Kissing").item
    await _sync(alex, space)
    await _sync(sam, space)
    s = sam.space(space).agreements
    s.affirm(s.item(item).heads[0].id)
    await _sync(sam, space)
    await _sync(alex, space)
    assert a.item(item).agreed

    # Offline, at the same time: Alex widens to yes, Sam narrows to no.
    a.change_item(item, level="yes")
    s.change_item(item, level="no")
    await _sync(sam, space)
    await _sync(alex, space)
    await _sync(sam, space)
    assert _views(alex, space) == _views(sam, space)
    view = a.item(item)
    assert view.level.value == "no" and not view.agreed and view.concurrent

    # The relay's database holds no plaintext title.
    if shared_relay.database_url.startswith("sqlite"):
        path = shared_relay.database_url.split("///", 1)[1]
        raw = Path(path).read_bytes()
        for suffix in ("-wal",):
            extra = Path(path + suffix)
            if extra.exists():
                raw += extra.read_bytes()
        assert b"Kissing" not in raw
        sqlite3.connect(path).close()


async def test_live_sync_delivers_a_pause(tmp_path: Path, shared_relay) -> None:
    alex, sam, space = await _pair(tmp_path, shared_relay.url)
    stop = asyncio.Event()
    sam_engine = SyncEngine(sam.replica(space), device_key=sam.keystore.device_key)
    runner = asyncio.create_task(sam_engine.run(stop))
    try:
        for _ in range(100):
            if sam_engine.connected:
                break
            await asyncio.sleep(0.05)
        assert sam_engine.connected
        alex.space(space).agreements.pause()
        await _sync(alex, space)
        for _ in range(100):
            if sam.space(space).agreements.pause_state().active:
                break
            await asyncio.sleep(0.05)
        assert sam.space(space).agreements.pause_state().paused_by == (alex.member_id,)
    finally:
        stop.set()
        await asyncio.wait_for(runner, 10)
        await sam_engine.close()


class _RaceWindow(SyncEngine):
    """A live engine whose partner writes just after each one-shot sync, before the
    WebSocket subscribes: the window in which a push cannot reach this device."""

    def __init__(self, *args: object, partner: Account, space: bytes, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.partner = partner
        self.space_id = space
        self.wrote = False

    async def sync(self) -> SyncReport:
        report = await super().sync()
        if not self.wrote:
            self.wrote = True
            self.partner.space(self.space_id).agreements.pause()
            await _sync(self.partner, self.space_id)
        return report


async def test_live_sync_catches_up_on_what_landed_before_it_subscribed(
    tmp_path: Path, shared_relay
) -> None:
    alex, sam, space = await _pair(tmp_path, shared_relay.url)
    stop = asyncio.Event()
    engine = _RaceWindow(
        sam.replica(space), device_key=sam.keystore.device_key, partner=alex, space=space
    )
    runner = asyncio.create_task(engine.run(stop))
    try:
        for _ in range(100):
            if sam.space(space).agreements.pause_state().active:
                break
            await asyncio.sleep(0.05)
        # Alex writes nothing more, so no later push would reveal the gap.
        assert engine.wrote
        assert sam.space(space).agreements.pause_state().paused_by == (alex.member_id,)
    finally:
        stop.set()
        await asyncio.wait_for(runner, 10)
        await engine.close()


async def test_outbox_survives_an_unreachable_relay(tmp_path: Path, shared_relay) -> None:
    alex, sam, space = await _pair(tmp_path, shared_relay.url)
    replica = alex.replica(space)
    alex.space(space).agreements.create_item(kind="limit", level="no", title="Choking")
    pending = len(replica.pending_outbox())
    assert pending >= 1
    from client_lib.relay_client import RelayUnreachable

    async with SyncEngine(
        replica, device_key=alex.keystore.device_key, relay_url="http://127.0.0.1:9"
    ) as engine:
        try:
            await engine.sync()
        except RelayUnreachable:
            pass
        else:
            raise AssertionError("a closed port must be unreachable")
    assert len(replica.pending_outbox()) == pending
    await _sync(alex, space)
    assert replica.pending_outbox() == []
    await _sync(sam, space)
    titles = [view.title for view in sam.space(space).agreements.items()]
    assert "Choking" in titles


async def test_a_refused_push_still_pulls(tmp_path: Path, shared_relay) -> None:
    """A device restored from an old copy writes again at a seq the relay already holds:
    the relay refuses that entry (fork), but the device still receives everything else,
    and the fork is reported instead of merged."""
    import shutil

    alex, sam, space = await _pair(tmp_path, shared_relay.url)
    alex.close()
    saved = tmp_path / "alex-saved"
    shutil.copytree(tmp_path / "profiles" / "alex", saved)
    alex = Account.open("alex", base=tmp_path)
    alex.space(space).agreements.create_item(kind="limit", level="no", title="First")
    await _sync(alex, space)
    alex.close()
    shutil.rmtree(tmp_path / "profiles" / "alex")
    shutil.copytree(saved, tmp_path / "profiles" / "alex")
    restored = Account.open("alex", base=tmp_path)
    restored.space(space).agreements.create_item(kind="limit", level="no", title="Second")
    sam.space(space).agreements.create_item(kind="permission", level="ask", title="From Sam")
    await _sync(sam, space)
    replica = restored.replica(space)
    async with SyncEngine(replica, device_key=restored.keystore.device_key) as engine:
        report = await engine.sync()
    assert report.push_refused is not None and report.push_refused.code == "fork"
    assert report.received >= 1
    titles = {view.title for view in restored.space(space).agreements.items()}
    assert "From Sam" in titles
    assert any(problem.code.value == "fork" for problem in report.problems)
    assert len(replica.pending_outbox()) == 1  # kept, never dropped
    restored.close()
