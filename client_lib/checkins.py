"""Check-ins: a schedule the members share, and each member's own answers.

Theory of operation:

* The schedule lives in the ``shared`` document of the relationship space (every
  member may set it): ``every_days``, an optional ``time`` ("HH:MM", local time), an
  optional ``note``. It is a rhythm the members chose, never a streak or a reminder
  sent by a partner.
* A member's answers (a 1 to 5 sense of safety, what feels safe, what is triggering,
  what would help) are written into their **private** space (a space whose only
  member is them), so nobody else can read them or count them. Only when the member
  chooses to share an answer is the same record copied into their voice document in
  the relationship space.
* The private journal (:class:`Journal`) lives in the same private space.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from client_lib.agreements import Clock, wall_clock_ms
from client_lib.errors import NoSuchRecordError, NotAllowedError
from client_lib.records import CheckIn, JournalEntry
from protocol.agreement import new_record_id

if TYPE_CHECKING:
    from client_lib.replica import Replica

_TIME = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]")
MAX_EVERY_DAYS = 366


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckinSchedule:
    """How often the members chose to check in."""

    every_days: int
    time: str | None = None
    note: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckinView:
    """One check-in answer and whether it was shared with the relationship space."""

    record: CheckIn
    shared: bool

    @property
    def id(self) -> bytes:
        return self.record.id


class CheckIns:
    """The check-in schedule of a relationship space and this member's answers.

    ``private`` is this member's private space; without it, answers can only be
    recorded as shared.
    """

    def __init__(
        self, replica: Replica, *, private: Replica | None = None, clock: Clock = wall_clock_ms
    ) -> None:
        self._replica = replica
        self._private = private
        self._clock = clock

    # -- the schedule ------------------------------------------------------------------

    def schedule(self) -> CheckinSchedule | None:
        """The shared schedule, or None when none is set (or it is unreadable)."""
        values = self._replica.documents.shared.schedule()
        every = values.get("every_days")
        if not isinstance(every, int) or not 1 <= every <= MAX_EVERY_DAYS:
            return None
        time = values.get("time")
        note = values.get("note")
        return CheckinSchedule(
            every_days=every,
            time=time if isinstance(time, str) and _TIME.fullmatch(time) else None,
            note=note if isinstance(note, str) else "",
        )

    def set_schedule(self, *, every_days: int, time: str | None = None, note: str = "") -> None:
        """Set the shared rhythm of check-ins.

        Raises:
            ValueError: ``every_days`` outside 1..366, or ``time`` not "HH:MM".
        """
        if not 1 <= every_days <= MAX_EVERY_DAYS:
            raise ValueError(f"every_days is between 1 and {MAX_EVERY_DAYS}")
        if time is not None and not _TIME.fullmatch(time):
            raise ValueError("time is written HH:MM (24-hour)")
        values: dict[str, str | int] = {"every_days": every_days, "note": note}
        if time is not None:
            values["time"] = time
        with self._replica.change() as docs:
            docs.shared.set_schedule(values)

    # -- answers -----------------------------------------------------------------------

    def record(
        self,
        *,
        safety: int,
        feels_safe: str = "",
        triggering: str = "",
        would_help: str = "",
        share: bool = False,
    ) -> CheckIn:
        """Record my answers: kept private, and also shared when ``share`` is True.

        Raises:
            NotAllowedError: no private space here and ``share`` is False.
            MalformedError: ``safety`` is not 1 to 5, or a text is too long.
        """
        if self._private is None and not share:
            raise NotAllowedError("a private answer needs this device's private space")
        record = CheckIn(
            member=self._replica.member_id,
            id=new_record_id(),
            at=self._clock(),
            safety=safety,
            feels_safe=feels_safe,
            triggering=triggering,
            would_help=would_help,
        )
        if self._private is not None:
            self._private.write_records([record])
        if share:
            self._replica.write_records([record])
        return record

    def share(self, checkin: bytes) -> CheckIn:
        """Share one of my private answers with the relationship space.

        Raises:
            NoSuchRecordError: no private answer of mine has that id.
        """
        for view in self.mine():
            if view.id == checkin:
                if not view.shared:
                    self._replica.write_records([view.record])
                return view.record
        raise NoSuchRecordError("no answer of yours has that id")

    def mine(self) -> list[CheckinView]:
        """My answers, private and shared, oldest first."""
        me = self._replica.member_id
        shared = {r.id: r for r in _checkins(self._replica, me)}
        private = {r.id: r for r in _checkins(self._private, me)} if self._private else {}
        views = [CheckinView(record=r, shared=r.id in shared) for r in private.values()]
        views += [CheckinView(record=r, shared=True) for i, r in shared.items() if i not in private]
        return sorted(views, key=lambda v: (v.record.at, v.id))

    def shared(self) -> list[CheckIn]:
        """Every member's shared answers in the relationship space, oldest first."""
        found = [
            record
            for records in self._replica.voice_records().values()
            for record in records
            if isinstance(record, CheckIn)
        ]
        return sorted(found, key=lambda r: (r.at, r.member, r.id))


def _checkins(replica: Replica | None, member: bytes) -> list[CheckIn]:
    if replica is None:
        return []
    records = replica.voice_records().get(member, [])
    return [record for record in records if isinstance(record, CheckIn)]


class Journal:
    """My private journal: entries in my private space, which only my devices can read."""

    def __init__(self, private: Replica, *, clock: Clock = wall_clock_ms) -> None:
        self._private = private
        self._clock = clock

    def write(self, text: str) -> JournalEntry:
        """Add an entry.

        Raises:
            MalformedError: the text is too long.
        """
        entry = JournalEntry(
            member=self._private.member_id, id=new_record_id(), at=self._clock(), text=text
        )
        self._private.write_records([entry])
        return entry

    def entries(self) -> list[JournalEntry]:
        """Every entry, oldest first."""
        records = self._private.voice_records().get(self._private.member_id, [])
        found = [r for r in records if isinstance(r, JournalEntry)]
        return sorted(found, key=lambda r: (r.at, r.id))
