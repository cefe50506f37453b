"""The plaintext of a data entry: CRDT updates for named documents (SPEC.md 7.1).

    {"v": 1, "at": ms, "updates": [{"doc": name, "update": bytes}, ...]}

``at`` is the author's clock when the entry was written (milliseconds since the Unix
epoch; informational only, never trusted for ordering). ``updates`` holds 1 to
:data:`MAX_UPDATES` items, sorted by document name, at most one per document; each
``update`` is a Yjs v1 update of that document.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from client_lib.documents import voice_owner
from protocol import encoding
from protocol.entry import MAX_PLAINTEXT
from protocol.errors import MalformedError, OversizedError, UnsupportedVersionError

PAYLOAD_VERSION = 1
MAX_UPDATES = 64


@dataclass(frozen=True, slots=True, kw_only=True)
class DocUpdate:
    """One CRDT update of one named document."""

    doc: str
    update: bytes

    def __post_init__(self) -> None:
        voice_owner(self.doc)
        if not isinstance(self.update, bytes) or not self.update:
            raise MalformedError("a document update is non-empty bytes")


@dataclass(frozen=True, slots=True, kw_only=True)
class Payload:
    """The decoded plaintext of a data entry.

    Raises:
        MalformedError: no updates, too many, unsorted or repeated document names.
    """

    at: int
    updates: tuple[DocUpdate, ...]
    v: int = PAYLOAD_VERSION

    def __post_init__(self) -> None:
        if self.v != PAYLOAD_VERSION:
            raise UnsupportedVersionError(f"payload version {self.v} is not supported")
        if not isinstance(self.at, int) or isinstance(self.at, bool) or self.at < 0:
            raise MalformedError("payload at is a non-negative integer")
        if not 1 <= len(self.updates) <= MAX_UPDATES:
            raise MalformedError(f"a payload carries 1 to {MAX_UPDATES} updates")
        names = [update.doc for update in self.updates]
        if names != sorted(set(names)):
            raise MalformedError("payload updates are sorted by document name, one per document")

    def to_bytes(self) -> bytes:
        """The canonical encoding, ready to be sealed.

        Raises:
            OversizedError: larger than an entry's largest plaintext.
        """
        data = encoding.encode(
            {
                "v": self.v,
                "at": self.at,
                "updates": [{"doc": u.doc, "update": u.update} for u in self.updates],
            }
        )
        if len(data) > MAX_PLAINTEXT:
            raise OversizedError("the change is too large for one entry")
        return data

    @classmethod
    def from_bytes(cls, data: bytes) -> Payload:
        """Decode an entry's plaintext.

        Raises:
            MalformedError: not the canonical encoding of a payload map.
            UnsupportedVersionError: a ``v`` other than 1.
        """
        fields: dict[str, Any] = encoding.decode_map(data, max_size=MAX_PLAINTEXT)
        if set(fields) != {"v", "at", "updates"}:
            raise MalformedError("a payload has exactly the fields v, at and updates")
        version = fields["v"]
        if not isinstance(version, int) or isinstance(version, bool):
            raise MalformedError("payload v must be an integer")
        if version != PAYLOAD_VERSION:
            raise UnsupportedVersionError(f"payload version {version} is not supported")
        raw_updates = fields["updates"]
        if not isinstance(raw_updates, list):
            raise MalformedError("payload updates must be an array")
        updates = []
        for item in raw_updates:
            if not isinstance(item, dict) or set(item) != {"doc", "update"}:
                raise MalformedError("each payload update is a map of doc and update")
            if not isinstance(item["doc"], str):
                raise MalformedError("a document name is text")
            updates.append(DocUpdate(doc=item["doc"], update=item["update"]))
        return cls(v=version, at=fields["at"], updates=tuple(updates))
