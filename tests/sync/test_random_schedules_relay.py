"""Random schedules through a real relay: a hypothesis state machine.

Three devices (Alex's two devices and Sam's) make random edits, go offline and come
back, sync in random orders, and receive random duplicate and out-of-order deliveries
straight from each other's stores. At the end every device syncs, and all must show the
same item states, with the rule's properties holding on each.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from client_lib.account import Account
from client_lib.keystore import FAST_FOR_TESTS, SpaceKind
from client_lib.sync import SyncEngine, set_relay_url
from protocol.agreement import Level
from protocol.entry import Entry
from protocol.roster import AddDevice, AddMember, join_proof

NAMES = ("alex", "alex-phone", "sam")


def _account(base: Path, name: str, member: bytes | None = None) -> Account:
    return Account.create(
        name,
        display_name=name.split("-")[0].capitalize(),
        no_passphrase=True,
        base=base,
        limits=FAST_FOR_TESTS,
        member_id=member,
        found_private_space=member is None,
    )


async def _sync(account: Account, space: bytes) -> None:
    async with SyncEngine(account.replica(space), device_key=account.keystore.device_key) as e:
        report = await e.sync()
    assert report.problems == [], report.problems


def _join(inviter: Account, joiner: Account, space: bytes, relay: str, *, new_member: bool) -> None:
    key = joiner.keystore.device_key
    proof = join_proof(key, space=space, member=joiner.member_id, by=inviter.device)
    record = (
        AddMember(member=joiner.member_id, device=key.public, proof=proof)
        if new_member
        else AddDevice(member=joiner.member_id, device=key.public, proof=proof)
    )
    inviter.replica(space).append_roster(record)
    asyncio.run(_sync(inviter, space))

    async def put_envelopes() -> None:
        async with SyncEngine(inviter.replica(space), device_key=inviter.keystore.device_key) as e:
            await e.client.put_envelopes(inviter.replica(space).envelopes_for(key.public))

    asyncio.run(put_envelopes())
    replica = joiner.adopt_space(space, kind=SpaceKind.SHARED, label="us")
    set_relay_url(replica, relay)
    asyncio.run(_sync(joiner, space))


class Schedules(RuleBasedStateMachine):
    relay_url = ""

    @initialize()
    def setup(self) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="accord-sched-"))
        alex = _account(self.base, "alex")
        handle = alex.create_space("us")
        self.space = handle.space
        set_relay_url(handle.replica, self.relay_url)
        asyncio.run(_sync(alex, self.space))
        phone = _account(self.base, "alex-phone", member=alex.member_id)
        sam = _account(self.base, "sam")
        _join(alex, phone, self.space, self.relay_url, new_member=False)
        _join(alex, sam, self.space, self.relay_url, new_member=True)
        sam.space(self.space).agreements.set_my_name("Sam")
        self.devices = {"alex": alex, "alex-phone": phone, "sam": sam}
        self.online = dict.fromkeys(NAMES, True)

    def teardown(self) -> None:
        for account in getattr(self, "devices", {}).values():
            account.close()
        if hasattr(self, "base"):
            shutil.rmtree(self.base, ignore_errors=True)

    def _agreements(self, name: str):  # type: ignore[no-untyped-def]
        return self.devices[name].space(self.space).agreements

    @rule(
        name=st.sampled_from(NAMES),
        level=st.sampled_from(["no", "ask", "yes"]),
        n=st.integers(0, 2),
    )
    def create(self, name: str, level: str, n: int) -> None:
        self._agreements(name).create_item(kind="preference", level=level, title=f"item {n}")

    @rule(
        name=st.sampled_from(NAMES),
        pick=st.integers(0, 10),
        level=st.sampled_from(["no", "ask", "yes"]),
    )
    def change(self, name: str, pick: int, level: str) -> None:
        items = self._agreements(name).items()
        if items:
            item = items[pick % len(items)]
            self._agreements(name).change_item(item.item, level=level)

    @rule(name=st.sampled_from(NAMES), pick=st.integers(0, 10))
    def affirm(self, name: str, pick: int) -> None:
        items = self._agreements(name).items()
        if items:
            item = items[pick % len(items)]
            head = item.heads[pick % len(item.heads)]
            self._agreements(name).affirm(head.id)

    @rule(name=st.sampled_from(NAMES), lift=st.booleans())
    def pause_or_resume(self, name: str, lift: bool) -> None:
        agreements = self._agreements(name)
        if lift and agreements.pause_state().mine:
            agreements.resume()
        elif not lift:
            agreements.pause()

    @rule(name=st.sampled_from(NAMES))
    def toggle_network(self, name: str) -> None:
        self.online[name] = not self.online[name]

    @rule(name=st.sampled_from(NAMES))
    def sync(self, name: str) -> None:
        if self.online[name]:
            asyncio.run(_sync(self.devices[name], self.space))

    @rule(source=st.sampled_from(NAMES), receiver=st.sampled_from(NAMES), reverse=st.booleans())
    def deliver_directly(self, source: str, receiver: str, reverse: bool) -> None:
        """Duplicate and out-of-order delivery of what the relay already holds.

        Only entries the relay has acknowledged are handed over: a device that holds an
        entry the relay never had would (rightly) call the relay's answer a rollback.
        """
        src = self.devices[source]
        replica = src.replica(self.space)
        unsent = {item.id for item in replica.pending_outbox()}
        raws = [
            raw
            for raw in replica.feed_entries(src.device)
            if Entry.from_bytes(raw).id not in unsent
        ]
        if reverse:
            raws = list(reversed(raws))
        events = self.devices[receiver].replica(self.space).ingest_many(raws + raws[:2])
        assert not [e for e in events if e.is_problem]

    @invariant()
    def rule_properties_hold_everywhere(self) -> None:
        if not hasattr(self, "devices"):
            return
        for name in NAMES:
            agreements = self._agreements(name)
            paused = agreements.pause_state().active
            for view in agreements.items():
                if paused:
                    assert view.level is Level.NO
                assert all(view.level <= head.level for head in view.heads)
                assert all(view.level <= stance for stance in view.stances.values())
                if view.agreed:
                    assert len(view.heads) == 1

    @precondition(lambda self: hasattr(self, "devices"))
    @rule()
    def everyone_converges(self) -> None:
        for name in NAMES:
            self.online[name] = True
        for _ in range(2):
            for name in NAMES:
                asyncio.run(_sync(self.devices[name], self.space))
        views = [
            [
                (v.item, v.status, v.level, tuple(h.id for h in v.heads))
                for v in self._agreements(n).items()
            ]
            for n in NAMES
        ]
        assert views[0] == views[1] == views[2]
        pauses = [self._agreements(n).pause_state().paused_by for n in NAMES]
        assert pauses[0] == pauses[1] == pauses[2]


@pytest.mark.parametrize("shared_relay", ["sqlite", "postgres"], indirect=True)
def test_random_schedules_through_the_relay(shared_relay) -> None:
    Schedules.relay_url = shared_relay.url
    runner = Schedules.TestCase
    runner.settings = settings(
        max_examples=4,
        stateful_step_count=14,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    runner().runTest()
