"""The agreement rule (DESIGN.md 4.1, SPEC.md section 8): one pure function.

Theory of operation. :func:`evaluate` takes the current members, ``now`` and every
verified record (versions, affirmations, pauses, resumes) and returns, for each item
that has at least one known version, its status, the level in force, its heads, who
each head waits for, the last agreed versions and each member's stance; and which
members have an active pause.

* Inputs are treated as **sets**. Records are de-duplicated by value (versions by id)
  and every output is sorted, so the answer is the same for any arrival order and
  any number of duplicate deliveries.
* Each item is evaluated on its own: only versions whose ``item`` is that item, and
  only affirmations whose ``item`` and ``version`` both match a version of it, are
  looked at. A parent id that is not a known version **of the same item** is absent.
* Authorship is the caller's duty: a version or affirmation by member ``m`` must be
  passed only when it came from ``m``'s voice document (SPEC.md 7). The rule then
  counts endorsements only by members in ``members``. Versions of former members
  stay in the version graph (they shape the heads, so removing a member never widens
  an item) but endorse nothing; pauses of former members do not count.
* Nothing here reads a clock: ``now`` is an input.

Definitions, as numbered in SPEC.md 8.3:

1. endorsement: ``m`` authored ``v`` (and ``v``'s own ``expires_at`` is live) or holds
   a live affirmation of ``v``; live means no expiry or ``now < expires_at``;
2. agreed version: endorsed by every member;
3. heads: known versions that no known version names as a parent;
4. stance(m): the minimum level over the maximal versions ``m`` endorses, ``no`` if none;
5. last agreed: the maximal agreed versions among the ancestors of the heads;
6. status: agreed when there is exactly one head and it is agreed;
7. level in force: ``no`` while any member's pause is active; else the head's level
   when agreed; else the minimum over the heads, every stance and last agreed (with
   ``no`` added when last agreed is empty);
8. waiting for: per head, the members who do not endorse it;
9. pause: active while one of the member's pauses is not lifted by one of the same
   member's resumes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from protocol.agreement_records import (
    MAX_LIFTS,
    MAX_PARENTS,
    MAX_RECORD_BYTES,
    RECORD_FORMAT_VERSION,
    RECORD_ID_BYTES,
    VERSION_ID_BYTES,
    Affirmation,
    Kind,
    Level,
    Pause,
    Record,
    RecordType,
    Resume,
    Version,
    VersionContent,
    draft_version,
    is_live,
    new_record_id,
    record_from_bytes,
    record_from_map,
    verify_version,
    version_id,
)
from protocol.crypto import MEMBER_ID_BYTES
from protocol.errors import UsageError

__all__ = [
    "MAX_LIFTS",
    "MAX_PARENTS",
    "MAX_RECORD_BYTES",
    "RECORD_FORMAT_VERSION",
    "RECORD_ID_BYTES",
    "VERSION_ID_BYTES",
    "Affirmation",
    "ItemState",
    "Kind",
    "Level",
    "Pause",
    "Record",
    "RecordType",
    "Resume",
    "RuleResult",
    "Status",
    "Version",
    "VersionContent",
    "active_pauses",
    "draft_version",
    "evaluate",
    "is_live",
    "new_record_id",
    "next_expiry",
    "record_from_bytes",
    "record_from_map",
    "verify_version",
    "version_id",
]


class Status(StrEnum):
    """An item's status (SPEC.md 8.3, definition 6)."""

    AGREED = "agreed"
    PENDING = "pending"


@dataclass(frozen=True, slots=True, kw_only=True)
class ItemState:
    """The rule's answer for one item. Every id list is sorted bytewise."""

    item: bytes
    status: Status
    level: Level  # the level in force, pauses included
    heads: tuple[bytes, ...]
    #: For each head, the members who do not endorse it (empty when all do).
    waiting_for: Mapping[bytes, tuple[bytes, ...]]
    last_agreed: tuple[bytes, ...]
    #: Each current member's stance on this item.
    stances: Mapping[bytes, Level]


@dataclass(frozen=True, slots=True, kw_only=True)
class RuleResult:
    """The rule's answer for a whole space."""

    #: Every item with at least one known version, by item id (in sorted order).
    items: Mapping[bytes, ItemState]
    #: The current members whose pause is active, sorted bytewise.
    paused: tuple[bytes, ...]

    def level_in_force(self, item: bytes) -> Level:
        """The level in force of ``item``: ``no`` for an item with no known version."""
        state = self.items.get(item)
        return state.level if state is not None else Level.NO


def evaluate(
    *,
    members: Iterable[bytes],
    versions: Iterable[Version],
    affirmations: Iterable[Affirmation] = (),
    pauses: Iterable[Pause] = (),
    resumes: Iterable[Resume] = (),
    now: int,
) -> RuleResult:
    """Apply the agreement rule to a set of verified records (SPEC.md 8.3).

    The caller has already checked authorship: every version and affirmation by a
    member came from that member's voice document.

    Raises:
        UsageError: ``members`` is empty or holds something that is not a 16-byte
            member id, a record is not of its expected class, or ``now`` is not an
            integer.
    """
    member_set = _check_members(members)
    if not isinstance(now, int) or isinstance(now, bool):
        raise UsageError("now must be an integer (ms since the Unix epoch)")
    by_item: dict[bytes, dict[bytes, Version]] = {}
    for version in versions:
        if not isinstance(version, Version):
            raise UsageError("versions must be Version records")
        by_item.setdefault(version.item, {})[version.id] = version
    affirmations_by_item: dict[bytes, set[Affirmation]] = {}
    for affirmation in affirmations:
        if not isinstance(affirmation, Affirmation):
            raise UsageError("affirmations must be Affirmation records")
        affirmations_by_item.setdefault(affirmation.item, set()).add(affirmation)
    paused = active_pauses(members=member_set, pauses=pauses, resumes=resumes)
    items = {
        item: _evaluate_item(
            item=item,
            members=member_set,
            known=by_item[item],
            affirmations=affirmations_by_item.get(item, set()),
            paused=bool(paused),
            now=now,
        )
        for item in sorted(by_item)
    }
    return RuleResult(items=items, paused=paused)


def active_pauses(
    *, members: Iterable[bytes], pauses: Iterable[Pause], resumes: Iterable[Resume]
) -> tuple[bytes, ...]:
    """The current members with an active pause, sorted (SPEC.md 8.3, definition 9).

    A pause is lifted only by a resume of the same member that names its id;
    restriction wins over everything else.

    Raises:
        UsageError: a record is not of its expected class, or a member id is not 16 bytes.
    """
    member_set = _check_members(members, allow_empty=True)
    lifted: set[tuple[bytes, bytes]] = set()
    for resume in resumes:
        if not isinstance(resume, Resume):
            raise UsageError("resumes must be Resume records")
        lifted.update((resume.member, pause_id) for pause_id in resume.lifts)
    active: set[bytes] = set()
    for pause in pauses:
        if not isinstance(pause, Pause):
            raise UsageError("pauses must be Pause records")
        if pause.member in member_set and (pause.member, pause.id) not in lifted:
            active.add(pause.member)
    return tuple(sorted(active))


def next_expiry(
    *, versions: Iterable[Version], affirmations: Iterable[Affirmation], now: int
) -> int | None:
    """The earliest ``expires_at`` after ``now``, or None: when to evaluate again.

    Until then the answer of :func:`evaluate` cannot change unless records arrive or
    the member set changes (SPEC.md 8.3).
    """
    instants = [v.content.expires_at for v in versions]
    instants.extend(a.expires_at for a in affirmations)
    return min((t for t in instants if t is not None and t > now), default=None)


def _check_members(members: Iterable[bytes], *, allow_empty: bool = False) -> frozenset[bytes]:
    try:
        member_set = frozenset(members)
    except TypeError:
        raise UsageError("members must be member ids (bytes)") from None
    if not member_set and not allow_empty:
        raise UsageError("a space has at least one member")
    for member in member_set:
        if not isinstance(member, bytes) or len(member) != MEMBER_ID_BYTES:
            raise UsageError(f"a member id is {MEMBER_ID_BYTES} bytes")
    return member_set


def _evaluate_item(
    *,
    item: bytes,
    members: frozenset[bytes],
    known: Mapping[bytes, Version],
    affirmations: set[Affirmation],
    paused: bool,
    now: int,
) -> ItemState:
    # Definition 3: heads, and ancestors* through known parents only.
    named = {parent for version in known.values() for parent in version.parents}
    heads = tuple(sorted(vid for vid in known if vid not in named))
    ancestors = _ancestor_sets(known)

    # Definition 1: endorsement, per member.
    endorsed: dict[bytes, set[bytes]] = {member: set() for member in members}
    for vid, version in known.items():
        if version.author in members and is_live(version.content.expires_at, now):
            endorsed[version.author].add(vid)
    for affirmation in affirmations:
        if (
            affirmation.member in members
            and affirmation.version in known
            and is_live(affirmation.expires_at, now)
        ):
            endorsed[affirmation.member].add(affirmation.version)

    def level_of(vid: bytes) -> Level:
        return known[vid].level

    # Definition 4: stance.
    stances = {
        member: min(
            (level_of(vid) for vid in _maximal(endorsed[member], ancestors)), default=Level.NO
        )
        for member in sorted(members)
    }

    # Definition 2 and 5: agreed versions, and the last agreed.
    agreed = {vid for vid in known if all(vid in endorsed[member] for member in members)}
    below_heads = set().union(*(ancestors[head] for head in heads))
    last_agreed = tuple(sorted(_maximal(agreed & below_heads, ancestors)))

    # Definition 6: status.
    is_agreed = len(heads) == 1 and heads[0] in agreed
    status = Status.AGREED if is_agreed else Status.PENDING

    # Definition 7: level in force.
    if paused:
        level = Level.NO
    elif is_agreed:
        level = level_of(heads[0])
    else:
        candidates = [level_of(head) for head in heads]
        candidates.extend(stances.values())
        candidates.extend(level_of(vid) for vid in last_agreed)
        if not last_agreed:
            candidates.append(Level.NO)
        level = min(candidates)

    # Definition 8: waiting for.
    waiting_for = {
        head: tuple(sorted(m for m in members if head not in endorsed[m])) for head in heads
    }
    return ItemState(
        item=item,
        status=status,
        level=level,
        heads=heads,
        waiting_for=waiting_for,
        last_agreed=last_agreed,
        stances=stances,
    )


def _ancestor_sets(known: Mapping[bytes, Version]) -> dict[bytes, frozenset[bytes]]:
    """``ancestors*(v)`` for every known ``v``: itself and all it reaches via known parents.

    Walks the graph from its roots (Kahn's order), so a long history cannot exhaust
    the stack. Version ids hash content that includes the parents, so there are no
    cycles; a version caught in one anyway would get only itself.
    """
    children: dict[bytes, list[bytes]] = {vid: [] for vid in known}
    waiting: dict[bytes, int] = {}
    for vid, version in known.items():
        known_parents = [parent for parent in version.parents if parent in known]
        waiting[vid] = len(known_parents)
        for parent in known_parents:
            children[parent].append(vid)
    ready = [vid for vid, count in waiting.items() if count == 0]
    result: dict[bytes, frozenset[bytes]] = {}
    while ready:
        vid = ready.pop()
        reach = {vid}
        for parent in known[vid].parents:
            reach |= result.get(parent, frozenset())
        result[vid] = frozenset(reach)
        for child in children[vid]:
            waiting[child] -= 1
            if waiting[child] == 0:
                ready.append(child)
    for vid in known:
        result.setdefault(vid, frozenset({vid}))
    return result


def _maximal(chosen: set[bytes], ancestors: Mapping[bytes, frozenset[bytes]]) -> set[bytes]:
    """The versions of ``chosen`` that are not a proper ancestor of another one in it."""
    covered: set[bytes] = set()
    for vid in chosen:
        covered |= ancestors[vid] - {vid}
    return chosen - covered
