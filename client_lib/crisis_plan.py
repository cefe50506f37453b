"""The crisis plan: its shared wording, its steps, and each person's fresh opt-in.

Theory of operation:

* The plan's free wording is a collaborative text in the ``shared`` document, and its
  steps (de-escalation, a cooling-off period, the return to intimacy) are records in
  the ``shared`` document's ``plan_steps`` map. Every member may edit them.
* A step counts only with a fresh opt-in from each member: an opt-in record, in the
  member's own voice, names the step and the hash of the step's exact bytes. Any edit
  to a step changes its bytes, so every earlier opt-in becomes stale and the step
  waits again for everyone. An opt-in may also expire.
* A step is ``active`` when every current member has a live, fresh opt-in for it.
  Restriction wins: an edit by anyone takes a step out of force at once.

Shared notes (:class:`Notes`) live in the same document.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from client_lib.agreements import Clock, wall_clock_ms
from client_lib.errors import NoSuchRecordError
from client_lib.records import (
    PlanOptIn,
    PlanSection,
    PlanStep,
    check_step_key,
    record_hash,
)
from protocol.agreement import new_record_id
from protocol.errors import AccordError

if TYPE_CHECKING:
    from client_lib.replica import Replica

_SECTION_ORDER = {section: index for index, section in enumerate(PlanSection)}


@dataclass(frozen=True, slots=True, kw_only=True)
class PlanStepView:
    """One step of the plan and who has opted in to its current wording."""

    id: bytes
    section: PlanSection
    text: str
    minutes: int | None
    position: int
    opted_in: tuple[bytes, ...]
    waiting_for: tuple[bytes, ...]

    @property
    def active(self) -> bool:
        """True when every member has a fresh opt-in to this exact wording."""
        return not self.waiting_for


class CrisisPlan:
    """The crisis plan of one relationship space."""

    def __init__(self, replica: Replica, *, clock: Clock = wall_clock_ms) -> None:
        self._replica = replica
        self._clock = clock

    # -- wording -----------------------------------------------------------------------

    def wording(self) -> str:
        return self._replica.documents.shared.plan_text()

    def set_wording(self, text: str) -> None:
        """Replace the plan's free wording (a collaborative edit of what changed)."""
        with self._replica.change() as docs:
            docs.shared.set_plan_text(text)

    # -- steps -------------------------------------------------------------------------

    def _steps(self) -> dict[bytes, tuple[PlanStep, bytes]]:
        found: dict[bytes, tuple[PlanStep, bytes]] = {}
        for key, data in self._replica.documents.shared.plan_steps().items():
            try:
                step_id = check_step_key(key)
                step = PlanStep.from_bytes(data)
            except AccordError:
                continue  # unreadable steps are skipped, never guessed at
            if step.id == step_id:
                found[step_id] = (step, data)
        return found

    def add_step(
        self,
        section: PlanSection | str,
        text: str,
        *,
        minutes: int | None = None,
        position: int | None = None,
    ) -> bytes:
        """Add a step to a section; returns its id.

        Raises:
            ValueError: ``section`` is not a section name.
            MalformedError: empty or too long text, or ``minutes`` out of range.
        """
        section = PlanSection(section)
        if position is None:
            same = [s.position for s, _ in self._steps().values() if s.section is section]
            position = max(same, default=-1) + 1
        step = PlanStep(
            id=new_record_id(),
            section=section,
            text=text,
            position=position,
            by=self._replica.member_id,
            at=self._clock(),
            minutes=minutes,
        )
        with self._replica.change() as docs:
            docs.shared.put_plan_step(step.id.hex(), step.to_bytes())
        return step.id

    def edit_step(
        self,
        step: bytes,
        *,
        text: str | None = None,
        minutes: int | str | None = "",
        position: int | None = None,
    ) -> None:
        """Change a step; every opt-in to it becomes stale. ``minutes=""`` keeps it.

        Raises:
            NoSuchRecordError: no step with that id.
            MalformedError: see :meth:`add_step`.
        """
        current = self._steps().get(step)
        if current is None:
            raise NoSuchRecordError("no plan step with that id")
        old = current[0]
        new = PlanStep(
            id=old.id,
            section=old.section,
            text=text if text is not None else old.text,
            position=position if position is not None else old.position,
            by=self._replica.member_id,
            at=self._clock(),
            minutes=old.minutes if minutes == "" else minutes,  # type: ignore[arg-type]
        )
        with self._replica.change() as docs:
            docs.shared.put_plan_step(step.hex(), new.to_bytes())

    def remove_step(self, step: bytes) -> None:
        """Remove a step.

        Raises:
            NoSuchRecordError: no step with that id.
        """
        if step not in self._steps():
            raise NoSuchRecordError("no plan step with that id")
        with self._replica.change() as docs:
            docs.shared.remove_plan_step(step.hex())

    def opt_in(self, step: bytes, *, expires_at: int | None = None) -> PlanStepView:
        """Opt in to the current wording of a step (optionally until ``expires_at``).

        Raises:
            NoSuchRecordError: no step with that id.
        """
        current = self._steps().get(step)
        if current is None:
            raise NoSuchRecordError("no plan step with that id")
        record = PlanOptIn(
            member=self._replica.member_id,
            step=step,
            step_hash=record_hash(current[1]),
            at=self._clock(),
            expires_at=expires_at,
        )
        self._replica.write_records([record])
        return self.step(step)

    def steps(self) -> list[PlanStepView]:
        """Every step: by section (de-escalation, cooling-off, return), then position."""
        now = self._clock()
        members = self._replica.members()
        fresh: dict[tuple[bytes, bytes], set[bytes]] = {}
        for member, records in self._replica.voice_records().items():
            for record in records:
                if isinstance(record, PlanOptIn) and member in members:
                    if record.expires_at is None or now < record.expires_at:
                        fresh.setdefault((record.step, record.step_hash), set()).add(member)
        views = []
        for step_id, (step, data) in self._steps().items():
            opted = fresh.get((step_id, record_hash(data)), set())
            views.append(
                PlanStepView(
                    id=step_id,
                    section=step.section,
                    text=step.text,
                    minutes=step.minutes,
                    position=step.position,
                    opted_in=tuple(sorted(opted)),
                    waiting_for=tuple(sorted(members - opted)),
                )
            )
        return sorted(views, key=lambda v: (_SECTION_ORDER[v.section], v.position, v.id))

    def step(self, step: bytes) -> PlanStepView:
        """One step.

        Raises:
            NoSuchRecordError: no step with that id.
        """
        for view in self.steps():
            if view.id == step:
                return view
        raise NoSuchRecordError("no plan step with that id")


class Notes:
    """Shared notes: short collaborative texts every member may edit."""

    def __init__(self, replica: Replica) -> None:
        self._replica = replica

    def all(self) -> dict[bytes, str]:
        found = {}
        for key, text in self._replica.documents.shared.notes().items():
            try:
                found[check_step_key(key)] = text
            except AccordError:
                continue
        return found

    def write(self, text: str, *, note: bytes | None = None) -> bytes:
        """Create a note (or replace the text of ``note``); returns its id."""
        note = note if note is not None else new_record_id()
        with self._replica.change() as docs:
            docs.shared.set_note(note.hex(), text)
        return note

    def remove(self, note: bytes) -> None:
        with self._replica.change() as docs:
            docs.shared.remove_note(note.hex())
