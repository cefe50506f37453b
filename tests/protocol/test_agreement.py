"""The agreement rule and its records: vectors, known answers and edge cases.

The property-based tests live in ``test_agreement_properties.py``.
"""

from __future__ import annotations

import copy
import hashlib
import json
import struct
from pathlib import Path
from typing import Any

import pytest

from protocol import conformance, encoding
from protocol.agreement import (
    Affirmation,
    Kind,
    Level,
    Pause,
    Record,
    Resume,
    Status,
    Version,
    VersionContent,
    active_pauses,
    draft_version,
    evaluate,
    is_live,
    next_expiry,
    record_from_bytes,
    verify_version,
    version_id,
)
from protocol.checks import VectorMismatch
from protocol.checks.rule import check_record_case, check_rule_case, name_id
from protocol.errors import (
    MalformedError,
    OversizedError,
    UnsupportedVersionError,
    UsageError,
    VersionIdMismatchError,
)

VECTORS = Path(__file__).resolve().parents[2] / "protocol" / "vectors"
RULE_FILES = sorted(VECTORS.glob("rule-*.json"))

A = name_id("A")
B = name_id("B")
C = name_id("C")
ITEM = name_id("i1")
ITEM2 = name_id("i2")


def version(
    author: bytes,
    level: Level,
    *parents: Version,
    item: bytes = ITEM,
    at: int = 0,
    title: str = "t",
    expires_at: int | None = None,
) -> Version:
    return draft_version(
        item=item,
        kind=Kind.LIMIT,
        level=level,
        title=title,
        author=author,
        created_at=at,
        parents=[p.id for p in parents],
        expires_at=expires_at,
    )


def affirm(
    member: bytes, target: Version, *, at: int = 0, expires_at: int | None = None
) -> Affirmation:
    return Affirmation(
        member=member, version=target.id, item=target.item, at=at, expires_at=expires_at
    )


# -- vectors ---------------------------------------------------------------------------


def test_there_are_at_least_thirty_rule_cases() -> None:
    count = 0
    for path in RULE_FILES:
        document = json.loads(path.read_text(encoding="utf-8"))
        if document["kind"] == "rule":
            count += len(document["cases"])
    assert count >= 30


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: p.name)
def test_rule_vectors_pass_through_the_conformance_runner(path: Path) -> None:
    passed, failures = conformance.run_file(path, conformance.load_checkers())
    assert failures == []
    assert passed > 0


def test_conformance_main_exits_zero_on_the_rule_vectors(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert conformance.main([str(p) for p in RULE_FILES]) == 0
    assert "0 failed" in capsys.readouterr().out


def _first_case(name: str) -> dict[str, Any]:
    document = json.loads((VECTORS / name).read_text(encoding="utf-8"))
    return copy.deepcopy(document["cases"][0])


@pytest.mark.parametrize(
    "mutate",
    [
        lambda c: c["expect"]["items"]["i1"].update(level="yes"),
        lambda c: c["expect"]["items"]["i1"].update(status="agreed"),
        lambda c: c["expect"]["items"]["i1"].update(heads=[]),
        lambda c: c["expect"]["items"]["i1"].update(last_agreed=["v1"]),
        lambda c: c["expect"]["items"]["i1"].update(waiting_for={"v1": []}),
        lambda c: c["expect"]["items"]["i1"].update(stances={"A": "yes", "B": "yes"}),
        lambda c: c["expect"].update(paused=["A"]),
        lambda c: c["expect"]["items"].update(i2=c["expect"]["items"]["i1"]),
        lambda c: c["expect"]["items"]["i1"].pop("heads"),
        lambda c: c.update(typo=1),
    ],
)
def test_the_rule_checker_catches_a_wrong_expectation(mutate: Any) -> None:
    case = json.loads((VECTORS / "rule-basic.json").read_text(encoding="utf-8"))["cases"][1]
    check_rule_case(copy.deepcopy(case))  # the real one passes
    mutate(case)
    with pytest.raises(VectorMismatch):
        check_rule_case(case)


def test_the_record_checker_catches_a_wrong_id() -> None:
    case = _first_case("rule-records.json")
    check_record_case(copy.deepcopy(case))
    case["version_id"] = "00" * 32
    with pytest.raises(VectorMismatch):
        check_record_case(case)


# -- an independent encoder for the record known answers ----------------------------


def _head(major: int, n: int) -> bytes:
    if n < 24:
        return bytes([major << 5 | n])
    for extra, size, fmt in ((24, 1, ">B"), (25, 2, ">H"), (26, 4, ">I"), (27, 8, ">Q")):
        if n < 1 << (8 * size):
            return bytes([major << 5 | extra]) + struct.pack(fmt, n)
    raise ValueError(n)


def _cbor(value: Any) -> bytes:
    """Deterministic CBOR written from RFC 8949, independent of the project's encoder."""
    if value is None:
        return b"\xf6"
    if value is True or value is False:
        return b"\xf5" if value else b"\xf4"
    if isinstance(value, int):
        return _head(0, value) if value >= 0 else _head(1, -1 - value)
    if isinstance(value, bytes):
        return _head(2, len(value)) + value
    if isinstance(value, str):
        raw = value.encode("utf-8")
        return _head(3, len(raw)) + raw
    if isinstance(value, list):
        return _head(4, len(value)) + b"".join(_cbor(x) for x in value)
    pairs = sorted((_cbor(k), _cbor(v)) for k, v in value.items())
    return _head(5, len(pairs)) + b"".join(k + v for k, v in pairs)


def _from_json(fields: dict[str, Any]) -> dict[str, Any]:
    out = dict(fields)
    for key in ("item", "author", "member", "version", "id"):
        if key in out:
            out[key] = bytes.fromhex(out[key])
    for key in ("parents", "lifts"):
        if key in out:
            out[key] = [bytes.fromhex(x) for x in out[key]]
    return out


def test_record_known_answers_match_an_independent_encoder_and_hash() -> None:
    document = json.loads((VECTORS / "rule-records.json").read_text(encoding="utf-8"))
    checked = 0
    for case in document["cases"]:
        if "record" not in case:
            continue
        encoded = _cbor(_from_json(case["record"]))
        assert encoded.hex() == case["bytes"], case["name"]
        if case["record"]["type"] == "version":
            digest = hashlib.blake2b(
                encoded, digest_size=32, person=b"accord:version".ljust(16, b"\x00")
            ).hexdigest()
            assert digest == case["version_id"], case["name"]
        checked += 1
    assert checked >= 6


# -- records -----------------------------------------------------------------------------


def test_levels_are_ordered_no_ask_yes_not_alphabetically() -> None:
    assert Level.NO < Level.ASK < Level.YES
    assert min(Level.YES, Level.ASK) is Level.ASK
    assert max(Level.NO, Level.ASK) is Level.ASK
    assert sorted([Level.YES, Level.NO, Level.ASK]) == [Level.NO, Level.ASK, Level.YES]
    assert Level.YES >= Level.YES and Level.NO <= Level.NO and Level.YES > Level.NO


def test_version_id_is_the_hash_of_the_content_map() -> None:
    v = version(A, Level.YES)
    assert v.id == version_id(v.content)
    assert verify_version(v.id, v.content) == v
    with pytest.raises(VersionIdMismatchError):
        verify_version(bytes(32), v.content)
    with pytest.raises(VersionIdMismatchError):
        Version(id=version(A, Level.NO).id, content=v.content)
    with pytest.raises(MalformedError):
        verify_version(b"short", v.content)


def test_every_content_field_changes_the_id() -> None:
    base = version(A, Level.YES)
    others = [
        version(B, Level.YES),
        version(A, Level.ASK),
        version(A, Level.YES, item=ITEM2),
        version(A, Level.YES, at=1),
        version(A, Level.YES, title="u"),
        version(A, Level.YES, expires_at=5),
        version(A, Level.YES, base),
    ]
    assert len({base.id, *(o.id for o in others)}) == len(others) + 1


def test_draft_version_sorts_and_deduplicates_parents_but_content_insists() -> None:
    p1, p2 = version(A, Level.YES, title="p1"), version(A, Level.YES, title="p2")
    child = version(A, Level.NO, p2, p1, p2)
    assert child.parents == tuple(sorted({p1.id, p2.id}))
    with pytest.raises(MalformedError):
        VersionContent(**{**_content_fields(child), "parents": tuple(reversed(child.parents))})
    with pytest.raises(MalformedError):
        VersionContent(**{**_content_fields(child), "parents": (p1.id, p1.id)})


def _content_fields(v: Version) -> dict[str, Any]:
    c = v.content
    return {
        "item": c.item,
        "kind": c.kind,
        "level": c.level,
        "title": c.title,
        "details": c.details,
        "revisit": c.revisit,
        "parents": c.parents,
        "author": c.author,
        "created_at": c.created_at,
        "expires_at": c.expires_at,
    }


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("item", b"x" * 15),
        ("kind", "limit"),
        ("level", "no"),
        ("title", ""),
        ("title", "x" * 1025),
        ("title", "\ud800"),
        ("details", "x" * (16 * 1024 + 1)),
        ("revisit", "2025-13-01"),
        ("revisit", "2025-1-01"),
        ("revisit", "２０２５-01-01"),
        ("parents", (b"x" * 31,)),
        ("author", b"x" * 32),
        ("created_at", -1),
        ("created_at", True),
        ("created_at", 2**63),
        ("expires_at", 1.5),
    ],
)
def test_version_content_refuses_bad_fields(field: str, value: Any) -> None:
    fields = _content_fields(version(A, Level.YES))
    fields[field] = value
    with pytest.raises(MalformedError):
        VersionContent(**fields)


def test_revisit_accepts_a_real_date_and_null() -> None:
    fields = _content_fields(version(A, Level.YES))
    assert VersionContent(**{**fields, "revisit": "2024-02-29"}).revisit == "2024-02-29"
    with pytest.raises(MalformedError):
        VersionContent(**{**fields, "revisit": "2023-02-29"})


def test_records_round_trip_through_bytes_and_the_generic_decoder() -> None:
    v = version(A, Level.ASK, version(B, Level.YES), expires_at=99)
    records: list[Record] = [
        v,
        affirm(B, v, at=5, expires_at=10),
        Pause(member=A, id=name_id("p1"), at=3),
        Resume(member=A, id=name_id("r1"), at=4, lifts=(name_id("p1"), name_id("p2"))),
    ]
    for record in records:
        data = record.to_bytes()
        assert type(record).from_bytes(data) == record
        assert record_from_bytes(data) == record
        assert type(record).from_map(record.to_map()) == record
    assert VersionContent.from_bytes(v.content.to_bytes()) == v.content


def test_a_stored_version_with_a_false_id_is_refused() -> None:
    v = version(A, Level.YES)
    fields = v.to_map()
    fields["id"] = version(A, Level.NO).id
    with pytest.raises(VersionIdMismatchError):
        Version.from_bytes(encoding.encode(fields))
    fields["v"] = 2
    with pytest.raises(UnsupportedVersionError):
        Version.from_bytes(encoding.encode(fields))
    with pytest.raises(OversizedError):
        Version.from_bytes(b"\xa0" * (64 * 1024))


def test_resume_must_lift_something() -> None:
    with pytest.raises(MalformedError):
        Resume(member=A, id=name_id("r1"), at=0, lifts=())


def test_affirmation_liveness_is_strictly_before_expiry() -> None:
    assert is_live(None, 10**12)
    assert is_live(11, 10)
    assert not is_live(10, 10)
    assert not is_live(9, 10)


# -- the rule: edge cases beyond the vectors ------------------------------------------


def test_evaluate_refuses_an_empty_member_set_and_bad_inputs() -> None:
    with pytest.raises(UsageError):
        evaluate(members=[], versions=[], now=0)
    with pytest.raises(UsageError):
        evaluate(members=[b"short"], versions=[], now=0)
    with pytest.raises(UsageError):
        evaluate(members=[A], versions=[affirm(A, version(A, Level.NO))], now=0)  # type: ignore[list-item]
    with pytest.raises(UsageError):
        evaluate(members=[A], versions=[], now=1.5)  # type: ignore[arg-type]


def test_an_item_without_versions_is_no_in_force() -> None:
    result = evaluate(members=[A, B], versions=[], now=0)
    assert result.items == {}
    assert result.level_in_force(ITEM) is Level.NO


def test_outputs_are_sorted_bytewise() -> None:
    root = version(A, Level.YES)
    heads = [version(m, Level.ASK, root, title=str(i)) for i, m in enumerate([A, B, C] * 3)]
    result = evaluate(
        members=[C, A, B],
        versions=[root, *heads],
        pauses=[Pause(member=m, id=name_id("p"), at=0) for m in (C, B, A)],
        now=0,
    )
    state = result.items[ITEM]
    assert list(state.heads) == sorted(h.id for h in heads)
    assert list(state.waiting_for) == list(state.heads)
    assert list(state.stances) == [A, B, C]
    assert result.paused == (A, B, C)
    for waiting in state.waiting_for.values():
        assert list(waiting) == sorted(waiting)


def test_a_resume_lifts_only_its_owners_pause_with_that_id() -> None:
    pauses = [Pause(member=A, id=name_id("p"), at=0), Pause(member=B, id=name_id("p"), at=0)]
    assert active_pauses(members=[A, B], pauses=pauses, resumes=[]) == (A, B)
    by_b = Resume(member=B, id=name_id("r"), at=1, lifts=(name_id("p"),))
    assert active_pauses(members=[A, B], pauses=pauses, resumes=[by_b]) == (A,)
    assert active_pauses(members=[A], pauses=pauses, resumes=[by_b]) == (A,)


def test_a_long_history_does_not_exhaust_the_stack() -> None:
    chain = [version(A, Level.YES, title="0")]
    for i in range(1, 3000):
        chain.append(version(A if i % 2 else B, Level.ASK, chain[-1], title=str(i)))
    result = evaluate(
        members=[A, B], versions=reversed(chain), affirmations=[affirm(B, chain[0])], now=0
    )
    state = result.items[ITEM]
    assert state.heads == (chain[-1].id,)
    assert state.status is Status.PENDING  # nobody affirmed the other's later versions
    assert state.last_agreed == (chain[0].id,)
    assert state.level is Level.ASK


def test_next_expiry_is_the_earliest_expiry_still_ahead() -> None:
    v = version(A, Level.YES, expires_at=500)
    affirmations = [affirm(B, v, expires_at=300), affirm(B, v, expires_at=100), affirm(B, v)]
    assert next_expiry(versions=[v], affirmations=affirmations, now=50) == 100
    assert next_expiry(versions=[v], affirmations=affirmations, now=100) == 300
    assert next_expiry(versions=[v], affirmations=affirmations, now=500) is None
    # B's permanent affirmation outlives the others; A's implicit one ends at 500.
    before = evaluate(members=[A, B], versions=[v], affirmations=affirmations, now=499)
    after = evaluate(members=[A, B], versions=[v], affirmations=affirmations, now=500)
    assert before.items[ITEM].status is Status.AGREED
    assert after.items[ITEM].status is Status.PENDING
