"""Vector checks for feeds (SPEC.md 12.4, kind ``feed``).

A ``verify``, ``withholding`` or ``seen_conflicts`` case is run with the entries in the
given order and again reversed: the answer must be the same both times, and equal to the
expected one (every field of every item, no more and no fewer).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from protocol.checks import Case, Checker, VectorMismatch, expect
from protocol.checks.helpers import dispatch, expect_outcome, hex_list, hex_map, unhex
from protocol.entry import Entry
from protocol.errors import AccordError
from protocol.feeds import (
    FeedVerifier,
    ForkProof,
    causal_ranks,
    find_rollback,
    find_seen_conflicts,
    find_withholding,
    verify_fork_proof,
)


def _report(
    space: bytes, device: bytes, raws: list[bytes], order: list[int]
) -> tuple[dict[str, Any], set[tuple[int, str]]]:
    verifier = FeedVerifier(space=space, device=device)
    rejected: set[tuple[int, str]] = set()
    for index in order:
        try:
            verifier.add(Entry.from_bytes(raws[index]))
        except AccordError as error:
            rejected.add((index, error.code.value))
    report = verifier.report()
    return {
        "head": report.head,
        "head_id": None if report.head_id is None else report.head_id.hex(),
        "gap": [list(r) for r in report.gap.missing] if report.gap else [],
        "broken": [link.seq for link in report.broken],
        "forks": [
            [fork.seq, *(Entry.from_bytes(raw).id.hex() for raw in (fork.first, fork.second))]
            for fork in report.forks
        ],
    }, rejected


def _verify(case: Case) -> None:
    space, device = unhex(case["space"], "space"), unhex(case["device"], "device")
    raws = hex_list(case["entries"], "entries")
    want = dict(case["expect"])
    want_rejected = {(index, code) for index, code in want.pop("rejected")}
    for name, order in [
        ("given", list(range(len(raws)))),
        ("reversed", list(range(len(raws)))[::-1]),
    ]:
        got, rejected = _report(space, device, raws, order)
        for field, value in want.items():
            expect(got.get(field) == value, f"{name} order: {field} is {got.get(field)!r}")
        expect(rejected == want_rejected, f"{name} order: rejected {sorted(rejected)}")
    for fork in _report(space, device, raws, list(range(len(raws))))[0]["forks"]:
        expect(len(fork) == 3, "a fork is [seq, first id, second id]")


def _fork_proof(case: Case) -> None:
    def attempt() -> None:
        verify_fork_proof(ForkProof.from_bytes(unhex(case["proof"], "proof")))

    def check(_: None, want: Mapping[str, Any]) -> None:
        expect(want.get("valid") is True, "the proof verified but the case expects no result")

    expect_outcome(case, attempt, check)


def _ranks(case: Case) -> None:
    entries = [Entry.from_bytes(raw) for raw in hex_list(case["entries"], "entries")]
    want = {unhex(k, "entry id"): v for k, v in case["expect"].items()}
    expect(causal_ranks(entries) == want, "ranks differ")
    expect(causal_ranks(entries[::-1]) == want, "ranks differ in reversed order")


def _entries(case: Case) -> list[Entry]:
    return [Entry.from_bytes(raw) for raw in hex_list(case["entries"], "entries")]


def _as_json(items: object) -> list[dict[str, Any]]:
    if not isinstance(items, tuple):
        raise VectorMismatch("internal: expected a tuple")
    rows = []
    for item in items:
        fields = {name: getattr(item, name) for name in item.__slots__}
        rows.append({k: v.hex() if isinstance(v, bytes) else v for k, v in fields.items()})
    return rows


def _compare_rows(got: list[dict[str, Any]], want: object, what: str) -> None:
    if not isinstance(want, list):
        raise VectorMismatch("expect must be an array")
    expect(len(got) == len(want), f"{what}: {len(got)} items, expected {len(want)}")
    for index, (row, wanted) in enumerate(zip(got, want, strict=True)):
        expect(isinstance(wanted, dict), f"{what}: item {index} must be an object")
        expect(set(row) == set(wanted), f"{what}: item {index} has the fields {sorted(row)}")
        for field, value in wanted.items():
            expect(row.get(field) == value, f"{what}: item {index}: {field} is {row.get(field)!r}")


def _withholding(case: Case) -> None:
    entries, have = _entries(case), hex_map(case["have"], "have")
    for order, held in [("given", entries), ("reversed", entries[::-1])]:
        _compare_rows(
            _as_json(find_withholding(held, have)), case["expect"], f"withholding, {order} order"
        )


def _rollback(case: Case) -> None:
    found = find_rollback(hex_map(case["stored"], "stored"), hex_map(case["reported"], "reported"))
    _compare_rows(_as_json(found), case["expect"], "rollback")


def _seen_conflicts(case: Case) -> None:
    entries = _entries(case)
    for order, held in [("given", entries), ("reversed", entries[::-1])]:
        _compare_rows(
            _as_json(find_seen_conflicts(held)), case["expect"], f"conflicts, {order} order"
        )


CHECKERS: dict[str, Checker] = {
    "feed": dispatch(
        {
            "verify": _verify,
            "fork_proof": _fork_proof,
            "ranks": _ranks,
            "withholding": _withholding,
            "rollback": _rollback,
            "seen_conflicts": _seen_conflicts,
        }
    ),
}
