"""Random edits on four devices, delivered in random partial orders with duplicates.

Each seed runs a random schedule of offline edits (items, changes, fresh and stale
affirmations, pauses, plan wording) and random partial deliveries. At the end every
device holds every entry, and all of them must show the same thing.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from client_lib.errors import NotAllowedError
from protocol.agreement import Level
from tests.client.client_helpers import (
    Device,
    FakeClock,
    add_device,
    add_member,
    found,
    problems_of,
    states,
)

LEVELS = ["no", "ask", "yes"]


def _random_step(rng: random.Random, devices: list[Device], network_log: list[bytes]) -> None:
    device = rng.choice(devices)
    agreements = device.handle.agreements
    items = agreements.items()
    roll = rng.random()
    if roll < 0.2 or not items:
        agreements.create_item(
            kind="limit", level=rng.choice(LEVELS), title=f"item {rng.randrange(10**6)}"
        )
    elif roll < 0.45:
        agreements.change_item(rng.choice(items).item, level=rng.choice(LEVELS))
    elif roll < 0.7:
        item = rng.choice(items)
        history = agreements.history(item.item)
        agreements.affirm(rng.choice(history).id)  # sometimes stale on purpose
    elif roll < 0.8:
        agreements.pause()
    elif roll < 0.88:
        try:
            agreements.resume()
        except NotAllowedError:
            pass
    else:
        text = device.handle.plan.wording()
        cut = rng.randrange(len(text) + 1)
        device.handle.plan.set_wording(text[:cut] + f"[{device.name}]" + text[cut:])


@pytest.mark.parametrize("seed", [11, 12, 13, 14])
def test_random_schedule_converges(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    clock = FakeClock()
    network, a1 = found(tmp_path, "alex-1", clock)
    b1 = add_member(network, a1, tmp_path, "sam-1", clock)
    a2 = add_device(network, a1, tmp_path, "alex-2", clock)
    b2 = add_device(network, b1, tmp_path, "sam-2", clock)
    devices = [a1, a2, b1, b2]
    network.sync_all()
    for _ in range(40):
        _random_step(rng, devices, network.log)
        if rng.random() < 0.3:  # a partial delivery to one device
            network.collect()
            target = rng.choice(devices)
            batch = rng.sample(network.log, k=rng.randint(1, len(network.log)))
            batch += rng.sample(batch, k=min(3, len(batch)))
            rng.shuffle(batch)
            assert not problems_of(target.replica.ingest_many(batch))
    events = network.sync_all(rng)
    assert not problems_of(events)
    views = states(devices)
    assert all(view == views[0] for view in views)
    wordings = {device.handle.plan.wording() for device in devices}
    assert len(wordings) == 1
    pauses = {device.handle.agreements.pause_state().paused_by for device in devices}
    assert len(pauses) == 1
    for device in devices:
        for item in device.handle.agreements.items():
            # Restriction always wins: any head or stance at "no" means "no" in force.
            if any(h.level is Level.NO for h in item.heads) or Level.NO in item.stances.values():
                assert item.level is Level.NO
            if pauses != {()}:
                assert item.level is Level.NO
        assert device.replica.status().waiting == 0
