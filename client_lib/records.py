"""Records kept in voice documents, and the crisis plan's steps (SPEC.md 7.3, 7.4).

Theory of operation:

* A voice document ``voice/M`` holds records in its ``records`` map, each stored as
  its canonical CBOR bytes under its **key**: a version under its version id (hex), any
  other record under ``H("accord:record", bytes)`` (hex). Reading a record re-checks
  everything: the bytes decode, the key matches (a version id is recomputed), and the
  record's member (a version's author) is ``M``. A record that fails is refused and
  reported; it never counts.
* The rule's records (version, affirmation, pause, resume) come from
  :mod:`protocol.agreement`. This module adds the records the rest of the product uses:
  check-in answers, repair steps, crisis plan opt-ins and journal entries, in the same
  style (``v`` and ``type`` in every map, text sizes bounded).
* Crisis plan steps live in the ``shared`` document (every member edits them). An
  opt-in names a step and the hash of the step's exact bytes, so any change to a step
  makes every earlier opt-in stale: each step needs a fresh opt-in from each person.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from protocol import encoding
from protocol.agreement import (
    MAX_RECORD_BYTES,
    RECORD_FORMAT_VERSION,
    RECORD_ID_BYTES,
    Record,
    RecordType,
    Version,
    record_from_map,
)
from protocol.crypto import HASH_BYTES, MEMBER_ID_BYTES, blake2b
from protocol.errors import MalformedError, NotAuthorError, UnsupportedVersionError

#: BLAKE2b personalisation of record keys (SPEC.md 7.3).
RECORD_KEY_PERSON = b"accord:record"
MAX_TEXT_BYTES = 16 * 1024
MAX_SHORT_TEXT_BYTES = 4 * 1024
MAX_NAME_BYTES = 256
_HEX_KEY = re.compile(r"[0-9a-f]{64}")
_STEP_KEY = re.compile(r"[0-9a-f]{32}")


class ClientRecordType(StrEnum):
    """``type`` of the records this module adds (SPEC.md 7.3)."""

    CHECKIN = "checkin"
    REPAIR = "repair"
    PLAN_OPTIN = "plan-optin"
    JOURNAL = "journal"
    PROFILE = "profile"  # the name a member shows to the others
    PLAN_STEP = "plan-step"  # in the shared document, not in a voice


class RepairStepKind(StrEnum):
    """The steps of a repair entry, in their usual order."""

    CROSSING = "crossing"  # the crossing named; its id is the repair's id
    ACKNOWLEDGEMENT = "acknowledgement"
    APOLOGY = "apology"
    CORRECTIVE_ACTION = "corrective-action"
    PREVENTION_PLAN = "prevention-plan"
    CLOSE = "close"  # only the person harmed closes a repair


class PlanSection(StrEnum):
    """The three parts of the crisis plan."""

    DE_ESCALATION = "de-escalation"
    COOLING_OFF = "cooling-off"
    RETURN_TO_INTIMACY = "return-to-intimacy"


# -- field checks ---------------------------------------------------------------------


def _bytes(value: object, size: int, name: str) -> bytes:
    if not isinstance(value, bytes) or len(value) != size:
        raise MalformedError(f"{name} must be {size} bytes")
    return value


def _int(value: object, name: str, *, low: int = 0, high: int = encoding.INT_MAX) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise MalformedError(f"{name} must be an integer from {low} to {high}")
    return value


def _text(value: object, name: str, *, max_bytes: int, min_bytes: int = 0) -> str:
    if not isinstance(value, str):
        raise MalformedError(f"{name} must be text")
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        raise MalformedError(f"{name} is not valid Unicode text") from None
    if not min_bytes <= size <= max_bytes:
        raise MalformedError(f"{name} must be {min_bytes} to {max_bytes} UTF-8 bytes")
    return value


def _optional_int(value: object, name: str) -> int | None:
    return None if value is None else _int(value, name)


def _check_map(fields: Mapping[str, Any], kind: ClientRecordType, names: set[str]) -> None:
    version = fields.get("v")
    if not isinstance(version, int) or isinstance(version, bool):
        raise MalformedError("a record has an integer v")
    if version != RECORD_FORMAT_VERSION:
        raise UnsupportedVersionError(f"record format version {version} is not supported")
    if fields.get("type") != kind.value or set(fields) != names | {"v", "type"}:
        raise MalformedError(f"a {kind.value} record has exactly the fields of SPEC 7.3")


def _header(kind: ClientRecordType) -> dict[str, Any]:
    return {"v": RECORD_FORMAT_VERSION, "type": kind.value}


# -- the records ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckIn:
    """One member's check-in answers. Private unless that member shares them."""

    member: bytes
    id: bytes
    at: int
    safety: int  # 1 (not safe at all) to 5 (fully safe)
    feels_safe: str = ""
    triggering: str = ""
    would_help: str = ""

    def __post_init__(self) -> None:
        _bytes(self.member, MEMBER_ID_BYTES, "member")
        _bytes(self.id, RECORD_ID_BYTES, "id")
        _int(self.at, "at")
        _int(self.safety, "safety", low=1, high=5)
        for name in ("feels_safe", "triggering", "would_help"):
            _text(getattr(self, name), name, max_bytes=MAX_SHORT_TEXT_BYTES)

    def to_map(self) -> dict[str, Any]:
        return _header(ClientRecordType.CHECKIN) | {
            "member": self.member,
            "id": self.id,
            "at": self.at,
            "safety": self.safety,
            "feels_safe": self.feels_safe,
            "triggering": self.triggering,
            "would_help": self.would_help,
        }

    @classmethod
    def from_map(cls, fields: Mapping[str, Any]) -> CheckIn:
        names = {"member", "id", "at", "safety", "feels_safe", "triggering", "would_help"}
        _check_map(fields, ClientRecordType.CHECKIN, names)
        return cls(**{name: fields[name] for name in names})


@dataclass(frozen=True, slots=True, kw_only=True)
class RepairStep:
    """One step of a repair entry, signed (through its voice) by whoever takes it.

    ``repair`` is the id of the crossing record that opened the entry (for the
    crossing itself, its own ``id``). ``harmed`` is set on the crossing only.
    """

    member: bytes
    id: bytes
    repair: bytes
    step: RepairStepKind
    text: str
    at: int
    harmed: bytes | None = None

    def __post_init__(self) -> None:
        _bytes(self.member, MEMBER_ID_BYTES, "member")
        _bytes(self.id, RECORD_ID_BYTES, "id")
        _bytes(self.repair, RECORD_ID_BYTES, "repair")
        if not isinstance(self.step, RepairStepKind):
            raise MalformedError("step must be a RepairStepKind")
        _text(self.text, "text", max_bytes=MAX_TEXT_BYTES)
        _int(self.at, "at")
        if self.step is RepairStepKind.CROSSING:
            _bytes(self.harmed, MEMBER_ID_BYTES, "harmed")
            if self.repair != self.id:
                raise MalformedError("a crossing's repair id is its own id")
        elif self.harmed is not None:
            raise MalformedError("only the crossing names the person harmed")

    def to_map(self) -> dict[str, Any]:
        return _header(ClientRecordType.REPAIR) | {
            "member": self.member,
            "id": self.id,
            "repair": self.repair,
            "step": self.step.value,
            "text": self.text,
            "at": self.at,
            "harmed": self.harmed,
        }

    @classmethod
    def from_map(cls, fields: Mapping[str, Any]) -> RepairStep:
        names = {"member", "id", "repair", "step", "text", "at", "harmed"}
        _check_map(fields, ClientRecordType.REPAIR, names)
        try:
            step = RepairStepKind(fields["step"])
        except ValueError:
            raise MalformedError("unknown repair step") from None
        return cls(**{name: fields[name] for name in names - {"step"}}, step=step)


@dataclass(frozen=True, slots=True, kw_only=True)
class PlanOptIn:
    """A member's opt-in to one exact wording of one crisis plan step."""

    member: bytes
    step: bytes  # the step id
    step_hash: bytes  # H("accord:record", the step's bytes): binds the exact wording
    at: int
    expires_at: int | None = None

    def __post_init__(self) -> None:
        _bytes(self.member, MEMBER_ID_BYTES, "member")
        _bytes(self.step, RECORD_ID_BYTES, "step")
        _bytes(self.step_hash, HASH_BYTES, "step_hash")
        _int(self.at, "at")
        _optional_int(self.expires_at, "expires_at")

    def to_map(self) -> dict[str, Any]:
        return _header(ClientRecordType.PLAN_OPTIN) | {
            "member": self.member,
            "step": self.step,
            "step_hash": self.step_hash,
            "at": self.at,
            "expires_at": self.expires_at,
        }

    @classmethod
    def from_map(cls, fields: Mapping[str, Any]) -> PlanOptIn:
        names = {"member", "step", "step_hash", "at", "expires_at"}
        _check_map(fields, ClientRecordType.PLAN_OPTIN, names)
        return cls(**{name: fields[name] for name in names})


@dataclass(frozen=True, slots=True, kw_only=True)
class JournalEntry:
    """A private journal entry (only ever in a member's private space)."""

    member: bytes
    id: bytes
    at: int
    text: str

    def __post_init__(self) -> None:
        _bytes(self.member, MEMBER_ID_BYTES, "member")
        _bytes(self.id, RECORD_ID_BYTES, "id")
        _int(self.at, "at")
        _text(self.text, "text", max_bytes=MAX_TEXT_BYTES)

    def to_map(self) -> dict[str, Any]:
        return _header(ClientRecordType.JOURNAL) | {
            "member": self.member,
            "id": self.id,
            "at": self.at,
            "text": self.text,
        }

    @classmethod
    def from_map(cls, fields: Mapping[str, Any]) -> JournalEntry:
        names = {"member", "id", "at", "text"}
        _check_map(fields, ClientRecordType.JOURNAL, names)
        return cls(**{name: fields[name] for name in names})


@dataclass(frozen=True, slots=True, kw_only=True)
class Profile:
    """The name a member shows in a space; the newest (by ``at``, then key) counts."""

    member: bytes
    name: str
    at: int

    def __post_init__(self) -> None:
        _bytes(self.member, MEMBER_ID_BYTES, "member")
        _text(self.name, "name", min_bytes=1, max_bytes=MAX_NAME_BYTES)
        _int(self.at, "at")

    def to_map(self) -> dict[str, Any]:
        return _header(ClientRecordType.PROFILE) | {
            "member": self.member,
            "name": self.name,
            "at": self.at,
        }

    @classmethod
    def from_map(cls, fields: Mapping[str, Any]) -> Profile:
        names = {"member", "name", "at"}
        _check_map(fields, ClientRecordType.PROFILE, names)
        return cls(**{name: fields[name] for name in names})


@dataclass(frozen=True, slots=True, kw_only=True)
class PlanStep:
    """One step of the crisis plan (in ``shared``; ``by`` is informational only)."""

    id: bytes
    section: PlanSection
    text: str
    position: int
    by: bytes
    at: int
    minutes: int | None = None  # the length of a cooling-off period

    def __post_init__(self) -> None:
        _bytes(self.id, RECORD_ID_BYTES, "id")
        if not isinstance(self.section, PlanSection):
            raise MalformedError("section must be a PlanSection")
        _text(self.text, "text", min_bytes=1, max_bytes=MAX_SHORT_TEXT_BYTES)
        _int(self.position, "position")
        _bytes(self.by, MEMBER_ID_BYTES, "by")
        _int(self.at, "at")
        if self.minutes is not None:
            _int(self.minutes, "minutes", low=1, high=7 * 24 * 60)

    def to_map(self) -> dict[str, Any]:
        return _header(ClientRecordType.PLAN_STEP) | {
            "id": self.id,
            "section": self.section.value,
            "text": self.text,
            "position": self.position,
            "by": self.by,
            "at": self.at,
            "minutes": self.minutes,
        }

    def to_bytes(self) -> bytes:
        return encoding.encode(self.to_map())

    @classmethod
    def from_bytes(cls, data: bytes) -> PlanStep:
        """Raises: MalformedError, OversizedError, UnsupportedVersionError."""
        fields = encoding.decode_map(data, max_size=MAX_RECORD_BYTES)
        names = {"id", "section", "text", "position", "by", "at", "minutes"}
        _check_map(fields, ClientRecordType.PLAN_STEP, names)
        try:
            section = PlanSection(fields["section"])
        except ValueError:
            raise MalformedError("unknown plan section") from None
        return cls(**{name: fields[name] for name in names - {"section"}}, section=section)


ClientRecord = CheckIn | RepairStep | PlanOptIn | JournalEntry | Profile
VoiceRecord = Record | ClientRecord

_CLIENT_DECODERS: dict[str, Callable[[Mapping[str, Any]], ClientRecord]] = {
    ClientRecordType.CHECKIN.value: CheckIn.from_map,
    ClientRecordType.REPAIR.value: RepairStep.from_map,
    ClientRecordType.PLAN_OPTIN.value: PlanOptIn.from_map,
    ClientRecordType.JOURNAL.value: JournalEntry.from_map,
    ClientRecordType.PROFILE.value: Profile.from_map,
}
_RULE_TYPES = {kind.value for kind in RecordType}


def record_bytes(record: VoiceRecord) -> bytes:
    """The canonical bytes a record is stored as."""
    return encoding.encode(record.to_map())


def record_hash(data: bytes) -> bytes:
    """``H("accord:record", data)``: keys of non-version records, and step hashes."""
    return blake2b(data, person=RECORD_KEY_PERSON)


def record_key(record: VoiceRecord, data: bytes | None = None) -> str:
    """The key a record is stored under in its voice's ``records`` map."""
    if isinstance(record, Version):
        return record.id.hex()
    return record_hash(data if data is not None else record_bytes(record)).hex()


def record_member(record: VoiceRecord) -> bytes:
    """The member who speaks in a record (a version's author)."""
    return record.author if isinstance(record, Version) else record.member


def read_voice_record(key: str, data: bytes, *, owner: bytes) -> VoiceRecord | None:
    """Decode and re-check one stored record of ``voice/<owner>``.

    Returns None for a record type this version does not know (kept, not counted).

    Raises:
        MalformedError, OversizedError, UnsupportedVersionError: the bytes are not a
            valid record, or the key does not name them.
        VersionIdMismatchError: a version whose id is not the hash of its content.
        NotAuthorError: the record speaks for a member other than ``owner``.
    """
    if not _HEX_KEY.fullmatch(key):
        raise MalformedError("a record key is 64 lowercase hex digits")
    fields = encoding.decode_map(data, max_size=MAX_RECORD_BYTES)
    record_type = fields.get("type")
    if not isinstance(record_type, str):
        raise MalformedError("a record's type is text")
    record: VoiceRecord
    if record_type in _RULE_TYPES:
        record = record_from_map(fields)
    elif record_type in _CLIENT_DECODERS:
        record = _CLIENT_DECODERS[record_type](fields)
    else:
        return None
    if record_key(record, data) != key:
        raise MalformedError("a record is stored under a key that does not name it")
    if record_member(record) != owner:
        raise NotAuthorError("a record in one member's voice speaks for another member")
    return record


def check_step_key(key: str) -> bytes:
    """The step id a ``plan_steps`` key names.

    Raises:
        MalformedError: not 32 lowercase hex digits.
    """
    if not _STEP_KEY.fullmatch(key):
        raise MalformedError("a plan step key is 32 lowercase hex digits")
    return bytes.fromhex(key)
