"""Vector checks for the agreement rule (SPEC.md 12.x, files ``rule-*.json``).

Two kinds:

* ``rule``: a set of records written with short names, and the rule's expected answer.
  Names stand for ids: a member, item, pause or resume name is its UTF-8 bytes
  right-padded with zero bytes to 16; a version label stands for the id computed from
  the version's content. Each case is evaluated three times (records in the given
  order, in reverse order, and every record delivered twice), and each time the answer
  must be the expected one.
* ``rule-record``: one record with its exact canonical bytes (and a version's id), or
  bytes that a decoder must refuse with a given error code.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from protocol import encoding
from protocol.agreement import (
    Affirmation,
    ItemState,
    Kind,
    Level,
    Pause,
    RecordType,
    Resume,
    RuleResult,
    Version,
    VersionContent,
    evaluate,
    record_from_bytes,
    record_from_map,
    version_id,
)
from protocol.checks import Case, Checker, VectorMismatch, expect
from protocol.errors import AccordError

NAME_BYTES = 16

_CASE_FIELDS = {
    "name",
    "description",
    "members",
    "now",
    "versions",
    "affirmations",
    "pauses",
    "resumes",
    "expect",
}
_VERSION_FIELDS = {
    "label",
    "item",
    "author",
    "level",
    "parents",
    "kind",
    "title",
    "details",
    "revisit",
    "created_at",
    "expires_at",
    "known",
}
_AFFIRMATION_FIELDS = {"member", "version", "item", "at", "expires_at"}
_PAUSE_FIELDS = {"member", "id", "at"}
_RESUME_FIELDS = {"member", "id", "at", "lifts"}
_ITEM_FIELDS = {"status", "level", "heads", "waiting_for", "last_agreed", "stances"}
_ITEM_REQUIRED = _ITEM_FIELDS - {"stances"}


def name_id(name: object) -> bytes:
    """The 16-byte id a case-local name stands for: its UTF-8, zero-padded to 16."""
    if not isinstance(name, str) or not name or "\x00" in name:
        raise VectorMismatch(f"a name must be non-empty text without NUL, not {name!r}")
    raw = name.encode("utf-8")
    if len(raw) > NAME_BYTES:
        raise VectorMismatch(f"name {name!r} is longer than {NAME_BYTES} UTF-8 bytes")
    return raw.ljust(NAME_BYTES, b"\x00")


def _only(fields: object, allowed: set[str], what: str) -> Mapping[str, Any]:
    if not isinstance(fields, dict):
        raise VectorMismatch(f"{what} must be a JSON object")
    unknown = set(fields) - allowed
    if unknown:
        raise VectorMismatch(f"{what} has unknown fields {sorted(unknown)}")
    return fields


def _list(value: object, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise VectorMismatch(f"{what} must be a JSON array")
    return value


class _Inputs:
    """The records of one case, with names and labels resolved to ids."""

    def __init__(self, case: Case) -> None:
        _only(case, _CASE_FIELDS, "a rule case")
        self.members = [name_id(m) for m in _list(case["members"], "members")]
        now = case["now"]
        expect(isinstance(now, int) and not isinstance(now, bool), "now must be an integer")
        self.now: int = now
        self.version_ids: dict[str, bytes] = {}
        self.version_items: dict[str, bytes] = {}
        self.labels: dict[bytes, str] = {}
        self.versions: list[Version] = []
        self._build_versions(_list(case.get("versions", []), "versions"))
        self.affirmations = [
            self._affirmation(fields)
            for fields in _list(case.get("affirmations", []), "affirmations")
        ]
        self.pauses = [
            Pause(member=name_id(p["member"]), id=name_id(p["id"]), at=p.get("at", 0))
            for p in (
                _only(f, _PAUSE_FIELDS, "a pause") for f in _list(case.get("pauses", []), "pauses")
            )
        ]
        self.resumes = [
            Resume(
                member=name_id(r["member"]),
                id=name_id(r["id"]),
                at=r.get("at", 0),
                lifts=tuple(sorted({name_id(p) for p in _list(r["lifts"], "lifts")})),
            )
            for r in (
                _only(f, _RESUME_FIELDS, "a resume")
                for f in _list(case.get("resumes", []), "resumes")
            )
        ]

    def _build_versions(self, entries: list[Any]) -> None:
        # Parents may name any version of the case, known or not, listed in any order:
        # build each version once all of its parents have their ids.
        specs: dict[str, Mapping[str, Any]] = {}
        for entry in entries:
            fields = _only(entry, _VERSION_FIELDS, "a version")
            label = fields["label"]
            expect(isinstance(label, str) and label not in specs, f"bad or repeated {label!r}")
            expect(fields.get("known", True) in (True, False), f"{label}: known is a boolean")
            specs[label] = fields
        unresolved = dict(specs)
        while unresolved:
            progress = False
            for label, fields in list(unresolved.items()):
                parents = _list(fields.get("parents", []), f"parents of {label}")
                for parent in parents:
                    expect(parent in specs, f"{label} names an undefined parent {parent!r}")
                if any(parent not in self.version_ids for parent in parents):
                    continue
                version = self._version(label, fields, [self.version_ids[p] for p in parents])
                self.version_ids[label] = version.id
                self.version_items[label] = version.item
                self.labels[version.id] = label
                if fields.get("known", True):
                    self.versions.append(version)
                del unresolved[label]
                progress = True
            expect(progress, "the parents of the versions form a cycle")

    @staticmethod
    def _version(label: str, fields: Mapping[str, Any], parents: list[bytes]) -> Version:
        content = VersionContent(
            item=name_id(fields["item"]),
            kind=Kind(fields.get("kind", Kind.LIMIT.value)),
            level=Level(fields["level"]),
            title=fields.get("title", label),
            details=fields.get("details", ""),
            revisit=fields.get("revisit"),
            parents=tuple(sorted(set(parents))),
            author=name_id(fields["author"]),
            created_at=fields.get("created_at", 0),
            expires_at=fields.get("expires_at"),
        )
        # Through the stored form and back, so the vectors exercise the codec too.
        return Version.from_bytes(Version.of(content).to_bytes())

    def _affirmation(self, entry: object) -> Affirmation:
        fields = _only(entry, _AFFIRMATION_FIELDS, "an affirmation")
        label = fields["version"]
        expect(label in self.version_ids, f"an affirmation names an undefined version {label!r}")
        item_name = fields.get("item")
        item = self.version_items[label] if item_name is None else name_id(item_name)
        affirmation = Affirmation(
            member=name_id(fields["member"]),
            version=self.version_ids[label],
            item=item,
            at=fields.get("at", 0),
            expires_at=fields.get("expires_at"),
        )
        return Affirmation.from_bytes(affirmation.to_bytes())

    def evaluate(self, order: str) -> RuleResult:
        lists: list[list[Any]] = [self.versions, self.affirmations, self.pauses, self.resumes]
        if order == "reversed":
            lists = [records[::-1] for records in lists]
        elif order == "duplicated":
            lists = [records + records[::-1] for records in lists]
        return evaluate(
            members=self.members,
            versions=lists[0],
            affirmations=lists[1],
            pauses=lists[2],
            resumes=lists[3],
            now=self.now,
        )

    def version_label(self, vid: bytes) -> str:
        return self.labels.get(vid, vid.hex())


def _name_of(raw: bytes) -> str:
    """The case-local name of a 16-byte id (the inverse of :func:`name_id`)."""
    try:
        return raw.rstrip(b"\x00").decode("utf-8")
    except UnicodeDecodeError:  # pragma: no cover - only names reach here
        return raw.hex()


def _names(values: object, what: str) -> list[str]:
    names = _list(values, what)
    for name in names:
        name_id(name)
    return sorted(names, key=name_id)


def _check_sorted(ids: Sequence[bytes], what: str) -> None:
    expect(list(ids) == sorted(set(ids)), f"{what} is not sorted bytewise without repeats")


def _compare_item(inputs: _Inputs, item_name: str, want: Mapping[str, Any], got: ItemState) -> None:
    where = f"item {item_name!r}"
    expect(got.status.value == want["status"], f"{where}: status {got.status.value}")
    expect(got.level.value == want["level"], f"{where}: level in force {got.level.value}")
    _check_sorted(got.heads, f"{where}: heads")
    heads = sorted(inputs.version_label(h) for h in got.heads)
    expect(heads == sorted(_list(want["heads"], "heads")), f"{where}: heads {heads}")
    _check_sorted(got.last_agreed, f"{where}: last_agreed")
    last = sorted(inputs.version_label(v) for v in got.last_agreed)
    want_last = sorted(_list(want["last_agreed"], "last_agreed"))
    expect(last == want_last, f"{where}: last agreed {last}")
    waiting_want = want["waiting_for"]
    expect(isinstance(waiting_want, dict), f"{where}: waiting_for must be an object")
    waiting = {}
    for head, members in got.waiting_for.items():
        _check_sorted(members, f"{where}: waiting_for")
        waiting[inputs.version_label(head)] = [_name_of(m) for m in members]
    waiting_expected = {head: _names(m, "waiting_for") for head, m in waiting_want.items()}
    expect(waiting == waiting_expected, f"{where}: waiting for {waiting}")
    if "stances" in want:
        stances = {_name_of(m): level.value for m, level in got.stances.items()}
        expect(stances == want["stances"], f"{where}: stances {stances}")


def check_rule_case(case: Case) -> None:
    """Evaluate one ``rule`` case in three orders and compare with its ``expect``.

    Raises:
        VectorMismatch: the answer differs from the expected one, or the case is not
            in the documented format.
    """
    inputs = _Inputs(case)
    want = _only(case["expect"], {"paused", "items"}, "expect")
    want_items = _only(want["items"], set(want["items"]), "expect.items")
    want_paused = _names(want["paused"], "paused")
    for name, fields in want_items.items():
        _only(fields, _ITEM_FIELDS, f"expected item {name!r}")
        missing = _ITEM_REQUIRED - set(fields)
        expect(not missing, f"expected item {name!r} lacks {sorted(missing)}")
    expected_ids = {name_id(name): name for name in want_items}
    for order in ("given", "reversed", "duplicated"):
        result = inputs.evaluate(order)
        prefix = f"[{order} order] " if order != "given" else ""
        try:
            _check_sorted(result.paused, "paused")
            paused = [_name_of(m) for m in result.paused]
            expect(paused == want_paused, f"paused members {paused}")
            got_items = sorted(_name_of(item) for item in result.items)
            expect(
                set(result.items) == set(expected_ids),
                f"items {got_items}, expected {sorted(want_items)}",
            )
            for item_id, item_name in expected_ids.items():
                _compare_item(inputs, item_name, want_items[item_name], result.items[item_id])
        except VectorMismatch as exc:
            raise VectorMismatch(f"{prefix}{exc}") from None


# -- rule-record: byte-exact record encodings ----------------------------------------

#: Record fields that hold bytes, or lists of bytes: written as hex in the vectors.
_BYTES_FIELDS = {"item", "author", "member", "version", "id"}  # hex in the vectors
_BYTES_LIST_FIELDS = {"parents", "lifts"}


def _record_map_from_json(fields: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in fields.items():
        if key in _BYTES_FIELDS and isinstance(value, str):
            out[key] = bytes.fromhex(value)
        elif key in _BYTES_LIST_FIELDS and isinstance(value, list):
            out[key] = [bytes.fromhex(x) if isinstance(x, str) else x for x in value]
        else:
            out[key] = value
    return out


def check_record_case(case: Case) -> None:
    """Check one ``rule-record`` case.

    A case is either ``{"record": MAP, "bytes": HEX}``, where MAP is an affirmation,
    pause or resume map, or a version's content map (no ``id``) with ``"version_id":
    HEX`` beside it: the map encodes to exactly those bytes and decodes back to the same
    record, and the version id is the hash of those bytes. Or it is ``{"bytes": HEX,
    "error": CODE}``: decoding the bytes as a stored record is refused with that code.

    Raises:
        VectorMismatch: the implementation disagrees.
    """
    _only(case, {"name", "description", "record", "bytes", "version_id", "error"}, "a case")
    data = bytes.fromhex(case["bytes"])
    if "error" in case:
        try:
            record_from_bytes(data)
        except AccordError as exc:
            expect(exc.code.value == case["error"], f"refused with {exc.code.value}")
            return
        raise VectorMismatch(f"decoded, but should be refused with {case['error']}")
    fields = _record_map_from_json(case["record"])
    encoded = encoding.encode(fields)
    expect(encoded == data, f"encodes to {encoded.hex()}")
    if fields.get("type") == RecordType.VERSION.value:
        content = VersionContent.from_bytes(data)
        expect(content.to_bytes() == data, "the content does not re-encode to the same bytes")
        vid = version_id(content)
        expect(vid.hex() == case.get("version_id"), f"version id {vid.hex()}")
        stored = Version.of(content).to_bytes()
        expect(record_from_bytes(stored) == Version(id=vid, content=content), "stored form")
        return
    expect("version_id" not in case, "only a version case has a version_id")
    record = record_from_map(fields)
    expect(record.to_bytes() == data, "the record does not re-encode to the same bytes")
    expect(record_from_bytes(data) == record, "decoding the bytes gives another record")


CHECKERS: dict[str, Checker] = {"rule": check_rule_case, "rule-record": check_record_case}
