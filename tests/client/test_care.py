"""Check-ins, the repair log, the crisis plan, notes and the private journal."""

from __future__ import annotations

from pathlib import Path

import pytest

from client_lib.errors import NotAllowedError
from client_lib.records import PlanSection, RepairStepKind
from tests.client.client_helpers import Device, FakeClock, Network, add_device, add_member, found


def _pair(tmp_path: Path) -> tuple[Network, Device, Device, FakeClock]:
    clock = FakeClock()
    network, alex = found(tmp_path, "alex", clock)
    sam = add_member(network, alex, tmp_path, "sam", clock)
    network.sync_all()
    return network, alex, sam, clock


def test_checkin_answers_are_private_unless_shared(tmp_path: Path) -> None:
    network, alex, sam, _ = _pair(tmp_path)
    alex.handle.checkins.set_schedule(every_days=7, time="19:30", note="Sunday evening")
    network.sync_all()
    assert sam.handle.checkins.schedule().every_days == 7  # type: ignore[union-attr]
    private = sam.handle.checkins.record(safety=2, triggering="loud voices", would_help="space")
    shared = sam.handle.checkins.record(safety=4, feels_safe="walks", share=True)
    network.sync_all()
    assert [c.id for c in alex.handle.checkins.shared()] == [shared.id]
    assert [(v.id, v.shared) for v in sam.handle.checkins.mine()] == [
        (private.id, False),
        (shared.id, True),
    ]
    # The private answer never left Sam's private space: not one relay-bound entry has it.
    for raw in network.log:
        assert b"loud voices" not in raw
    sam.handle.checkins.share(private.id)
    network.sync_all()
    assert {c.id for c in alex.handle.checkins.shared()} == {private.id, shared.id}
    kinds = [e.kind for e in alex.handle.agreements.timeline()]
    assert kinds.count("check-in") == 2
    # Sam's own timeline also shows Sam's private answers; Alex's never does.
    late = sam.handle.checkins.record(safety=3)
    assert [e.safety for e in sam.handle.timeline() if e.kind == "check-in"][-1] == late.safety
    assert len([e for e in alex.handle.timeline() if e.kind == "check-in"]) == 2


def test_private_space_reaches_the_members_other_device_only(tmp_path: Path) -> None:
    network, alex, sam, clock = _pair(tmp_path)
    alex2 = add_device(network, alex, tmp_path, "alex-2", clock)
    entry = alex.account.journal().write("a hard day, and a good talk")
    private = alex.account.private_replica()
    assert private is not None and private.members() == {alex.account.member_id}
    mine = alex2.account.private_replica()
    assert mine is not None
    mine.ingest_many(private.feed_entries(alex.account.device))
    assert [e.id for e in alex2.account.journal().entries()] == [entry.id]
    assert sam.account.private_replica() is not None
    assert sam.account.private_replica().space != private.space  # type: ignore[union-attr]


def test_repair_log_steps_and_only_the_harmed_closes(tmp_path: Path) -> None:
    network, alex, sam, _ = _pair(tmp_path)
    repair = sam.handle.repairs.name_crossing("Kept going after I said slow down")
    network.sync_all()
    alex.handle.repairs.add_step(repair, RepairStepKind.ACKNOWLEDGEMENT, "I did not stop.")
    alex.handle.repairs.add_step(repair, "apology", "I am sorry.")
    alex.handle.repairs.add_step(repair, "corrective-action", "I stop at the first 'slow'.")
    sam.handle.repairs.add_step(repair, "prevention-plan", "We check in halfway.")
    network.sync_all()
    with pytest.raises(NotAllowedError):
        alex.handle.repairs.close(repair)
    view = sam.handle.repairs.entry(repair)
    assert view.harmed == sam.account.member_id and not view.closed
    assert [s.member for s in view.steps_of(RepairStepKind.APOLOGY)] == [alex.account.member_id]
    sam.handle.repairs.close(repair, "Thank you.")
    network.sync_all()
    assert alex.handle.repairs.entry(repair).closed
    with pytest.raises(NotAllowedError):
        alex.handle.repairs.add_step(repair, "apology", "again")


def test_crisis_plan_steps_need_a_fresh_opt_in_from_each_person(tmp_path: Path) -> None:
    network, alex, sam, clock = _pair(tmp_path)
    alex.handle.plan.set_wording("If either of us says 'red', we stop.")
    step = alex.handle.plan.add_step(PlanSection.COOLING_OFF, "Separate rooms", minutes=30)
    network.sync_all()
    sam.handle.plan.set_wording("If either of us says 'red', we stop and breathe.")
    alex.handle.plan.opt_in(step)
    sam.handle.plan.opt_in(step)
    network.sync_all()
    assert alex.handle.plan.wording() == sam.handle.plan.wording()
    assert sam.handle.plan.step(step).active
    # Any change to the step makes every opt-in stale.
    sam.handle.plan.edit_step(step, minutes=45)
    network.sync_all()
    view = alex.handle.plan.step(step)
    assert not view.active and set(view.waiting_for) == {
        alex.account.member_id,
        sam.account.member_id,
    }
    alex.handle.plan.opt_in(step)
    sam.handle.plan.opt_in(step, expires_at=clock.now + 1000)
    network.sync_all()
    assert alex.handle.plan.step(step).active
    clock.advance(5000)  # Sam's opt-in was for a while only
    assert not alex.handle.plan.step(step).active


def test_notes(tmp_path: Path) -> None:
    network, alex, sam, _ = _pair(tmp_path)
    note = alex.handle.notes.write("Try the new park")
    network.sync_all()
    sam.handle.notes.write("Try the new park on Sunday", note=note)
    network.sync_all()
    assert alex.handle.notes.all() == {note: "Try the new park on Sunday"}
