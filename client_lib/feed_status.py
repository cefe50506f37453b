"""Problems, per-device status, and what the relay shows (part of :class:`Replica`).

Theory of operation:

* Every problem a replica finds is kept once in the store (``problems``) with a dedupe
  key, and returned as an event the first time only.
* The status of a space lists every device: its member, whether it is active, how far
  its feed goes here, when it was last heard from (when its feed last grew here: no
  online status, no read receipts), whether its feed forked, and whether some other
  device had already read more of it than the relay has given us (withholding).
* The sync engine tells the replica what feed heads the relay reports
  (:meth:`FeedStatus.note_relay_heads`). A head below what the relay showed or took
  before is a rollback, reported as a :class:`~client_lib.events.RollbackDetected`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from client_lib.events import (
    NotAuthor,
    Problem,
    Refused,
    ReplicaEvent,
    RollbackDetected,
    WaitReason,
)
from client_lib.events import Withholding as WithholdingEvent
from client_lib.records import record_hash
from client_lib.store import ProblemRow, RelayMark
from protocol.crypto import fingerprint
from protocol.entry import Entry
from protocol.errors import ErrorCode, ProtocolError
from protocol.feeds import Withholding, find_rollback, find_withholding

if TYPE_CHECKING:
    from client_lib.agreements import Clock
    from client_lib.keystore import Keystore
    from client_lib.store import Store
    from protocol.roster import Roster


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceStatus:
    """One device of a space, as this device sees it."""

    device: bytes
    fingerprint: str
    member: bytes | None  # None while its roster entry has not arrived
    active: bool
    cut: int | None  # the last seq that counts, for a removed device
    have_seq: int
    last_heard_at: int | None
    quiet_for_ms: int | None
    withheld_up_to: int | None  # some device had read this far; the relay gave us less
    forked_at: int | None
    is_this_device: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class SpaceStatus:
    """The state of a space's feeds here."""

    space: bytes
    epoch: int
    has_current_key: bool
    devices: tuple[DeviceStatus, ...]
    waiting: int
    outbox: int
    problems: int

    def quiet_devices(self, longer_than_ms: int) -> tuple[DeviceStatus, ...]:
        """Active devices of others not heard from for longer than ``longer_than_ms``."""
        return tuple(
            d
            for d in self.devices
            if d.active
            and not d.is_this_device
            and (d.quiet_for_ms is None or d.quiet_for_ms > longer_than_ms)
        )


class FeedStatus:
    """Problem keeping and status; mixed into :class:`client_lib.replica.Replica`."""

    space: bytes
    _store: Store
    _keys: Keystore
    _roster: Roster
    _clock: Clock
    _record_problems: list[Problem]

    if TYPE_CHECKING:  # provided by the replica

        @property
        def device(self) -> bytes: ...

        def have_vector(self) -> dict[bytes, int]: ...

    # -- problems ----------------------------------------------------------------------

    def _keep_problem(self, problem: Problem, dedupe: str | None = None) -> bool:
        if dedupe is None:
            parts = [
                type(problem).__name__,
                problem.code.value,
                (problem.entry_id or b"").hex(),
                (problem.device or b"").hex(),
                str(problem.seq or 0),
            ]
            dedupe = ":".join(parts)
        return self._store.report_problem(
            ProblemRow(
                space=self.space,
                at=self._clock(),
                code=problem.code.value,
                device=problem.device,
                seq=problem.seq,
                entry_id=problem.entry_id,
                detail=problem.describe(),
                proof=getattr(problem, "proof", None) or None,
                dedupe=dedupe,
            )
        )

    def _report(self, problem: Problem, dedupe: str | None = None) -> list[ReplicaEvent]:
        """Keep a problem once; return it as an event only the first time."""
        return [problem] if self._keep_problem(problem, dedupe) else []

    def _bad_record(self, owner: bytes, key: str, data: bytes, error: ProtocolError) -> None:
        """A record of a voice failed its checks: refuse it and report it once."""
        if error.code is ErrorCode.NOT_AUTHOR:
            problem: Problem = NotAuthor(
                space=self.space,
                voice=owner,
                detail="A record claimed to speak for someone other than the person who "
                "wrote it. Nobody can speak for someone else here, so it was not used.",
            )
        else:
            problem = Refused(
                space=self.space,
                code=error.code,
                detail="A record could not be checked, so it was not used.",
            )
        dedupe = f"record:{owner.hex()}:{key}:{record_hash(data).hex()}"
        if self._keep_problem(problem, dedupe):
            self._record_problems.append(problem)

    def take_record_problems(self) -> list[ReplicaEvent]:
        """Problems found while reading records since the last call."""
        found: list[ReplicaEvent] = list(self._record_problems)
        self._record_problems.clear()
        return found

    def problems(self, *, after: int = 0) -> list[ProblemRow]:
        """Every problem reported in this space, numbered above ``after``."""
        return self._store.problems(self.space, after=after)

    # -- what the relay shows ----------------------------------------------------------

    def _note_acknowledged(self, entry_ids: Iterable[bytes]) -> None:
        best = self._store.relay_marks(self.space).get(self.device)
        top = best.seq if best is not None else 0
        top_id = best.id if best is not None else b""
        for eid in entry_ids:
            stored = self._store.entry(eid)
            if stored is not None and stored.device == self.device and stored.seq > top:
                top, top_id = stored.seq, stored.id
        if top and (best is None or top > best.seq):
            mark = RelayMark(device=self.device, seq=top, id=top_id, at=self._clock())
            self._store.set_relay_mark(self.space, mark)

    def note_relay_heads(self, reported: Mapping[bytes, int]) -> list[ReplicaEvent]:
        """Compare the feed heads the relay reports with what it showed before.

        ``reported`` is ``{device: seq}`` from the relay. Only the feeds named are
        judged: a relay answer that covers every feed should name each one, with 0 for
        a feed it says it does not have. A head below the highest the relay showed, took
        from this device, or delivered to it is reported as a rollback (once). The marks
        then move up to what is reported.
        """
        marks = {device: mark.seq for device, mark in self._store.relay_marks(self.space).items()}
        for device, seq in self.have_vector().items():
            if device != self.device and seq > marks.get(device, 0):
                marks[device] = seq
        marks = {device: seq for device, seq in marks.items() if device in reported}
        events: list[ReplicaEvent] = []
        for rollback in find_rollback(marks, reported):
            problem = RollbackDetected(
                space=self.space,
                device=rollback.device,
                stored_seq=rollback.stored_seq,
                reported_seq=rollback.reported_seq,
                detail=rollback.describe(),
            )
            dedupe = (
                f"rollback:{rollback.device.hex()}:{rollback.stored_seq}:{rollback.reported_seq}"
            )
            events.extend(self._report(problem, dedupe))
        now = self._clock()
        for device, seq in reported.items():
            if seq > marks.get(device, 0):
                held = self._store.ref_at(self.space, device, seq)
                mark = RelayMark(device=device, seq=seq, id=held.id if held else b"", at=now)
                self._store.set_relay_mark(self.space, mark)
        return events

    def _withheld_feeds(self) -> tuple[Withholding, ...]:
        have = self.have_vector()
        claims: list[Entry] = []
        for waiting in self._store.waiting(self.space):
            if waiting.reason != WaitReason.FORKED_FEED:
                try:
                    claims.append(Entry.from_bytes(waiting.raw))
                except ProtocolError:
                    continue
        return find_withholding(claims, have)

    def withholding(self) -> list[ReplicaEvent]:
        """Feeds some device had read further than we hold (from entries kept waiting).

        Each is reported once as a :class:`~client_lib.events.Withholding` problem.
        """
        events: list[ReplicaEvent] = []
        for found in self._withheld_feeds():
            problem = WithholdingEvent(
                space=self.space,
                device=found.device,
                claimed_seq=found.claimed_seq,
                have_seq=found.have_seq,
                detail=found.describe(),
            )
            dedupe = f"withholding:{found.device.hex()}:{found.claimed_seq}:{found.have_seq}"
            events.extend(self._report(problem, dedupe))
        return events

    def status(self) -> SpaceStatus:
        """Every device of the space, with how far and how recently it was heard."""
        now = self._clock()
        have = self.have_vector()
        heard = self._store.heard(self.space)
        forks = self._store.forks(self.space)
        withheld = {found.device: found.claimed_seq for found in self._withheld_feeds()}
        roster = self._roster
        devices = []
        for device in sorted(roster.known_devices | set(have) | set(heard)):
            try:
                member: bytes | None = roster.member_of(device)
            except ProtocolError:
                member = None
            last = heard.get(device)
            devices.append(
                DeviceStatus(
                    device=device,
                    fingerprint=fingerprint(device),
                    member=member,
                    active=roster.is_active(device),
                    cut=roster.cut_of(device),
                    have_seq=have.get(device, 0),
                    last_heard_at=last.at if last else None,
                    quiet_for_ms=now - last.at if last else None,
                    withheld_up_to=withheld.get(device),
                    forked_at=forks[device][0] if device in forks else None,
                    is_this_device=device == self.device,
                )
            )
        return SpaceStatus(
            space=self.space,
            epoch=roster.epoch,
            has_current_key=roster.epoch in self._keys.epoch_keys(self.space),
            devices=tuple(devices),
            waiting=len(self._store.waiting(self.space)),
            outbox=len(self._store.pending_outbox(self.space)),
            problems=len(self._store.problems(self.space)),
        )
