"""Property-based tests of the agreement rule and its record decoders (hypothesis).

Histories are random: up to three members (plus a former member), two items, versions
whose parents are any earlier versions of the same item, affirmations that may expire
or name the wrong item, pauses whose ids collide across members, and resumes by anyone.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import encoding
from protocol.agreement import (
    Affirmation,
    Kind,
    Level,
    Pause,
    Resume,
    RuleResult,
    Status,
    Version,
    VersionContent,
    active_pauses,
    draft_version,
    evaluate,
    is_live,
    record_from_bytes,
)
from protocol.errors import (
    MalformedError,
    OversizedError,
    ProtocolError,
    UnsupportedVersionError,
    VersionIdMismatchError,
)

MEMBERS = [bytes([0xA0 + i]) * 16 for i in range(3)]
FORMER = bytes([0xF0]) * 16
ITEMS = [bytes([0x10 + i]) * 16 for i in range(2)]
PAUSE_IDS = [bytes([0x50 + i]) * 16 for i in range(3)]
DOCUMENTED_ERRORS = (
    MalformedError,
    OversizedError,
    UnsupportedVersionError,
    VersionIdMismatchError,
)
EXAMPLES = settings(max_examples=200, deadline=None)
FEW = settings(max_examples=60, deadline=None)


@dataclass
class History:
    members: list[bytes]
    now: int
    versions: list[Version] = field(default_factory=list)
    affirmations: list[Affirmation] = field(default_factory=list)
    pauses: list[Pause] = field(default_factory=list)
    resumes: list[Resume] = field(default_factory=list)

    def evaluate(self, **changes: Any) -> RuleResult:
        inputs: dict[str, Any] = {
            "members": self.members,
            "versions": self.versions,
            "affirmations": self.affirmations,
            "pauses": self.pauses,
            "resumes": self.resumes,
            "now": self.now,
        }
        inputs.update(changes)
        return evaluate(**inputs)


levels = st.sampled_from(list(Level))
expiries = st.none() | st.integers(0, 2000)


@st.composite
def histories(draw: st.DrawFn) -> History:
    members = MEMBERS[: draw(st.integers(1, 3))]
    people = [*members, FORMER] if draw(st.booleans()) else list(members)
    history = History(members=members, now=draw(st.integers(0, 2000)))
    for step in range(draw(st.integers(0, 14))):
        action = draw(
            st.sampled_from(["version", "version", "affirm", "affirm", "pause", "resume"])
        )
        if action == "version":
            item = draw(st.sampled_from(ITEMS))
            known = [v for v in history.versions if v.item == item]
            parents = draw(st.lists(st.sampled_from(known), unique=True)) if known else []
            history.versions.append(
                draft_version(
                    item=item,
                    kind=Kind.LIMIT,
                    level=draw(levels),
                    title=f"step {step}",
                    author=draw(st.sampled_from(people)),
                    created_at=step,
                    parents=[p.id for p in parents],
                    expires_at=draw(st.none() | expiries),
                )
            )
        elif action == "affirm" and history.versions:
            target = draw(st.sampled_from(history.versions))
            wrong_item = draw(st.integers(0, 9)) == 0
            history.affirmations.append(
                Affirmation(
                    member=draw(st.sampled_from(people)),
                    version=target.id,
                    item=ITEMS[1] if wrong_item and target.item == ITEMS[0] else target.item,
                    at=step,
                    expires_at=draw(expiries),
                )
            )
        elif action == "pause":
            member = draw(st.sampled_from(people))
            history.pauses.append(
                Pause(member=member, id=draw(st.sampled_from(PAUSE_IDS)), at=step)
            )
        elif action == "resume":
            lifts = draw(st.lists(st.sampled_from(PAUSE_IDS), min_size=1, unique=True))
            history.resumes.append(
                Resume(
                    member=draw(st.sampled_from(people)),
                    id=bytes([step]) * 16,
                    at=step,
                    lifts=tuple(sorted(lifts)),
                )
            )
    return history


# -- a direct transcription of SPEC.md 8.3, as an oracle ----------------------------------


def oracle(history: History) -> dict[bytes, tuple[Status, Level, set[bytes], set[bytes]]]:
    """Per item: status, level, heads and last agreed, by brute force from the definitions."""
    members = set(history.members)
    paused = any(
        p.member in members
        and not any(r.member == p.member and p.id in r.lifts for r in history.resumes)
        for p in history.pauses
    )
    answer = {}
    for item in {v.item for v in history.versions}:
        known = {v.id: v for v in history.versions if v.item == item}

        def ancestors(vid: bytes, known: dict[bytes, Version] = known) -> set[bytes]:
            found = {vid}
            for parent in known[vid].parents:
                if parent in known:
                    found |= ancestors(parent)
            return found

        def endorses(m: bytes, vid: bytes, known: dict[bytes, Version] = known) -> bool:
            v = known[vid]
            if v.author == m and is_live(v.content.expires_at, history.now):
                return True
            return any(
                a.member == m
                and a.version == vid
                and a.item == v.item
                and is_live(a.expires_at, history.now)
                for a in history.affirmations
            )

        def maximal(chosen: set[bytes]) -> set[bytes]:
            return {v for v in chosen if not any(v in ancestors(w) - {w} for w in chosen)}

        heads = {vid for vid in known if not any(vid in v.parents for v in known.values())}
        agreed = {vid for vid in known if all(endorses(m, vid) for m in members)}
        reachable = set().union(*(ancestors(h) for h in heads))
        last_agreed = maximal(agreed & reachable)
        stances = [
            min(
                (known[v].level for v in maximal({v for v in known if endorses(m, v)})),
                default=Level.NO,
            )
            for m in members
        ]
        is_agreed = len(heads) == 1 and heads <= agreed
        if paused:
            level = Level.NO
        elif is_agreed:
            level = known[next(iter(heads))].level
        else:
            pool = [known[h].level for h in heads] + stances + [known[v].level for v in last_agreed]
            level = min(pool + ([Level.NO] if not last_agreed else []))
        status = Status.AGREED if is_agreed else Status.PENDING
        answer[item] = (status, level, heads, last_agreed)
    return answer


@EXAMPLES
@given(histories())
def test_the_rule_matches_a_direct_transcription_of_the_spec(history: History) -> None:
    result = history.evaluate()
    expected = oracle(history)
    assert set(result.items) == set(expected)
    for item, (status, level, heads, last_agreed) in expected.items():
        state = result.items[item]
        assert (state.status, state.level) == (status, level)
        assert set(state.heads) == heads
        assert set(state.last_agreed) == last_agreed


@EXAMPLES
@given(histories(), st.randoms(use_true_random=False), st.integers(1, 3))
def test_same_answer_for_any_order_and_duplication(
    history: History, rng: random.Random, copies: int
) -> None:
    def shuffled(records: list[Any]) -> list[Any]:
        out = records * copies + rng.sample(records, k=min(len(records), 2))
        rng.shuffle(out)
        return out

    baseline = history.evaluate()
    again = history.evaluate(
        members=shuffled(history.members),
        versions=shuffled(history.versions),
        affirmations=shuffled(history.affirmations),
        pauses=shuffled(history.pauses),
        resumes=shuffled(history.resumes),
    )
    assert again == baseline


@EXAMPLES
@given(histories(), st.data())
def test_a_no_written_as_a_child_of_every_head_is_in_force_at_once(
    history: History, data: st.DataObject
) -> None:
    author = data.draw(st.sampled_from(history.members))
    item = data.draw(st.sampled_from(ITEMS))
    heads = history.evaluate().items.get(item)
    no = draft_version(
        item=item,
        kind=Kind.LIMIT,
        level=Level.NO,
        title="no, now",
        author=author,
        created_at=10**6,
        parents=heads.heads if heads is not None else (),
    )
    after = history.evaluate(versions=[*history.versions, no])
    assert after.items[item].level is Level.NO
    assert after.items[item].stances[author] is Level.NO


@EXAMPLES
@given(histories(), st.data())
def test_a_no_over_everything_its_author_endorses_is_in_force_at_once(
    history: History, data: st.DataObject
) -> None:
    """The no names only what its author endorses (not the other heads): their stance."""
    author = data.draw(st.sampled_from(history.members))
    item = data.draw(st.sampled_from(ITEMS))
    endorsed = [
        v.id
        for v in history.versions
        if v.item == item
        and (
            (v.author == author and is_live(v.content.expires_at, history.now))
            or any(
                a.member == author
                and a.version == v.id
                and a.item == item
                and is_live(a.expires_at, history.now)
                for a in history.affirmations
            )
        )
    ]
    no = draft_version(
        item=item,
        kind=Kind.LIMIT,
        level=Level.NO,
        title="my no",
        author=author,
        created_at=10**6,
        parents=endorsed,
    )
    after = history.evaluate(versions=[*history.versions, no])
    assert after.items[item].stances[author] is Level.NO
    assert after.items[item].level is Level.NO


@EXAMPLES
@given(histories())
def test_an_agreed_head_is_endorsed_by_every_member_for_exactly_that_version(
    history: History,
) -> None:
    """So an affirmation of any other (older) version can never make an item agreed."""
    for state in history.evaluate().items.values():
        if state.status is not Status.AGREED:
            continue
        (head_id,) = state.heads
        head = next(v for v in history.versions if v.id == head_id)
        for member in history.members:
            authored = head.author == member and is_live(head.content.expires_at, history.now)
            affirmed = any(
                a.member == member
                and a.version == head_id
                and a.item == head.item
                and is_live(a.expires_at, history.now)
                for a in history.affirmations
            )
            assert authored or affirmed


@EXAMPLES
@given(histories(), st.data())
def test_stale_affirmations_never_make_a_new_version_agreed(
    history: History, data: st.DataObject
) -> None:
    """Everyone affirms every version there is; then one member writes a child. Pending."""
    if len(history.members) < 2:
        return
    author = data.draw(st.sampled_from(history.members))
    item = data.draw(st.sampled_from(ITEMS))
    known = [v for v in history.versions if v.item == item]
    everything = [
        Affirmation(member=m, version=v.id, item=v.item, at=0)
        for v in known
        for m in history.members
    ]
    child = draft_version(
        item=item,
        kind=Kind.LIMIT,
        level=data.draw(levels),
        title="new",
        author=author,
        created_at=10**6,
        parents=[v.id for v in known],
    )
    after = history.evaluate(
        versions=[*history.versions, child],
        affirmations=[*history.affirmations, *everything],
    )
    state = after.items[item]
    assert state.status is Status.PENDING
    assert state.heads == (child.id,)
    assert list(state.waiting_for[child.id]) == sorted(m for m in history.members if m != author)


@EXAMPLES
@given(histories())
def test_the_level_in_force_is_never_above_a_head_a_stance_or_the_last_agreed(
    history: History,
) -> None:
    result = history.evaluate()
    for state in result.items.values():
        levels_of = {v.id: v.level for v in history.versions}
        assert all(state.level <= levels_of[h] for h in state.heads)
        assert all(state.level <= stance for stance in state.stances.values())
        if state.status is Status.PENDING:
            assert all(state.level <= levels_of[v] for v in state.last_agreed)
            if not state.last_agreed:
                assert state.level is Level.NO
        if result.paused:
            assert state.level is Level.NO


@EXAMPLES
@given(histories(), st.data())
def test_only_the_owner_lifts_a_pause(history: History, data: st.DataObject) -> None:
    before = active_pauses(members=history.members, pauses=history.pauses, resumes=history.resumes)
    # Anyone else naming every pause id changes nothing for a paused member.
    for owner in before:
        others = [m for m in [*MEMBERS, FORMER] if m != owner]
        if not others:
            continue
        intruder = data.draw(st.sampled_from(others))
        forged = Resume(member=intruder, id=b"\xee" * 16, at=0, lifts=tuple(PAUSE_IDS))
        after = active_pauses(
            members=history.members, pauses=history.pauses, resumes=[*history.resumes, forged]
        )
        assert owner in after
    # And the owner, naming all their own pauses, does lift them.
    for owner in before:
        own = Resume(member=owner, id=b"\xef" * 16, at=0, lifts=tuple(PAUSE_IDS))
        after = active_pauses(
            members=history.members, pauses=history.pauses, resumes=[*history.resumes, own]
        )
        assert owner not in after


# -- records: round trips and decoder fuzzing ------------------------------------------

ids16 = st.binary(min_size=16, max_size=16)
ids32 = st.binary(min_size=32, max_size=32)
times = st.integers(0, 2**63 - 1)
texts = st.text(min_size=1, max_size=40)
dates = st.dates().map(lambda d: d.isoformat()).filter(lambda s: len(s) == 10)

contents = st.builds(
    VersionContent,
    item=ids16,
    kind=st.sampled_from(list(Kind)),
    level=levels,
    title=texts,
    details=st.text(max_size=80),
    revisit=st.none() | dates,
    parents=st.lists(ids32, max_size=5, unique=True).map(lambda ps: tuple(sorted(ps))),
    author=ids16,
    created_at=times,
    expires_at=st.none() | times,
)
records = st.one_of(
    contents.map(Version.of),
    st.builds(
        Affirmation, member=ids16, version=ids32, item=ids16, at=times, expires_at=st.none() | times
    ),
    st.builds(Pause, member=ids16, id=ids16, at=times),
    st.builds(
        Resume,
        member=ids16,
        id=ids16,
        at=times,
        lifts=st.lists(ids16, min_size=1, max_size=5, unique=True).map(
            lambda ls: tuple(sorted(ls))
        ),
    ),
)


@EXAMPLES
@given(records)
def test_every_record_round_trips(record: Any) -> None:
    data = record.to_bytes()
    assert record_from_bytes(data) == record
    assert type(record).from_bytes(data) == record
    assert type(record).from_map(encoding.decode_map(data)) == record


def _decoders() -> list[Any]:
    return [
        record_from_bytes,
        Version.from_bytes,
        VersionContent.from_bytes,
        Affirmation.from_bytes,
        Pause.from_bytes,
        Resume.from_bytes,
    ]


def _only_documented_errors(data: bytes) -> None:
    for decode in _decoders():
        try:
            decode(data)
        except ProtocolError as exc:
            assert isinstance(exc, DOCUMENTED_ERRORS), type(exc)


@EXAMPLES
@given(st.binary(max_size=300))
def test_random_bytes_raise_only_documented_errors(data: bytes) -> None:
    _only_documented_errors(data)


@EXAMPLES
@given(records, st.data())
def test_mutated_records_raise_only_documented_errors(record: Any, data: st.DataObject) -> None:
    raw = bytearray(record.to_bytes())
    for _ in range(data.draw(st.integers(1, 4))):
        how = data.draw(st.sampled_from(["flip", "insert", "delete", "truncate"]))
        at = data.draw(st.integers(0, max(len(raw) - 1, 0)))
        if how == "flip" and raw:
            raw[at] ^= data.draw(st.integers(1, 255))
        elif how == "insert":
            raw.insert(at, data.draw(st.integers(0, 255)))
        elif how == "delete" and raw:
            del raw[at]
        elif how == "truncate":
            del raw[at:]
    _only_documented_errors(bytes(raw))


@FEW
@given(records, st.data())
def test_maps_with_a_field_replaced_raise_only_documented_errors(
    record: Any, data: st.DataObject
) -> None:
    fields = record.to_map()
    key = data.draw(st.sampled_from(sorted(fields)))
    replacement = data.draw(
        st.none()
        | st.booleans()
        | st.integers(-(2**63), 2**63 - 1)
        | st.binary(max_size=40)
        | st.text(max_size=20)
        | st.lists(st.binary(max_size=33), max_size=3)
        | st.just("__drop__")
    )
    if replacement == "__drop__":
        del fields[key]
    else:
        fields[key] = replacement
    _only_documented_errors(encoding.encode(fields))
