"""The records of the agreement rule: versions, affirmations, pauses and resumes.

Theory of operation (SPEC.md section 8):

* Each record is a frozen, keyword-only dataclass that validates itself when built,
  and has one canonical map form (``to_map``/``from_map``) and one canonical byte
  form (``to_bytes``/``from_bytes``, deterministic CBOR of the map). Every map carries
  ``type`` and ``v`` so a record read back from a voice document says what it is.
* A version's id is BLAKE2b-256, personalisation ``accord:version``, over the
  canonical encoding of its content map (SPEC.md 8.2). A :class:`Version` always
  carries the id of its content: building one with any other id raises
  :class:`VersionIdMismatchError`, so no :class:`Version` object can lie about its id.
* These records are only data. Who may write them (a record by member ``m`` must come
  from ``m``'s voice document) is checked by the caller; the rule itself lives in
  :mod:`protocol.agreement`.

Every decoder raises only :class:`~protocol.errors.ProtocolError` subclasses:
``MalformedError`` for a bad shape, ``UnsupportedVersionError`` for a ``v`` other
than 1, ``OversizedError`` above :data:`MAX_RECORD_BYTES`, and
``VersionIdMismatchError`` for a version whose id is not the hash of its content.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from enum import Enum, StrEnum
from functools import total_ordering
from typing import Any, TypeVar

from protocol import encoding
from protocol.crypto import HASH_BYTES, MEMBER_ID_BYTES, Personal, blake2b, random_bytes
from protocol.errors import (
    MalformedError,
    UnsupportedVersionError,
    VersionIdMismatchError,
)

#: The ``v`` of every record map (SPEC.md 8.1).
RECORD_FORMAT_VERSION = 1
#: Size of an item id, a pause id and a resume id: random, chosen by the writer.
RECORD_ID_BYTES = 16
#: Size of a version id: BLAKE2b-256.
VERSION_ID_BYTES = HASH_BYTES
#: Largest title and details, in UTF-8 bytes (SPEC.md 8.1).
MAX_TITLE_BYTES = 1024
MAX_DETAILS_BYTES = 16 * 1024
#: Most parents of one version, and most pauses one resume lifts.
MAX_PARENTS = 64
MAX_LIFTS = 64
#: Largest encoded record.
MAX_RECORD_BYTES = 32 * 1024

_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_E = TypeVar("_E", bound=Enum)


@total_ordering
class Level(Enum):
    """How far an item allows: a traffic light, ordered ``no`` < ``ask`` < ``yes``.

    The value is the wire text (SPEC.md 8.1). Comparisons use the order above, never
    the text.
    """

    NO = "no"
    ASK = "ask"
    YES = "yes"

    @property
    def rank(self) -> int:
        return _LEVEL_RANK[self]

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Level):
            return NotImplemented
        return self.rank < other.rank


_LEVEL_RANK = {Level.NO: 0, Level.ASK: 1, Level.YES: 2}


class Kind(StrEnum):
    """What sort of agreement an item is (SPEC.md 8.1)."""

    LIMIT = "limit"
    PERMISSION = "permission"
    PREFERENCE = "preference"
    SIGNAL = "signal"  # a safe word or signal
    PLAN_STEP = "plan-step"  # a step of the crisis plan


class RecordType(StrEnum):
    """The ``type`` field of each record map (SPEC.md 8.1)."""

    VERSION = "version"
    AFFIRMATION = "affirmation"
    PAUSE = "pause"
    RESUME = "resume"


def new_record_id() -> bytes:
    """A fresh random 16-byte id for an item, a pause or a resume."""
    return random_bytes(RECORD_ID_BYTES)


# -- field checks -------------------------------------------------------------------


def _check_bytes(value: object, size: int, name: str) -> bytes:
    if not isinstance(value, bytes) or len(value) != size:
        raise MalformedError(f"{name} must be {size} bytes")
    return value


def _check_time(value: object, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise MalformedError(f"{name} must be an integer (milliseconds since the epoch)")
    if not 0 <= value <= encoding.INT_MAX:
        raise MalformedError(f"{name} must be between 0 and 2^63-1")
    return value


def _check_optional_time(value: object, name: str) -> int | None:
    return None if value is None else _check_time(value, name)


def _check_text(value: object, name: str, *, min_bytes: int, max_bytes: int) -> str:
    if not isinstance(value, str):
        raise MalformedError(f"{name} must be text")
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        raise MalformedError(f"{name} is not valid Unicode text") from None
    if not min_bytes <= size <= max_bytes:
        raise MalformedError(f"{name} must be {min_bytes} to {max_bytes} UTF-8 bytes")
    return value


def _check_revisit(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _DATE.fullmatch(value):
        raise MalformedError("revisit must be a date written YYYY-MM-DD, or null")
    try:
        date.fromisoformat(value)
    except ValueError:
        raise MalformedError("revisit is not a calendar date") from None
    return value


def _check_id_list(
    value: object, size: int, name: str, *, min_items: int, max_items: int
) -> tuple[bytes, ...]:
    if not isinstance(value, list | tuple):
        raise MalformedError(f"{name} must be an array")
    if not min_items <= len(value) <= max_items:
        raise MalformedError(f"{name} must hold {min_items} to {max_items} ids")
    ids = tuple(_check_bytes(item, size, f"each of {name}") for item in value)
    if list(ids) != sorted(set(ids)):
        raise MalformedError(f"{name} must be sorted bytewise, without repeats")
    return ids


def _check_fields(fields: Mapping[str, Any], record_type: RecordType, names: set[str]) -> None:
    """Check ``v``, ``type`` and that the map holds exactly ``names``."""
    if not isinstance(fields, Mapping):
        raise MalformedError("a record must be a map")
    version = fields.get("v")
    if not isinstance(version, int) or isinstance(version, bool):
        raise MalformedError("a record has an integer v")
    if version != RECORD_FORMAT_VERSION:
        raise UnsupportedVersionError(f"record format version {version} is not supported")
    if fields.get("type") != record_type.value:
        raise MalformedError(f"expected a record of type {record_type.value!r}")
    if set(fields) != names | {"v", "type"}:
        raise MalformedError(f"a {record_type.value} record has exactly the fields of SPEC 8.1")


def _enum_of(enum: type[_E], value: object, name: str) -> _E:
    if not isinstance(value, str):
        raise MalformedError(f"{name} must be text")
    try:
        return enum(value)
    except ValueError:
        raise MalformedError(f"{name} {value!r} is not one of SPEC 8.1") from None


def is_live(expires_at: int | None, now: int) -> bool:
    """Whether an affirmation with this expiry still counts at ``now`` (SPEC.md 8.3).

    Live means no expiry, or ``now`` strictly before it.
    """
    return expires_at is None or now < expires_at


# -- versions -------------------------------------------------------------------------

_CONTENT_FIELDS = {
    "item",
    "kind",
    "level",
    "title",
    "details",
    "revisit",
    "parents",
    "author",
    "created_at",
    "expires_at",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class VersionContent:
    """What a version says: everything that its id is the hash of (SPEC.md 8.1, 8.2).

    Raises:
        MalformedError: a field has the wrong type, size or form.
    """

    item: bytes  # 16 random bytes, chosen when the item was created
    kind: Kind
    level: Level
    title: str
    details: str
    revisit: str | None  # "YYYY-MM-DD" or None
    parents: tuple[bytes, ...]  # version ids, sorted bytewise, no repeats
    author: bytes  # member id
    created_at: int  # ms since the Unix epoch; informational
    expires_at: int | None  # expiry of the author's implicit affirmation, ms, or None

    def __post_init__(self) -> None:
        _check_bytes(self.item, RECORD_ID_BYTES, "item")
        if not isinstance(self.kind, Kind):
            raise MalformedError("kind must be a Kind")
        if not isinstance(self.level, Level):
            raise MalformedError("level must be a Level")
        _check_text(self.title, "title", min_bytes=1, max_bytes=MAX_TITLE_BYTES)
        _check_text(self.details, "details", min_bytes=0, max_bytes=MAX_DETAILS_BYTES)
        _check_revisit(self.revisit)
        parents = _check_id_list(
            self.parents, VERSION_ID_BYTES, "parents", min_items=0, max_items=MAX_PARENTS
        )
        object.__setattr__(self, "parents", parents)
        _check_bytes(self.author, MEMBER_ID_BYTES, "author")
        _check_time(self.created_at, "created_at")
        _check_optional_time(self.expires_at, "expires_at")

    def to_map(self) -> dict[str, Any]:
        """The content map; its canonical encoding is what the version id hashes."""
        return {
            "v": RECORD_FORMAT_VERSION,
            "type": RecordType.VERSION.value,
            "item": self.item,
            "kind": self.kind.value,
            "level": self.level.value,
            "title": self.title,
            "details": self.details,
            "revisit": self.revisit,
            "parents": list(self.parents),
            "author": self.author,
            "created_at": self.created_at,
            "expires_at": self.expires_at,
        }

    def to_bytes(self) -> bytes:
        return encoding.encode(self.to_map())

    @classmethod
    def from_map(cls, fields: Mapping[str, Any]) -> VersionContent:
        """Build content from its map (without ``id``).

        Raises:
            MalformedError: not exactly the content map of SPEC.md 8.1.
            UnsupportedVersionError: a ``v`` other than 1.
        """
        _check_fields(fields, RecordType.VERSION, _CONTENT_FIELDS)
        return cls._from_checked_map(fields)

    @classmethod
    def _from_checked_map(cls, fields: Mapping[str, Any]) -> VersionContent:
        parents = fields["parents"]
        if not isinstance(parents, list):
            raise MalformedError("parents must be an array")
        return cls(
            item=fields["item"],
            kind=_enum_of(Kind, fields["kind"], "kind"),
            level=_enum_of(Level, fields["level"], "level"),
            title=fields["title"],
            details=fields["details"],
            revisit=fields["revisit"],
            parents=tuple(parents),
            author=fields["author"],
            created_at=fields["created_at"],
            expires_at=fields["expires_at"],
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> VersionContent:
        """Decode content bytes (see :meth:`from_map`).

        Raises:
            OversizedError: more than :data:`MAX_RECORD_BYTES`.
            MalformedError, UnsupportedVersionError: as :meth:`from_map`.
        """
        return cls.from_map(encoding.decode_map(data, max_size=MAX_RECORD_BYTES))


def version_id(content: VersionContent) -> bytes:
    """The id of a version: BLAKE2b-256 ``accord:version`` of its encoded content map."""
    return blake2b(content.to_bytes(), person=Personal.VERSION_ID)


@dataclass(frozen=True, slots=True, kw_only=True)
class Version:
    """A version with its id. The id is always the hash of the content.

    Raises:
        VersionIdMismatchError: ``id`` is not :func:`version_id` of ``content``.
        MalformedError: ``id`` is not 32 bytes or ``content`` is not content.
    """

    id: bytes
    content: VersionContent

    def __post_init__(self) -> None:
        _check_bytes(self.id, VERSION_ID_BYTES, "a version id")
        if not isinstance(self.content, VersionContent):
            raise MalformedError("a version's content must be VersionContent")
        if version_id(self.content) != self.id:
            raise VersionIdMismatchError("the version id is not the hash of its content")

    @classmethod
    def of(cls, content: VersionContent) -> Version:
        """The version of ``content``, with its computed id."""
        return cls(id=version_id(content), content=content)

    # Shortcuts to the content fields the rule reads.
    @property
    def item(self) -> bytes:
        return self.content.item

    @property
    def level(self) -> Level:
        return self.content.level

    @property
    def parents(self) -> tuple[bytes, ...]:
        return self.content.parents

    @property
    def author(self) -> bytes:
        return self.content.author

    def to_map(self) -> dict[str, Any]:
        """The stored form: the content map plus ``id``, so a reader can check it."""
        fields = self.content.to_map()
        fields["id"] = self.id
        return fields

    def to_bytes(self) -> bytes:
        return encoding.encode(self.to_map())

    @classmethod
    def from_map(cls, fields: Mapping[str, Any]) -> Version:
        """Build a version from its stored map, recomputing and checking the id.

        Raises:
            MalformedError: not exactly the version map of SPEC.md 8.1.
            UnsupportedVersionError: a ``v`` other than 1.
            VersionIdMismatchError: ``id`` is not the hash of the content.
        """
        _check_fields(fields, RecordType.VERSION, _CONTENT_FIELDS | {"id"})
        content = VersionContent._from_checked_map(fields)
        return verify_version(fields["id"], content)

    @classmethod
    def from_bytes(cls, data: bytes) -> Version:
        """Decode a stored version (see :meth:`from_map`).

        Raises:
            OversizedError: more than :data:`MAX_RECORD_BYTES`.
            MalformedError, UnsupportedVersionError, VersionIdMismatchError: as
                :meth:`from_map`.
        """
        return cls.from_map(encoding.decode_map(data, max_size=MAX_RECORD_BYTES))


def verify_version(claimed_id: object, content: VersionContent) -> Version:
    """Check a claimed version id against its content and return the version.

    Raises:
        MalformedError: ``claimed_id`` is not 32 bytes.
        VersionIdMismatchError: it is not the hash of ``content``.
    """
    return Version(id=_check_bytes(claimed_id, VERSION_ID_BYTES, "a version id"), content=content)


def draft_version(
    *,
    item: bytes,
    kind: Kind,
    level: Level,
    title: str,
    author: bytes,
    created_at: int,
    parents: Iterable[bytes] = (),
    details: str = "",
    revisit: str | None = None,
    expires_at: int | None = None,
) -> Version:
    """A new version: parents are sorted and de-duplicated, the id is computed.

    Raises:
        MalformedError: a field is out of shape (see :class:`VersionContent`).
    """
    return Version.of(
        VersionContent(
            item=item,
            kind=kind,
            level=level,
            title=title,
            details=details,
            revisit=revisit,
            parents=tuple(sorted(set(parents))),
            author=author,
            created_at=created_at,
            expires_at=expires_at,
        )
    )


# -- affirmations, pauses, resumes ----------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Affirmation:
    """A member's affirmation of one exact version (SPEC.md 8.1, 8.3).

    Raises:
        MalformedError: a field has the wrong type or size.
    """

    member: bytes
    version: bytes  # the version id
    item: bytes  # the version's item; an affirmation counts only for that item
    at: int  # ms since the Unix epoch; informational
    expires_at: int | None = None  # after this instant (ms) it counts as absent

    def __post_init__(self) -> None:
        _check_bytes(self.member, MEMBER_ID_BYTES, "member")
        _check_bytes(self.version, VERSION_ID_BYTES, "version")
        _check_bytes(self.item, RECORD_ID_BYTES, "item")
        _check_time(self.at, "at")
        _check_optional_time(self.expires_at, "expires_at")

    def to_map(self) -> dict[str, Any]:
        return {
            "v": RECORD_FORMAT_VERSION,
            "type": RecordType.AFFIRMATION.value,
            "member": self.member,
            "version": self.version,
            "item": self.item,
            "at": self.at,
            "expires_at": self.expires_at,
        }

    def to_bytes(self) -> bytes:
        return encoding.encode(self.to_map())

    @classmethod
    def from_map(cls, fields: Mapping[str, Any]) -> Affirmation:
        """Raises: MalformedError, UnsupportedVersionError (see SPEC.md 8.1)."""
        _check_fields(
            fields, RecordType.AFFIRMATION, {"member", "version", "item", "at", "expires_at"}
        )
        return cls(
            member=fields["member"],
            version=fields["version"],
            item=fields["item"],
            at=fields["at"],
            expires_at=fields["expires_at"],
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> Affirmation:
        """Raises: OversizedError, MalformedError, UnsupportedVersionError."""
        return cls.from_map(encoding.decode_map(data, max_size=MAX_RECORD_BYTES))


@dataclass(frozen=True, slots=True, kw_only=True)
class Pause:
    """A member's pause: while active, every item is ``no`` in force (SPEC.md 8.3).

    Raises:
        MalformedError: a field has the wrong type or size.
    """

    member: bytes
    id: bytes  # 16 random bytes
    at: int  # ms since the Unix epoch; informational

    def __post_init__(self) -> None:
        _check_bytes(self.member, MEMBER_ID_BYTES, "member")
        _check_bytes(self.id, RECORD_ID_BYTES, "pause id")
        _check_time(self.at, "at")

    def to_map(self) -> dict[str, Any]:
        return {
            "v": RECORD_FORMAT_VERSION,
            "type": RecordType.PAUSE.value,
            "member": self.member,
            "id": self.id,
            "at": self.at,
        }

    def to_bytes(self) -> bytes:
        return encoding.encode(self.to_map())

    @classmethod
    def from_map(cls, fields: Mapping[str, Any]) -> Pause:
        """Raises: MalformedError, UnsupportedVersionError (see SPEC.md 8.1)."""
        _check_fields(fields, RecordType.PAUSE, {"member", "id", "at"})
        return cls(member=fields["member"], id=fields["id"], at=fields["at"])

    @classmethod
    def from_bytes(cls, data: bytes) -> Pause:
        """Raises: OversizedError, MalformedError, UnsupportedVersionError."""
        return cls.from_map(encoding.decode_map(data, max_size=MAX_RECORD_BYTES))


@dataclass(frozen=True, slots=True, kw_only=True)
class Resume:
    """A member lifting some of their own pauses (SPEC.md 8.3).

    It lifts only pauses of the same member: naming another member's pause id does
    nothing to that pause.

    Raises:
        MalformedError: a field has the wrong type or size, or ``lifts`` is empty,
            unsorted or repeats an id.
    """

    member: bytes
    id: bytes  # 16 random bytes
    at: int  # ms since the Unix epoch; informational
    lifts: tuple[bytes, ...]  # pause ids, sorted bytewise, no repeats, at least one

    def __post_init__(self) -> None:
        _check_bytes(self.member, MEMBER_ID_BYTES, "member")
        _check_bytes(self.id, RECORD_ID_BYTES, "resume id")
        _check_time(self.at, "at")
        lifts = _check_id_list(
            self.lifts, RECORD_ID_BYTES, "lifts", min_items=1, max_items=MAX_LIFTS
        )
        object.__setattr__(self, "lifts", lifts)

    def to_map(self) -> dict[str, Any]:
        return {
            "v": RECORD_FORMAT_VERSION,
            "type": RecordType.RESUME.value,
            "member": self.member,
            "id": self.id,
            "at": self.at,
            "lifts": list(self.lifts),
        }

    def to_bytes(self) -> bytes:
        return encoding.encode(self.to_map())

    @classmethod
    def from_map(cls, fields: Mapping[str, Any]) -> Resume:
        """Raises: MalformedError, UnsupportedVersionError (see SPEC.md 8.1)."""
        _check_fields(fields, RecordType.RESUME, {"member", "id", "at", "lifts"})
        lifts = fields["lifts"]
        if not isinstance(lifts, list):
            raise MalformedError("lifts must be an array")
        return cls(member=fields["member"], id=fields["id"], at=fields["at"], lifts=tuple(lifts))

    @classmethod
    def from_bytes(cls, data: bytes) -> Resume:
        """Raises: OversizedError, MalformedError, UnsupportedVersionError."""
        return cls.from_map(encoding.decode_map(data, max_size=MAX_RECORD_BYTES))


Record = Version | Affirmation | Pause | Resume

_DECODERS: dict[str, Callable[[Mapping[str, Any]], Record]] = {
    RecordType.VERSION.value: Version.from_map,
    RecordType.AFFIRMATION.value: Affirmation.from_map,
    RecordType.PAUSE.value: Pause.from_map,
    RecordType.RESUME.value: Resume.from_map,
}


def record_from_map(fields: Mapping[str, Any]) -> Record:
    """Build whichever record ``fields`` is, by its ``type``.

    A version map must carry its ``id`` here (the stored form).

    Raises:
        MalformedError: not a map, an unknown ``type``, or a bad record.
        UnsupportedVersionError: a ``v`` other than 1.
        VersionIdMismatchError: a version whose id is not the hash of its content.
    """
    if not isinstance(fields, Mapping):
        raise MalformedError("a record must be a map")
    record_type = fields.get("type")
    decoder = _DECODERS.get(record_type) if isinstance(record_type, str) else None
    if decoder is None:
        raise MalformedError("unknown record type")
    return decoder(fields)


def record_from_bytes(data: bytes) -> Record:
    """Decode whichever record ``data`` holds (see :func:`record_from_map`).

    Raises:
        OversizedError: more than :data:`MAX_RECORD_BYTES`.
        MalformedError, UnsupportedVersionError, VersionIdMismatchError: as
            :func:`record_from_map`.
    """
    return record_from_map(encoding.decode_map(data, max_size=MAX_RECORD_BYTES))
