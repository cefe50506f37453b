"""Two partners, two devices each: offline edits, random delivery, the rule holds."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from client_lib.events import Accepted, Duplicate
from protocol.agreement import Level, Status
from tests.client.client_helpers import (
    FakeClock,
    Network,
    add_device,
    add_member,
    found,
    problems_of,
    states,
)


def _household(tmp_path: Path) -> tuple[Network, list, FakeClock]:
    clock = FakeClock()
    network, a1 = found(tmp_path, "alex-1", clock)
    b1 = add_member(network, a1, tmp_path, "sam-1", clock)
    a2 = add_device(network, a1, tmp_path, "alex-2", clock)
    b2 = add_device(network, b1, tmp_path, "sam-2", clock)
    assert not problems_of(network.sync_all())
    return network, [a1, a2, b1, b2], clock


def test_household_sees_one_roster(tmp_path: Path) -> None:
    _network, devices, _ = _household(tmp_path)
    a1, a2, b1, b2 = devices
    for device in devices:
        roster = device.replica.roster
        assert roster.members == {a1.account.member_id, b1.account.member_id}
        assert roster.devices_of(a1.account.member_id) == tuple(
            sorted([a1.account.device, a2.account.device])
        )
        assert device.handle.agreements.names()[b2.account.member_id] == "Sam"


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_concurrent_yes_and_no_and_a_stale_affirmation(tmp_path: Path, seed: int) -> None:
    network, devices, _ = _household(tmp_path)
    a1, a2, b1, b2 = devices
    # Both agree to "yes" on one item.
    created = a1.handle.agreements.create_item(kind="permission", level="yes", title="Kissing")
    v1 = created.heads[0].id
    network.sync_all()
    b1.handle.agreements.affirm(v1)
    network.sync_all()
    assert {s[0][1] for s in states(devices)} == {Status.AGREED}

    # Offline: Alex (on device 2) narrows to "no"; Sam (device 1) writes a concurrent
    # "yes" version; Sam's other device re-affirms the old v1 (stale).
    a2.handle.agreements.change_item(created.item, level="no", details="not for now")
    b1.handle.agreements.change_item(created.item, level="yes", details="gently")
    b2.handle.agreements.affirm(v1)
    a1.handle.agreements.create_item(kind="limit", level="no", title="No photos")

    # Before any sync, the "no" is in force on Alex's device 2 at once.
    [mine] = [i for i in a2.handle.agreements.items() if i.item == created.item]
    assert mine.level is Level.NO and mine.status is Status.PENDING

    # Deliver everything in a random order, with duplicates and in small batches.
    rng = random.Random(seed)
    new = network.collect()
    assert len(new) == 4
    for device in devices:
        pool = list(network.log) + rng.sample(network.log, k=5)
        rng.shuffle(pool)
        while pool:
            size = rng.randint(1, 4)
            batch, pool = pool[:size], pool[size:]
            device.replica.ingest_many(batch)
        again = device.replica.ingest_many(network.log[-4:])
        assert all(isinstance(e, Duplicate) for e in again)

    views = states(devices)
    assert all(view == views[0] for view in views)
    for device in devices:
        item = device.handle.agreements.item(created.item)
        assert item.level is Level.NO  # a concurrent "yes" never beats a "no"
        assert item.status is Status.PENDING
        assert len(item.heads) == 2 and item.concurrent
        # Each head waits for the other member; the stale v1 affirmation counts for nothing.
        for head in item.heads:
            author = head.author
            other = ({a1.account.member_id, b1.account.member_id} - {author}).pop()
            assert item.waiting_for[head.id] == (other,)

    # Alex brings the two heads together at "no"; it waits for Sam's own time.
    merged = a1.handle.agreements.change_item(created.item, level="no")
    assert merged.heads[0].parents == tuple(sorted(h.id for h in item.heads))
    network.sync_all(rng)
    view = b2.handle.agreements.item(created.item)
    assert view.status is Status.PENDING and view.level is Level.NO
    assert "Waiting for Sam's re-affirmation" in a1.handle.agreements.item(created.item).summary
    b2.handle.agreements.affirm(view.heads[0].id)
    network.sync_all(rng)
    for device in devices:
        final = device.handle.agreements.item(created.item)
        assert final.status is Status.AGREED and final.level is Level.NO
    views = states(devices)
    assert all(view == views[0] for view in views)


def test_widening_waits_for_everyone(tmp_path: Path) -> None:
    network, devices, _ = _household(tmp_path)
    a1, a2, b1, b2 = devices
    item = a1.handle.agreements.create_item(kind="preference", level="ask", title="Massage")
    network.sync_all()
    b2.handle.agreements.affirm(item.heads[0].id)
    network.sync_all()
    wider = a2.handle.agreements.change_item(item.item, level="yes")
    network.sync_all()
    assert b1.handle.agreements.item(item.item).level is Level.ASK
    b1.handle.agreements.affirm(wider.heads[0].id)
    network.sync_all()
    for device in devices:
        final = device.handle.agreements.item(item.item)
        assert (final.status, final.level) == (Status.AGREED, Level.YES)


def test_pause_is_no_at_once_and_only_the_pauser_resumes(tmp_path: Path) -> None:
    network, devices, _ = _household(tmp_path)
    a1, _a2, b1, b2 = devices
    item = a1.handle.agreements.create_item(kind="permission", level="yes", title="Cuddling")
    network.sync_all()
    b1.handle.agreements.affirm(item.heads[0].id)
    network.sync_all()
    state = b2.handle.agreements.pause()  # no reason asked, none possible
    assert state.active
    assert b2.handle.agreements.item(item.item).level is Level.NO
    network.sync_all()
    for device in devices:
        assert device.handle.agreements.item(item.item).level is Level.NO
        assert device.handle.agreements.pause_state().paused_by == (b1.account.member_id,)
    from client_lib.errors import NotAllowedError

    with pytest.raises(NotAllowedError):
        a1.handle.agreements.resume()
    b1.handle.agreements.resume()  # the other device of the same member lifts it
    network.sync_all()
    for device in devices:
        assert not device.handle.agreements.pause_state().active
        assert device.handle.agreements.item(item.item).level is Level.YES


def test_concurrent_pause_on_another_device_stays(tmp_path: Path) -> None:
    network, devices, _ = _household(tmp_path)
    _a1, _a2, b1, b2 = devices
    b1.handle.agreements.pause()
    network.sync_all()
    b2.handle.agreements.pause()  # concurrent with the resume below
    b1.handle.agreements.resume()
    network.sync_all()
    for device in devices:
        assert device.handle.agreements.pause_state().paused_by == (b1.account.member_id,)


def test_gap_waits_then_fills(tmp_path: Path) -> None:
    network, devices, _ = _household(tmp_path)
    a1, _a2, b1, _b2 = devices
    for n in range(5):
        a1.handle.agreements.create_item(kind="limit", level="no", title=f"Limit {n}")
    new = network.collect()
    events = []
    for raw in reversed(new):
        events.extend(b1.replica.ingest(raw))
    accepted = [e for e in events if isinstance(e, Accepted)]
    assert len(accepted) == 5
    assert len(b1.handle.agreements.items()) == 5
    assert b1.replica.status().waiting == 0


def test_history_and_timeline(tmp_path: Path) -> None:
    network, devices, _clock = _household(tmp_path)
    a1, a2, b1, b2 = devices
    item = a1.handle.agreements.create_item(kind="signal", level="yes", title="Red means stop")
    network.sync_all()
    b1.handle.agreements.affirm(item.heads[0].id)
    a2.handle.agreements.change_item(item.item, title="Red or 'pineapple' means stop")
    network.sync_all()
    history = b2.handle.agreements.history(item.item)
    assert [v.title for v in history] == ["Red means stop", "Red or 'pineapple' means stop"]
    kinds = [event.kind for event in b2.handle.agreements.timeline()]
    assert kinds.count("version") == 2 and kinds.count("affirmation") == 1
    times = [event.at for event in b2.handle.agreements.timeline()]
    assert times == sorted(times)
