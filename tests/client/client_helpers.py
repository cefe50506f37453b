"""Real accounts on temporary profiles, joined by moving entry bytes between them.

No relay is needed: every entry a device writes is taken from its outbox (the bytes a
relay would carry) and given to the other devices, in whatever order a test chooses.
Members and devices are added with the real roster records and key envelopes that
pairing will write, signed by the real keys.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from client_lib.account import Account, SpaceHandle
from client_lib.events import ReplicaEvent
from client_lib.keystore import FAST_FOR_TESTS, SpaceKind
from client_lib.replica import Replica
from protocol.roster import AddDevice, AddMember, join_proof


class FakeClock:
    """A settable clock in milliseconds (shared by all devices of a test)."""

    def __init__(self, start: int = 1_700_000_000_000) -> None:
        self.now = start

    def __call__(self) -> int:
        self.now += 1
        return self.now

    def advance(self, ms: int) -> None:
        self.now += ms


@dataclass
class Device:
    """One device: an account and its handle on the shared space."""

    name: str
    account: Account
    space_id: bytes = b""

    @property
    def handle(self) -> SpaceHandle:
        return self.account.space(self.space_id)

    @property
    def replica(self) -> Replica:
        return self.account.replica(self.space_id)


@dataclass
class Network:
    """Every entry ever written in the space, as bytes (what a relay would hold)."""

    space: bytes
    devices: list[Device] = field(default_factory=list)
    log: list[bytes] = field(default_factory=list)

    def collect(self) -> list[bytes]:
        """Take the new entries from every device's outbox (and acknowledge them)."""
        new = []
        for device in self.devices:
            replica = device.replica
            pending = replica.pending_outbox()
            for item in pending:
                if item.raw not in self.log:
                    self.log.append(item.raw)
                    new.append(item.raw)
            replica.mark_acknowledged([item.id for item in pending])
        return new

    def sync_all(self, rng: random.Random | None = None) -> list[ReplicaEvent]:
        """Deliver everything to everyone, shuffled when ``rng`` is given."""
        self.collect()
        events: list[ReplicaEvent] = []
        for device in self.devices:
            entries = list(self.log)
            if rng is not None:
                rng.shuffle(entries)
            events.extend(device.replica.ingest_many(entries))
        return events


def new_account(
    base: Path, name: str, clock: FakeClock, *, member_id: bytes | None = None
) -> Account:
    return Account.create(
        name,
        display_name=name.split("-")[0].capitalize(),
        no_passphrase=True,
        base=base,
        clock=clock,
        member_id=member_id,
        found_private_space=member_id is None,
        limits=FAST_FOR_TESTS,
    )


def found(base: Path, name: str, clock: FakeClock) -> tuple[Network, Device]:
    account = new_account(base, name, clock)
    handle = account.create_space("us")
    device = Device(name=name, account=account, space_id=handle.space)
    return Network(space=handle.space, devices=[device]), device


def _join(network: Network, inviter: Device, joiner: Device, *, new_member: bool) -> None:
    space = network.space
    key = joiner.account.keystore.device_key
    member = joiner.account.member_id
    proof = join_proof(key, space=space, member=member, by=inviter.account.device)
    record = (
        AddMember(member=member, device=key.public, proof=proof)
        if new_member
        else AddDevice(member=member, device=key.public, proof=proof)
    )
    inviter.replica.append_roster(record)
    joiner.space_id = space
    replica = joiner.account.adopt_space(space, kind=SpaceKind.SHARED, label="us")
    network.devices.append(joiner)
    network.collect()
    replica.ingest_many(network.log)
    for envelope in inviter.replica.envelopes_for(key.public):
        replica.accept_key_envelope(envelope)


def add_member(
    network: Network, inviter: Device, base: Path, name: str, clock: FakeClock
) -> Device:
    """Partner pairing: a new member with a new device joins through ``inviter``."""
    joiner = Device(name=name, account=new_account(base, name, clock))
    _join(network, inviter, joiner, new_member=True)
    joiner.handle.agreements.set_my_name(joiner.account.display_name)
    return joiner


def add_device(
    network: Network, existing: Device, base: Path, name: str, clock: FakeClock
) -> Device:
    """Self pairing: another device of ``existing``'s member joins."""
    joiner = Device(
        name=name,
        account=new_account(base, name, clock, member_id=existing.account.member_id),
    )
    _join(network, existing, joiner, new_member=False)
    private = existing.account.private_replica()
    if private is not None:  # the new device joins its member's private space too
        key = joiner.account.keystore.device_key
        proof = join_proof(
            key, space=private.space, member=existing.account.member_id, by=existing.account.device
        )
        private.append_roster(
            AddDevice(member=existing.account.member_id, device=key.public, proof=proof)
        )
        mine = joiner.account.adopt_space(private.space, kind=SpaceKind.PRIVATE, label="private")
        mine.ingest_many(private.feed_entries(existing.account.device))
        for envelope in private.envelopes_for(key.public):
            mine.accept_key_envelope(envelope)
    return joiner


def states(devices: Sequence[Device]) -> list[list[tuple[object, ...]]]:
    """Each device's view of every item: (item, status, level, heads, waiting)."""
    views = []
    for device in devices:
        items = device.handle.agreements.items()
        views.append(
            [
                (
                    view.item,
                    view.status,
                    view.level,
                    tuple(head.id for head in view.heads),
                    tuple(sorted((h, w) for h, w in view.waiting_for.items())),
                )
                for view in items
            ]
        )
    return views


def problems_of(events: Iterable[ReplicaEvent]) -> list[ReplicaEvent]:
    return [event for event in events if event.is_problem]
