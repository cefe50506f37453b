"""Feeds: the verifier, fork proofs, causal ranks, withholding and rollback."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.entry import Entry
from protocol.errors import (
    BadSignatureError,
    BrokenChainError,
    FeedGapError,
    ForkError,
    MalformedError,
    UsageError,
    WrongSpaceError,
)
from protocol.feeds import (
    FeedVerifier,
    ForkProof,
    causal_order,
    causal_ranks,
    find_rollback,
    find_seen_conflicts,
    find_withholding,
    verify_fork_proof,
)
from protocol.vectors.generate import OTHER_SPACE, SPACE, Author, fixed, sign_as

ALICE = Author("test-feed-alice")
FEED = [ALICE.data(f"entry {i}") for i in range(1, 9)]
_TWIN = Author("test-feed-alice")
for _i in range(1, 4):
    _TWIN.data(f"entry {_i}")
FORK_4 = _TWIN.data("the other entry 4")


def verifier() -> FeedVerifier:
    return FeedVerifier(space=SPACE, device=ALICE.public)


def test_in_order_entries_are_released_one_by_one() -> None:
    v = verifier()
    for entry in FEED:
        assert v.add(entry) == (entry,)
    report = v.report()
    assert (report.head, report.head_id, report.ok, report.problems) == (8, FEED[-1].id, True, ())
    assert v.chain() == tuple(FEED)


def test_out_of_order_entries_wait_for_the_gap() -> None:
    v = verifier()
    assert v.add(FEED[2]) == ()
    assert v.add(FEED[1]) == ()
    gap = v.report().gap
    assert gap is not None and gap.missing == ((1, 1),) and gap.missing_count == 1
    assert v.add(FEED[0]) == (FEED[0], FEED[1], FEED[2])
    assert v.report().gap is None
    assert v.add(FEED[0]) == ()  # a repeat changes nothing


def test_a_gap_of_a_billion_seqs_costs_nothing() -> None:
    far = dataclasses.replace(FEED[1], seq=10**9, sig=b"")
    far = sign_as(ALICE.key, far)
    v = verifier()
    v.add(FEED[0])
    v.add(far)
    gap = v.report().gap
    assert gap is not None and gap.missing == ((2, 10**9 - 1),)
    with pytest.raises(FeedGapError):
        v.report().raise_for_problems()
    assert "2 to 999999999" in gap.describe()


def test_a_broken_link_stops_the_chain() -> None:
    stray = sign_as(ALICE.key, dataclasses.replace(FEED[2], prev=fixed("id/other"), sig=b""))
    v = verifier()
    v.add(FEED[0])
    v.add(FEED[1])
    assert v.add(stray) == ()
    report = v.report()
    assert report.head == 2 and not report.ok
    assert [(b.seq, b.prev, b.expected) for b in report.broken] == [
        (3, fixed("id/other"), FEED[1].id)
    ]
    with pytest.raises(BrokenChainError):
        report.raise_for_problems()


def test_a_fork_is_reported_with_a_proof_anyone_can_check() -> None:
    v = verifier()
    for entry in FEED[:5]:
        v.add(entry)
    assert v.add(FORK_4) == ()
    assert v.add(FEED[5]) == ()  # the feed no longer advances
    report = v.report()
    assert report.head == 3
    (proof,) = report.forks
    assert proof.seq == 4 and proof.device == ALICE.public
    verify_fork_proof(ForkProof.from_bytes(proof.to_bytes()))
    assert {Entry.from_bytes(proof.first).id, Entry.from_bytes(proof.second).id} == {
        FEED[3].id,
        FORK_4.id,
    }
    with pytest.raises(ForkError):
        report.raise_for_problems()
    words = proof.describe({ALICE.public: "Alex's phone"})
    assert words.startswith("Alex's phone signed two different entries as number 4")


def test_fork_proofs_that_prove_nothing_are_refused() -> None:
    with pytest.raises(UsageError):
        ForkProof.of(FEED[3], FEED[3])
    with pytest.raises(UsageError):
        ForkProof.of(FEED[3], FEED[4])
    proof = ForkProof.of(FEED[3], FORK_4)
    with pytest.raises(MalformedError):
        verify_fork_proof(ForkProof(first=proof.second, second=proof.first))
    forged = dataclasses.replace(FORK_4, sig=bytes(64))
    with pytest.raises(BadSignatureError):
        verify_fork_proof(ForkProof.of(FEED[3], forged))


def test_bad_entries_are_refused_and_not_kept() -> None:
    v = verifier()
    with pytest.raises(BadSignatureError):
        v.add(dataclasses.replace(FEED[0], sig=bytes(64)))
    with pytest.raises(WrongSpaceError):
        v.add(Author("test-feed-alice", space=OTHER_SPACE).data("x"))
    with pytest.raises(UsageError):
        v.add(Author("someone else").data("x"))
    assert v.report().held == 0
    assert v.add(FEED[0]) == (FEED[0],)


@settings(max_examples=60, deadline=None)
@given(st.permutations([*FEED, FORK_4, FEED[2], FEED[6]]), st.integers(0, 10))
def test_the_report_does_not_depend_on_arrival_order(arrival: list[Entry], drop: int) -> None:
    held = [e for i, e in enumerate(arrival) if i != drop]
    first, second = verifier(), verifier()
    for entry in held:
        first.add(entry)
    for entry in sorted(held, key=lambda e: (e.seq, e.id)):
        second.add(entry)
    assert first.report() == second.report()


# -- causal order --------------------------------------------------------------------


def _two_feeds() -> list[Entry]:
    a, b = Author("rank-a"), Author("rank-b")
    out = [a.data("a1"), b.data("b1")]
    out.append(b.data("b2", seen=(a.at(),)))
    out.append(a.data("a2", seen=(b.at(),)))
    out.append(a.data("a3"))
    out.append(b.data("b3", seen=(a.at(),)))
    return out


def test_ranks_follow_prev_and_seen() -> None:
    a1, b1, b2, a2, a3, b3 = _two_feeds()
    ranks = causal_ranks([b3, a3, a2, b2, b1, a1])
    assert [ranks[e.id] for e in (a1, b1, b2, a2, a3, b3)] == [1, 1, 2, 3, 4, 5]
    order = causal_order([b3, a3, a2, b2, b1, a1])
    assert order.index(a2) > order.index(b2) > order.index(a1)


def test_an_entry_naming_an_unknown_entry_waits() -> None:
    a1, b1, _b2, a2, a3, b3 = _two_feeds()
    ranks = causal_ranks([a1, b1, a2, a3, b3])  # b2 missing
    assert set(ranks) == {a1.id, b1.id}


def test_a_seen_head_naming_the_wrong_position_is_not_ranked() -> None:
    a, b = Author("pos-a"), Author("pos-b")
    a1 = a.data("a1")
    lie = dataclasses.replace(a.at(), seq=2)  # names a1's id as seq 2
    b1 = b.data("b1", seen=(lie,))
    assert set(causal_ranks([a1, b1])) == {a1.id}


@settings(max_examples=40, deadline=None)
@given(st.permutations(_two_feeds()))
def test_ranks_do_not_depend_on_order(entries: list[Entry]) -> None:
    assert causal_ranks(entries) == causal_ranks(_two_feeds())


# -- seen heads ----------------------------------------------------------------------


def test_withholding_names_the_highest_claim() -> None:
    a, b, c = Author("w-a"), Author("w-b"), Author("w-c")
    for i in range(5):
        a.data(f"a{i}")
    b1 = b.data("b1", seen=(a.at(),))  # claims a up to 5
    head3 = dataclasses.replace(a.at(), seq=3)
    c1 = c.data("c1", seen=(head3,))
    found = find_withholding([b1, c1], {a.public: 2})
    assert [(w.device, w.claimed_seq, w.have_seq, w.claimed_by, w.claim_entry) for w in found] == [
        (a.public, 5, 2, b.public, b1.id)
    ]
    assert "5" in found[0].describe() and "2" in found[0].describe()
    assert find_withholding([b1, c1], {a.public: 5}) == ()


def test_rollback_compares_with_our_own_marks() -> None:
    a, b = Author("r-a").public, Author("r-b").public
    found = find_rollback({a: 7, b: 3}, {a: 7, b: 1})
    assert [(r.device, r.stored_seq, r.reported_seq) for r in found] == [(b, 3, 1)]
    assert find_rollback({a: 2}, {})[0].reported_seq == 0
    assert find_rollback({a: 2}, {a: 9}) == ()


def test_a_seen_claim_of_another_entry_is_a_conflict() -> None:
    a, c = Author("sc-a"), Author("sc-c")
    a1 = a.data("a1")
    other = dataclasses.replace(a.at(), id=fixed("id/elsewhere"))
    c1 = c.data("c1", seen=(other,))
    (conflict,) = find_seen_conflicts([a1, c1])
    assert (conflict.device, conflict.seq, conflict.claimed_id, conflict.held_id) == (
        a.public,
        1,
        fixed("id/elsewhere"),
        a1.id,
    )
    assert find_seen_conflicts([c1]) == ()  # nothing held there: no conflict to see


def test_signatures_checked_elsewhere_are_not_checked_again() -> None:
    unsigned_copy = dataclasses.replace(FEED[0], sig=bytes(64))
    trusting = FeedVerifier(space=SPACE, device=ALICE.public, signatures_checked=True)
    assert trusting.add(unsigned_copy) == (unsigned_copy,)  # the caller vouched for it
    with pytest.raises(BadSignatureError):
        verifier().add(unsigned_copy)


def test_every_report_item_has_plain_words() -> None:
    names = {ALICE.public: "Sam's phone"}
    stray = sign_as(ALICE.key, dataclasses.replace(FEED[2], prev=fixed("id/x"), sig=b""))
    v = verifier()
    for entry in (FEED[0], FEED[1], stray, FEED[5]):
        v.add(entry)
    report = v.report()
    texts = [problem.describe(names) for problem in report.problems]
    assert len(texts) == 2 and all("Sam's phone" in text for text in texts)
    b = Author("words-b")
    claim = b.data("b1", seen=(ALICE.at(),))
    for item in (
        *find_withholding([claim], {}),
        *find_rollback({ALICE.public: 9}, {ALICE.public: 2}),
    ):
        text = item.describe(names)
        assert "Sam's phone" in text and text[0].isupper()
    with pytest.raises(MalformedError):
        ForkProof(first="not bytes", second=b"")  # type: ignore[arg-type]
