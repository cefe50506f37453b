"""The agreements API: items, pause and resume, names and the timeline.

Theory of operation:

* Every record a member writes goes into their own voice document, through
  :meth:`Replica.change`; nothing here writes into anyone else's voice, and the
  replica refuses it if asked.
* Every answer comes from :func:`protocol.agreement.evaluate` over the verified records
  of all voices (:meth:`Replica.voice_records`), so every device computes the same
  states from the same records, whatever order they arrived in.
* Wording shown to people is calm and never presses anyone (DESIGN.md 4a): an item
  waits for someone's own time ("Waiting for Sam's re-affirmation"); a pause never
  asks for a reason.

Check-ins, the repair log and the crisis plan have their own modules
(:mod:`client_lib.checkins`, :mod:`client_lib.repairs`, :mod:`client_lib.crisis_plan`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from client_lib.errors import NoSuchRecordError, NotAllowedError
from client_lib.records import CheckIn, Profile, VoiceRecord
from protocol.agreement import (
    Affirmation,
    ItemState,
    Kind,
    Level,
    Pause,
    Resume,
    RuleResult,
    Status,
    Version,
    draft_version,
    evaluate,
    new_record_id,
)

if TYPE_CHECKING:
    from client_lib.replica import Replica

Clock = Callable[[], int]


def wall_clock_ms() -> int:
    """Milliseconds since the Unix epoch, from this device's clock."""
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True, kw_only=True)
class VersionView:
    """One version of an item, as front ends show it."""

    id: bytes
    item: bytes
    kind: Kind
    level: Level
    title: str
    details: str
    revisit: str | None
    parents: tuple[bytes, ...]
    author: bytes
    author_name: str
    created_at: int
    #: Members who endorse this version now (its author, and live affirmations).
    endorsed_by: tuple[bytes, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class ItemView:
    """An item and the rule's answer for it."""

    item: bytes
    status: Status
    level: Level  # the level in force (``no`` while anyone's pause is active)
    heads: tuple[VersionView, ...]  # concurrent heads, sorted by version id
    waiting_for: Mapping[bytes, tuple[bytes, ...]]  # head id -> members
    last_agreed: tuple[bytes, ...]
    stances: Mapping[bytes, Level]
    summary: str  # a calm sentence for people, e.g. "Waiting for Sam's re-affirmation"

    @property
    def title(self) -> str:
        return self.heads[0].title

    @property
    def kind(self) -> Kind:
        return self.heads[0].kind

    @property
    def agreed(self) -> bool:
        return self.status is Status.AGREED

    @property
    def concurrent(self) -> bool:
        """True when there is more than one head (two changes made at the same time)."""
        return len(self.heads) > 1


@dataclass(frozen=True, slots=True, kw_only=True)
class PauseState:
    """Who has paused. A pause never carries or asks for a reason."""

    paused_by: tuple[bytes, ...]
    mine: tuple[bytes, ...]  # my active pause ids (what :meth:`Agreements.resume` lifts)

    @property
    def active(self) -> bool:
        return bool(self.paused_by)


@dataclass(frozen=True, slots=True, kw_only=True)
class TimelineEvent:
    """One point of the timeline. ``kind`` is version, affirmation, pause, resume or check-in."""

    at: int
    kind: str
    member: bytes
    item: bytes | None = None
    version: bytes | None = None
    level: Level | None = None
    title: str | None = None
    safety: int | None = None


def _kind(value: Kind | str) -> Kind:
    try:
        return Kind(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a kind of item") from None


def _level(value: Level | str) -> Level:
    if isinstance(value, Level):
        return value
    try:
        return Level(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a level (no, ask or yes)") from None


@dataclass
class _Index:
    """The records the rule reads, grouped for quick lookups."""

    versions: dict[bytes, list[Version]] = field(default_factory=dict)
    affirmations: dict[bytes, list[Affirmation]] = field(default_factory=dict)
    by_id: dict[bytes, Version] = field(default_factory=dict)
    pauses: list[Pause] = field(default_factory=list)
    resumes: list[Resume] = field(default_factory=list)


class Agreements:
    """Items, pause and resume, member names and the timeline of one space."""

    def __init__(self, replica: Replica, *, clock: Clock = wall_clock_ms) -> None:
        self._replica = replica
        self._clock = clock
        self._index: tuple[object, _Index] | None = None

    @property
    def me(self) -> bytes:
        return self._replica.member_id

    # -- names -------------------------------------------------------------------------

    def names(self) -> dict[bytes, str]:
        """Each member's shown name (their newest profile record), or a short id."""
        names: dict[bytes, tuple[int, str]] = {}
        for member, records in self._replica.voice_records().items():
            for record in records:
                if isinstance(record, Profile):
                    best = names.get(member)
                    if best is None or (record.at, record.name) > best:
                        names[member] = (record.at, record.name)
        found = {member: name for member, (_, name) in names.items()}
        for member in self._replica.members():
            found.setdefault(member, f"member {member.hex()[:8]}")
        return found

    def name_of(self, member: bytes) -> str:
        return self.names().get(member, f"member {member.hex()[:8]}")

    def set_my_name(self, name: str) -> None:
        """Publish the name the other members see for me in this space."""
        self._replica.write_records([Profile(member=self.me, name=name, at=self._clock())])

    # -- reading the rule --------------------------------------------------------------

    def _indexed(self) -> _Index:
        """The rule's records, by item; built again only when the records changed (the
        replica hands out the same mapping until then)."""
        records = self._replica.voice_records()
        if self._index is not None and self._index[0] is records:
            return self._index[1]
        index = _Index()
        for voice in records.values():
            for record in voice:
                if isinstance(record, Version):
                    index.versions.setdefault(record.item, []).append(record)
                    index.by_id[record.id] = record
                elif isinstance(record, Affirmation):
                    index.affirmations.setdefault(record.item, []).append(record)
                elif isinstance(record, Pause):
                    index.pauses.append(record)
                elif isinstance(record, Resume):
                    index.resumes.append(record)
        self._index = (records, index)
        return index

    def _records(self) -> tuple[list[Version], list[Affirmation], list[Pause], list[Resume]]:
        index = self._indexed()
        versions = [v for found in index.versions.values() for v in found]
        affirmations = [a for found in index.affirmations.values() for a in found]
        return versions, affirmations, index.pauses, index.resumes

    def _evaluate(
        self, item: bytes | None = None
    ) -> tuple[RuleResult, dict[bytes, Version], list[Affirmation]]:
        """The rule over every item, or over one ``item`` only (same answer for it)."""
        index = self._indexed()
        pauses, resumes = index.pauses, index.resumes
        if item is not None:
            versions = list(index.versions.get(item, ()))
            affirmations = list(index.affirmations.get(item, ()))
        else:
            versions, affirmations, _, _ = self._records()
        result = evaluate(
            members=self._replica.members(),
            versions=versions,
            affirmations=affirmations,
            pauses=pauses,
            resumes=resumes,
            now=self._clock(),
        )
        return result, {v.id: v for v in versions}, affirmations

    def _endorsers(
        self, version: Version, affirmations: Sequence[Affirmation]
    ) -> tuple[bytes, ...]:
        now = self._clock()
        members = self._replica.members()
        found = set()
        expiry = version.content.expires_at
        if version.author in members and (expiry is None or now < expiry):
            found.add(version.author)
        for affirmation in affirmations:
            if affirmation.version == version.id and affirmation.member in members:
                if affirmation.expires_at is None or now < affirmation.expires_at:
                    found.add(affirmation.member)
        return tuple(sorted(found))

    def _version_view(
        self, version: Version, affirmations: Sequence[Affirmation], names: Mapping[bytes, str]
    ) -> VersionView:
        content = version.content
        return VersionView(
            id=version.id,
            item=content.item,
            kind=content.kind,
            level=content.level,
            title=content.title,
            details=content.details,
            revisit=content.revisit,
            parents=content.parents,
            author=content.author,
            author_name=names.get(content.author, content.author.hex()[:8]),
            created_at=content.created_at,
            endorsed_by=self._endorsers(version, affirmations),
        )

    def _summary(
        self, state: ItemState, paused_by: Sequence[bytes], names: Mapping[bytes, str]
    ) -> str:
        if paused_by:
            who = " and ".join(names.get(m, "someone") for m in paused_by)
            return f"Paused by {who}. Everything is a no for now."
        if state.status is Status.AGREED:
            return f"Agreed: {state.level.value}"
        waiting = sorted({m for members in state.waiting_for.values() for m in members})
        if len(state.heads) > 1:
            return (
                f"Two versions were written at the same time; holding at {state.level.value}"
                " until they are brought together"
            )
        if not waiting:
            return f"Holding at {state.level.value}"
        who = " and ".join(
            "your" if m == self.me else f"{names.get(m, 'someone')}'s" for m in waiting
        )
        return f"Waiting for {who} re-affirmation; holding at {state.level.value}"

    def _item_view(
        self,
        state: ItemState,
        result: RuleResult,
        versions: Mapping[bytes, Version],
        affirmations: Sequence[Affirmation],
        names: Mapping[bytes, str],
    ) -> ItemView:
        heads = tuple(self._version_view(versions[h], affirmations, names) for h in state.heads)
        return ItemView(
            item=state.item,
            status=state.status,
            level=state.level,
            heads=heads,
            waiting_for=dict(state.waiting_for),
            last_agreed=state.last_agreed,
            stances=dict(state.stances),
            summary=self._summary(state, result.paused, names),
        )

    def items(self) -> list[ItemView]:
        """Every item with its state, sorted by title, then id."""
        result, versions, _ = self._evaluate()
        by_item = self._indexed().affirmations
        names = self.names()
        views = [
            self._item_view(state, result, versions, by_item.get(state.item, ()), names)
            for state in result.items.values()
        ]
        return sorted(views, key=lambda view: (view.title.casefold(), view.item))

    def item(self, item: bytes) -> ItemView:
        """One item with its state.

        Raises:
            NoSuchRecordError: no version of that item is known here.
        """
        result, versions, affirmations = self._evaluate(item)
        state = result.items.get(item)
        if state is None:
            raise NoSuchRecordError("no item with that id is known here")
        return self._item_view(state, result, versions, affirmations, self.names())

    def history(self, item: bytes) -> list[VersionView]:
        """Every known version of an item, oldest first (by the author's clock, then id).

        Raises:
            NoSuchRecordError: no version of that item is known here.
        """
        _, versions, affirmations = self._evaluate(item)
        names = self.names()
        found = list(versions.values())
        if not found:
            raise NoSuchRecordError("no item with that id is known here")
        found.sort(key=lambda v: (v.content.created_at, v.id))
        return [self._version_view(v, affirmations, names) for v in found]

    # -- writing items -----------------------------------------------------------------

    def create_item(
        self,
        *,
        kind: Kind | str,
        level: Level | str,
        title: str,
        details: str = "",
        revisit: str | None = None,
        expires_at: int | None = None,
    ) -> ItemView:
        """Create an item; writing its first version counts as my affirmation of it.

        Raises:
            ValueError: ``kind`` or ``level`` is not one of the allowed words.
            MalformedError: a field is out of shape (empty title, bad revisit date...).
        """
        version = draft_version(
            item=new_record_id(),
            kind=_kind(kind),
            level=_level(level),
            title=title,
            details=details,
            revisit=revisit,
            author=self.me,
            created_at=self._clock(),
            expires_at=expires_at,
        )
        self._replica.write_records([version])
        return self.item(version.item)

    def change_item(
        self,
        item: bytes,
        *,
        level: Level | str | None = None,
        title: str | None = None,
        details: str | None = None,
        kind: Kind | str | None = None,
        revisit: str | None = "",
        expires_at: int | None = None,
    ) -> ItemView:
        """Write a new version of an item over all its current heads.

        Fields not given are taken from the newest head. ``revisit=""`` keeps the
        current revisit date; ``None`` clears it.

        Raises:
            NoSuchRecordError: no version of that item is known here.
            ValueError, MalformedError: as :meth:`create_item`.
        """
        view = self.item(item)
        base = max(view.heads, key=lambda head: (head.created_at, head.id))
        version = draft_version(
            item=item,
            kind=_kind(kind) if kind is not None else base.kind,
            level=_level(level) if level is not None else base.level,
            title=title if title is not None else base.title,
            details=details if details is not None else base.details,
            revisit=base.revisit if revisit == "" else revisit,
            parents=[head.id for head in view.heads],
            author=self.me,
            created_at=self._clock(),
            expires_at=expires_at,
        )
        self._replica.write_records([version])
        return self.item(item)

    def affirm(self, version: bytes, *, expires_at: int | None = None) -> ItemView:
        """Affirm one exact version (optionally until ``expires_at``, ms since the epoch).

        Raises:
            NoSuchRecordError: that version is not known here.
        """
        found = self._indexed().by_id.get(version)
        if found is None:
            raise NoSuchRecordError("no version with that id is known here")
        self._replica.write_records(
            [
                Affirmation(
                    member=self.me,
                    version=version,
                    item=found.item,
                    at=self._clock(),
                    expires_at=expires_at,
                )
            ]
        )
        return self.item(found.item)

    # -- pause and resume --------------------------------------------------------------

    def pause_state(self) -> PauseState:
        index = self._indexed()
        pauses, resumes = index.pauses, index.resumes
        members = self._replica.members()
        lifted = {(r.member, p) for r in resumes for p in r.lifts}
        active = [p for p in pauses if p.member in members and (p.member, p.id) not in lifted]
        return PauseState(
            paused_by=tuple(sorted({p.member for p in active})),
            mine=tuple(sorted(p.id for p in active if p.member == self.me)),
        )

    def pause(self) -> PauseState:
        """Pause everything at once: every item is ``no`` in force. No reason is asked."""
        self._replica.write_records([Pause(member=self.me, id=new_record_id(), at=self._clock())])
        return self.pause_state()

    def resume(self) -> PauseState:
        """Lift my own pauses (every one this device knows of).

        Another member's pause stays: only the person who paused can lift it.

        Raises:
            NotAllowedError: I have no active pause (perhaps only someone else paused).
        """
        mine = self.pause_state().mine
        if not mine:
            raise NotAllowedError("there is no pause of yours to lift")
        for start in range(0, len(mine), 64):
            chunk = tuple(mine[start : start + 64])
            self._replica.write_records(
                [Resume(member=self.me, id=new_record_id(), at=self._clock(), lifts=chunk)]
            )
        return self.pause_state()

    # -- timeline ----------------------------------------------------------------------

    def timeline(self, *, extra: Sequence[VoiceRecord] = ()) -> list[TimelineEvent]:
        """Every version, affirmation, pause, resume and shared check-in, oldest first.

        ``extra`` adds records from elsewhere (my private check-ins) to the timeline.
        """
        events: list[TimelineEvent] = []
        titles: dict[bytes, str] = {}
        records = [r for rs in self._replica.voice_records().values() for r in rs]
        for record in [*records, *extra]:
            if isinstance(record, Version):
                titles[record.id] = record.content.title
                events.append(
                    TimelineEvent(
                        at=record.content.created_at,
                        kind="version",
                        member=record.author,
                        item=record.item,
                        version=record.id,
                        level=record.level,
                        title=record.content.title,
                    )
                )
            elif isinstance(record, Affirmation):
                events.append(
                    TimelineEvent(
                        at=record.at,
                        kind="affirmation",
                        member=record.member,
                        item=record.item,
                        version=record.version,
                    )
                )
            elif isinstance(record, Pause | Resume):
                kind = "pause" if isinstance(record, Pause) else "resume"
                events.append(TimelineEvent(at=record.at, kind=kind, member=record.member))
            elif isinstance(record, CheckIn):
                events.append(
                    TimelineEvent(
                        at=record.at, kind="check-in", member=record.member, safety=record.safety
                    )
                )
        unique = {(e.at, e.kind, e.member, e.version, e.item, e.safety): e for e in events}
        done = []
        for event in unique.values():
            if event.kind == "affirmation" and event.version in titles:
                event = TimelineEvent(
                    at=event.at,
                    kind=event.kind,
                    member=event.member,
                    item=event.item,
                    version=event.version,
                    title=titles[event.version],
                )
            done.append(event)
        return sorted(done, key=lambda e: (e.at, e.kind, e.member, e.version or b""))
