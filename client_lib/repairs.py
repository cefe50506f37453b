"""The repair log: a crossing named, then the steps of repairing it.

Theory of operation:

* A repair entry opens with a ``crossing`` record naming what happened and who was
  harmed. Then come acknowledgement, apology, corrective action and prevention plan,
  each a record in the voice of whoever takes the step, so each step is signed (by
  that member's device) and nobody can write a step in someone else's name.
* Only the person harmed closes an entry. A ``close`` record by anyone else is not
  counted (and this API refuses to write one).
* There are no counts or dashboards of crossings: the log is a list of entries, each
  owned by the person harmed.
* A step that names a crossing not known here yet is held back until it arrives.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from client_lib.agreements import Clock, wall_clock_ms
from client_lib.errors import NoSuchRecordError, NotAllowedError
from client_lib.records import RepairStep, RepairStepKind
from protocol.agreement import new_record_id

if TYPE_CHECKING:
    from client_lib.replica import Replica


@dataclass(frozen=True, slots=True, kw_only=True)
class RepairView:
    """One repair entry with its steps, oldest first."""

    id: bytes
    harmed: bytes
    named_by: bytes
    what_happened: str
    at: int
    steps: tuple[RepairStep, ...]
    closed: bool
    closed_at: int | None

    def steps_of(self, kind: RepairStepKind) -> tuple[RepairStep, ...]:
        return tuple(step for step in self.steps if step.step is kind)


class RepairLog:
    """The repair entries of one relationship space."""

    def __init__(self, replica: Replica, *, clock: Clock = wall_clock_ms) -> None:
        self._replica = replica
        self._clock = clock

    @property
    def me(self) -> bytes:
        return self._replica.member_id

    def name_crossing(self, text: str, *, harmed: bytes | None = None) -> bytes:
        """Open a repair entry; ``harmed`` is the person harmed (me by default).

        Returns the repair's id.

        Raises:
            NotAllowedError: ``harmed`` is not a member of this space.
            MalformedError: the text is too long.
        """
        harmed = harmed if harmed is not None else self.me
        if harmed not in self._replica.members():
            raise NotAllowedError("the person harmed must be a member of this space")
        repair = new_record_id()
        self._write(repair, RepairStepKind.CROSSING, text, record_id=repair, harmed=harmed)
        return repair

    def add_step(self, repair: bytes, step: RepairStepKind | str, text: str) -> RepairView:
        """Take a step (acknowledgement, apology, corrective action, prevention plan).

        Raises:
            NoSuchRecordError: no repair entry with that id is known here.
            NotAllowedError: the step is ``crossing`` or ``close`` (use
                :meth:`name_crossing` or :meth:`close`), or the entry is closed.
            ValueError: ``step`` is not a step name.
        """
        kind = RepairStepKind(step)
        if kind in (RepairStepKind.CROSSING, RepairStepKind.CLOSE):
            raise NotAllowedError("use name_crossing() or close() for that step")
        view = self.entry(repair)
        if view.closed:
            raise NotAllowedError("this repair entry was closed by the person harmed")
        self._write(repair, kind, text)
        return self.entry(repair)

    def close(self, repair: bytes, text: str = "") -> RepairView:
        """Close an entry. Only the person harmed may.

        Raises:
            NoSuchRecordError: no repair entry with that id is known here.
            NotAllowedError: I am not the person harmed.
        """
        view = self.entry(repair)
        if view.harmed != self.me:
            raise NotAllowedError("only the person harmed closes a repair entry")
        if not view.closed:
            self._write(repair, RepairStepKind.CLOSE, text)
        return self.entry(repair)

    def _write(
        self,
        repair: bytes,
        kind: RepairStepKind,
        text: str,
        *,
        record_id: bytes | None = None,
        harmed: bytes | None = None,
    ) -> None:
        record = RepairStep(
            member=self.me,
            id=record_id if record_id is not None else new_record_id(),
            repair=repair,
            step=kind,
            text=text,
            at=self._clock(),
            harmed=harmed,
        )
        self._replica.write_records([record])

    def entries(self) -> list[RepairView]:
        """Every repair entry, oldest first."""
        steps = [
            record
            for records in self._replica.voice_records().values()
            for record in records
            if isinstance(record, RepairStep)
        ]
        crossings = {s.id: s for s in steps if s.step is RepairStepKind.CROSSING}
        by_repair: dict[bytes, list[RepairStep]] = {}
        for step in steps:
            if step.step is not RepairStepKind.CROSSING and step.repair in crossings:
                by_repair.setdefault(step.repair, []).append(step)
        views = []
        for repair, crossing in crossings.items():
            assert crossing.harmed is not None
            following = sorted(by_repair.get(repair, []), key=lambda s: (s.at, s.id))
            closes = [
                s
                for s in following
                if s.step is RepairStepKind.CLOSE and s.member == crossing.harmed
            ]
            kept = tuple(s for s in following if s.step is not RepairStepKind.CLOSE or s in closes)
            views.append(
                RepairView(
                    id=repair,
                    harmed=crossing.harmed,
                    named_by=crossing.member,
                    what_happened=crossing.text,
                    at=crossing.at,
                    steps=kept,
                    closed=bool(closes),
                    closed_at=closes[0].at if closes else None,
                )
            )
        return sorted(views, key=lambda v: (v.at, v.id))

    def entry(self, repair: bytes) -> RepairView:
        """One repair entry.

        Raises:
            NoSuchRecordError: no repair entry with that id is known here.
        """
        for view in self.entries():
            if view.id == repair:
                return view
        raise NoSuchRecordError("no repair entry with that id is known here")
