"""Real partners on a real relay: accounts, spaces and devices joined through the relay.

A :class:`Person` is one device of one member: a real :class:`~client_lib.account.Account`
on a temporary profile, holding one shared space. Joining works the way pairing leaves
things: the inviting device writes the roster record (``add_member`` with the joiner's
signed join proof, or ``add_device`` for a second device of the same member), pushes it,
and puts the key envelopes for the joiner on the relay; the joiner then syncs.

Nothing here is mocked: entries are sealed by the client library, pushed through HTTP,
and verified by every replica. Tests point a person at another relay address (a fault
proxy, a tampering proxy) with :meth:`Person.use_relay`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from client_lib.account import Account, SpaceHandle
from client_lib.agreements import Agreements
from client_lib.keystore import FAST_FOR_TESTS, SpaceKind
from client_lib.relay_client import RelayClient
from client_lib.replica import Replica
from client_lib.sync import SyncEngine, SyncReport, set_relay_url
from protocol.crypto import DeviceKey
from protocol.roster import AddDevice, AddMember, join_proof


@dataclass
class Person:
    """One device of one member, in one shared space."""

    name: str
    account: Account
    space: bytes

    @property
    def handle(self) -> SpaceHandle:
        return self.account.space(self.space)

    @property
    def replica(self) -> Replica:
        return self.account.replica(self.space)

    @property
    def agreements(self) -> Agreements:
        return self.handle.agreements

    @property
    def device(self) -> bytes:
        return self.account.device

    @property
    def key(self) -> DeviceKey:
        return self.account.keystore.device_key

    @property
    def member(self) -> bytes:
        return self.account.member_id

    def use_relay(self, url: str) -> None:
        """Sync with ``url`` from now on (a proxy in front of the relay, say)."""
        set_relay_url(self.replica, url)

    def engine(self, *, session: aiohttp.ClientSession | None = None) -> SyncEngine:
        return SyncEngine(self.replica, device_key=self.key, session=session)

    async def sync(self) -> SyncReport:
        """One push, pull and check with this person's relay."""
        async with self.engine() as engine:
            return await engine.sync()


def new_account(base: Path, name: str, *, member_id: bytes | None = None) -> Account:
    return Account.create(
        name,
        display_name=name.split("-")[0].capitalize(),
        no_passphrase=True,
        base=base,
        limits=FAST_FOR_TESTS,
        member_id=member_id,
        found_private_space=False,
    )


async def found_space(base: Path, relay_url: str, name: str) -> Person:
    """A member founds a shared space and registers it on the relay."""
    account = new_account(base, name)
    handle = account.create_space("us")
    person = Person(name=name, account=account, space=handle.space)
    person.use_relay(relay_url)
    report = await person.sync()
    assert report.problems == [], report.problems
    return person


async def _join(inviter: Person, joiner_account: Account, name: str, *, new_member: bool) -> Person:
    space = inviter.space
    key = joiner_account.keystore.device_key
    member = joiner_account.member_id
    proof = join_proof(key, space=space, member=member, by=inviter.device)
    record = (
        AddMember(member=member, device=key.public, proof=proof)
        if new_member
        else AddDevice(member=member, device=key.public, proof=proof)
    )
    inviter.replica.append_roster(record)
    async with inviter.engine() as engine:
        await engine.sync()
        # Pairing hands these over in its welcome; here they travel through the relay.
        await engine.client.put_envelopes(inviter.replica.envelopes_for(key.public))
    joiner_account.adopt_space(space, kind=SpaceKind.SHARED, label="us")
    joiner = Person(name=name, account=joiner_account, space=space)
    from client_lib.sync import relay_url_of

    url = relay_url_of(inviter.replica)
    assert url is not None
    joiner.use_relay(url)
    report = await joiner.sync()
    assert report.problems == [], report.problems
    assert report.envelopes_received >= 1
    return joiner


async def join_member(inviter: Person, base: Path, name: str) -> Person:
    """Partner pairing: a new member joins with its first device."""
    person = await _join(inviter, new_account(base, name), name, new_member=True)
    person.agreements.set_my_name(name.capitalize())
    return person


async def join_device(existing: Person, base: Path, name: str) -> Person:
    """Self pairing: another device of ``existing``'s member joins."""
    account = new_account(base, name, member_id=existing.member)
    return await _join(existing, account, name, new_member=False)


async def couple(base: Path, relay_url: str) -> tuple[Person, Person]:
    """Alex founds a space and Sam joins it as the second member; both have synced."""
    alex = await found_space(base, relay_url, "alex")
    sam = await join_member(alex, base, "sam")
    await alex.sync()
    return alex, sam


# -- what to compare -----------------------------------------------------------------


def item_states(person: Person) -> list[tuple[Any, ...]]:
    """Every item as this device sees it: (item, status, level, heads, waiting-for)."""
    return [
        (
            view.item,
            view.status,
            view.level,
            tuple(head.id for head in view.heads),
            tuple(sorted(view.waiting_for.items())),
        )
        for view in person.agreements.items()
    ]


def titles(person: Person) -> set[str]:
    """The title of every version of every item this device holds."""
    found: set[str] = set()
    for view in person.agreements.items():
        found.update(version.title for version in person.agreements.history(view.item))
    return found


def full_state(person: Person) -> tuple[Any, ...]:
    """Items, pause, crisis plan wording and members, for comparing devices."""
    return (
        item_states(person),
        person.agreements.pause_state().paused_by,
        person.handle.plan.wording(),
        sorted(person.replica.members()),
    )


async def relay_heads(relay_url: str, person: Person) -> dict[bytes, int]:
    """The relay's head of every feed of ``person``'s space, asked directly."""
    async with RelayClient(relay_url, device_key=person.key, space=person.space) as client:
        heads = await client.heads()
    return {device: head.seq for device, head in heads.items()}


async def relay_entries(relay_url: str, person: Person) -> list[bytes]:
    """Every entry the relay stores in ``person``'s space, asked directly."""
    async with RelayClient(relay_url, device_key=person.key, space=person.space) as client:
        found: list[bytes] = []
        async for page in client.fetch_all({}):
            found.extend(page.entries)
    return found


def converged(people: Sequence[Person], heads: dict[bytes, int]) -> bool:
    """Every device holds exactly what the relay holds, with nothing left to push."""
    if any(person.replica.pending_outbox() for person in people):
        return False
    if any(person.replica.have_vector() != heads for person in people):
        return False
    first = full_state(people[0])
    return all(full_state(person) == first for person in people[1:])


async def sync_until_converged(
    people: Sequence[Person],
    relay_url: str,
    *,
    timeout: float = 30.0,
    syncing: Sequence[Person] | None = None,
) -> dict[bytes, int]:
    """Sync ``syncing`` (default: everyone) round after round until all of ``people``
    hold what the relay holds. Returns the relay's heads.

    Raises:
        AssertionError: not converged within ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    active = list(people if syncing is None else syncing)
    while True:
        for person in active:
            await person.sync()
        heads = await relay_heads(relay_url, people[0])
        if converged(people, heads):
            return heads
        if time.monotonic() > deadline:
            raise AssertionError(
                "devices did not converge: "
                + repr([(p.name, p.replica.have_vector(), heads) for p in people])
            )
        await asyncio.sleep(0.05)
