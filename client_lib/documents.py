"""The CRDT documents of a space, over pycrdt (the only module that imports it).

Theory of operation (SPEC.md section 7.2):

* A space holds named documents. ``voice/<member id hex>`` belongs to one member and
  holds that member's records; ``shared`` holds what every member edits together.
  This module knows names, root types and keys; it does not know who may write what
  (the replica checks authorship before anything reaches :meth:`Document.apply_update`).
* Every root type is created locally, with a fixed type, before any remote update is
  applied, so a remote update can never change what a root name means. Reads skip
  values of the wrong type instead of failing.
* A remote update is decoded in a scratch document before it touches the real one, so
  malformed bytes are refused with :class:`MalformedUpdateError` and change nothing.
* Yjs keeps an update whose dependencies have not arrived "pending" inside the
  document, and a document's own encoded state leaves pending parts out. A snapshot
  is therefore the merge of every update applied so far (``merge_updates``), which
  keeps pending parts, so a document restored from a snapshot is the same document.
* Local edits happen inside :meth:`Document.local_edit`; the updates that the edit
  produced are collected from the document's transaction events and returned, ready
  to be carried in an entry.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import pycrdt

from protocol.crypto import MEMBER_ID_BYTES
from protocol.errors import MalformedError

SHARED = "shared"
VOICE_PREFIX = "voice/"
_VOICE = re.compile(rf"voice/([0-9a-f]{{{2 * MEMBER_ID_BYTES}}})")

# Root names (SPEC.md 7.2).
RECORDS = "records"  # voice: Map, record key -> canonical CBOR bytes
PLAN_TEXT = "plan"  # shared: Text, the crisis plan's free wording
PLAN_STEPS = "plan_steps"  # shared: Map, step key -> canonical CBOR bytes
NOTES = "notes"  # shared: Map, note key -> Text
SCHEDULE = "schedule"  # shared: Map, the check-in schedule (see SharedDocument)

#: Largest single update carried in an entry.
MAX_UPDATE_BYTES = 512 * 1024


class MalformedUpdateError(MalformedError):
    """A CRDT update that the engine cannot decode or apply. Nothing was changed."""


def voice_name(member: bytes) -> str:
    """The document name of a member's voice: ``voice/`` and 32 lowercase hex digits."""
    if len(member) != MEMBER_ID_BYTES:
        raise ValueError(f"a member id is {MEMBER_ID_BYTES} bytes")
    return VOICE_PREFIX + member.hex()


def voice_owner(name: str) -> bytes | None:
    """The member whose voice ``name`` is, or None for ``shared``.

    Raises:
        MalformedError: ``name`` is neither ``shared`` nor a well-formed voice name.
    """
    if name == SHARED:
        return None
    match = _VOICE.fullmatch(name) if isinstance(name, str) else None
    if match is None:
        raise MalformedError("a document name is 'shared' or 'voice/' and 32 hex digits")
    return bytes.fromhex(match.group(1))


def _engine_failed(exc: BaseException) -> bool:
    """True for a failure inside the CRDT engine (including a Rust panic)."""
    return not isinstance(exc, KeyboardInterrupt | SystemExit | GeneratorExit)


def check_update(update: bytes) -> None:
    """Decode ``update`` in a scratch document; refuse it if that fails.

    Raises:
        MalformedUpdateError: not bytes, too large, or not a decodable update.
    """
    if not isinstance(update, bytes):
        raise MalformedUpdateError("a document update must be bytes")
    if len(update) > MAX_UPDATE_BYTES:
        raise MalformedUpdateError("a document update is larger than allowed")
    try:
        pycrdt.Doc().apply_update(update)
    except BaseException as exc:
        if not _engine_failed(exc):
            raise
        raise MalformedUpdateError("the document update cannot be decoded") from None


#: Updates merged at a time when a snapshot folds many (see :func:`_merge_all`).
MERGE_FANOUT = 64


def _merge_all(parts: list[bytes]) -> bytes:
    """Merge updates into one, a group of :data:`MERGE_FANOUT` at a time, then the
    results again: the engine's merge of thousands of small updates at once costs far
    more than merging them in rounds, and merging is associative."""
    level = parts
    while len(level) > 1:
        level = [
            bytes(pycrdt.merge_updates(*level[i : i + MERGE_FANOUT]))
            if len(level[i : i + MERGE_FANOUT]) > 1
            else level[i]
            for i in range(0, len(level), MERGE_FANOUT)
        ]
    return level[0]


class Document:
    """One named CRDT document. Subclasses add typed accessors for their roots."""

    def __init__(self, name: str) -> None:
        voice_owner(name)
        self.name = name
        self._base: bytes | None = None
        self._log: list[bytes] = []
        self._collecting: list[bytes] | None = None
        #: Counts the transactions seen; readers cache what they derive by it.
        self.changes = 0
        self._reset()

    def _reset(self) -> None:
        """Start from an empty engine document with the root types declared."""
        self.changes += 1
        self._doc: pycrdt.Doc[Any] = pycrdt.Doc()
        self._declare_roots()
        self._doc.observe(self._on_transaction)

    def _declare_roots(self) -> None:
        """Create the root types with their fixed types (before any remote update)."""

    def _on_transaction(self, event: Any) -> None:
        self.changes += 1
        if self._collecting is not None:
            update = bytes(event.update)
            self._collecting.append(update)
            self._log.append(update)

    # -- updates -----------------------------------------------------------------------

    def apply_update(self, update: bytes) -> None:
        """Merge a remote update.

        Raises:
            MalformedUpdateError: the update cannot be decoded or applied; the document
                is left as it was.
        """
        check_update(update)
        try:
            self._doc.apply_update(update)
        except BaseException as exc:
            if not _engine_failed(exc):
                raise
            self._rebuild()
            raise MalformedUpdateError("the document update cannot be applied") from None
        self._log.append(update)

    def _rebuild(self) -> None:
        """Rebuild the engine document from what was applied before a failed update."""
        self._reset()
        for part in ([self._base] if self._base else []) + self._log:
            self._doc.apply_update(part)

    @contextmanager
    def local_edit(self) -> Iterator[list[bytes]]:
        """Collect the updates of the local edits made inside the block.

        The yielded list is filled when the block ends (one update per transaction).
        """
        collected: list[bytes] = []
        self._collecting = collected
        try:
            yield collected
        finally:
            self._collecting = None

    def state_vector(self) -> bytes:
        """The Yjs state vector of the document."""
        return bytes(self._doc.get_state())

    def update_since(self, state_vector: bytes | None = None) -> bytes:
        """What another copy with ``state_vector`` lacks (everything when None).

        Raises:
            MalformedUpdateError: ``state_vector`` cannot be decoded.
        """
        try:
            return bytes(self._doc.get_update(state_vector))
        except BaseException as exc:
            if not _engine_failed(exc):
                raise
            raise MalformedUpdateError("the state vector cannot be decoded") from None

    # -- snapshots ---------------------------------------------------------------------

    def snapshot(self) -> bytes:
        """Everything applied so far, pending parts included, as one update."""
        parts = ([self._base] if self._base else []) + self._log
        if not parts:
            return bytes(self._doc.get_update())
        merged = _merge_all(parts)
        self._base = merged
        self._log = []
        return merged

    @classmethod
    def from_snapshot(cls, name: str, snapshot: bytes) -> Document:
        """A document restored from :meth:`snapshot`.

        Raises:
            MalformedUpdateError: the snapshot cannot be decoded.
        """
        doc = cls(name)
        doc.apply_update(snapshot)
        doc._base = snapshot
        doc._log = []
        return doc


class VoiceDocument(Document):
    """``voice/<member>``: one root Map ``records``, record key -> canonical CBOR bytes."""

    def _declare_roots(self) -> None:
        self._records: pycrdt.Map[Any] = self._doc.get(RECORDS, type=pycrdt.Map)
        # Kept up to date from the map's change events, so reading stays cheap.
        self._raw: dict[str, bytes] = {}
        self._records.observe(self._on_records)

    def _on_records(self, event: Any) -> None:
        for key, change in dict(event.keys).items():
            if not isinstance(key, str):
                continue
            value = change.get("newValue") if change.get("action") != "delete" else None
            if isinstance(value, bytes | bytearray):
                self._raw[key] = bytes(value)
            else:
                self._raw.pop(key, None)

    @property
    def owner(self) -> bytes:
        owner = voice_owner(self.name)
        assert owner is not None
        return owner

    def put_record(self, key: str, value: bytes) -> None:
        """Store a record under its key (call inside :meth:`local_edit`)."""
        self._records[key] = value

    def raw_records(self) -> dict[str, bytes]:
        """Every record value that is a byte string, by key; other values are skipped."""
        return dict(self._raw)

    def has_record(self, key: str) -> bool:
        return key in self._raw


class SharedDocument(Document):
    """``shared``: the crisis plan's wording and steps, notes and the check-in schedule.

    Roots: ``plan`` (Text), ``plan_steps`` (Map, step key -> canonical CBOR bytes),
    ``notes`` (Map, note key -> Text), ``schedule`` (Map of plain values).
    """

    def _declare_roots(self) -> None:
        self._plan: pycrdt.Text = self._doc.get(PLAN_TEXT, type=pycrdt.Text)
        self._steps: pycrdt.Map[Any] = self._doc.get(PLAN_STEPS, type=pycrdt.Map)
        self._notes: pycrdt.Map[Any] = self._doc.get(NOTES, type=pycrdt.Map)
        self._schedule: pycrdt.Map[Any] = self._doc.get(SCHEDULE, type=pycrdt.Map)

    # plan wording
    def plan_text(self) -> str:
        return str(self._plan)

    def set_plan_text(self, text: str) -> None:
        """Replace the plan wording, touching only the part that changed."""
        old = str(self._plan)
        start = 0
        while start < min(len(old), len(text)) and old[start] == text[start]:
            start += 1
        end_old, end_new = len(old), len(text)
        while end_old > start and end_new > start and old[end_old - 1] == text[end_new - 1]:
            end_old -= 1
            end_new -= 1
        with self._doc.transaction():
            if end_old > start:
                del self._plan[start:end_old]
            if end_new > start:
                self._plan.insert(start, text[start:end_new])

    # plan steps
    def plan_steps(self) -> dict[str, bytes]:
        return {
            key: bytes(value)
            for key, value in self._steps.items()
            if isinstance(key, str) and isinstance(value, bytes | bytearray)
        }

    def put_plan_step(self, key: str, value: bytes) -> None:
        self._steps[key] = value

    def remove_plan_step(self, key: str) -> None:
        if key in self._steps:
            del self._steps[key]

    # notes
    def notes(self) -> dict[str, str]:
        return {
            key: str(value)
            for key, value in self._notes.items()
            if isinstance(key, str) and isinstance(value, pycrdt.Text)
        }

    def set_note(self, key: str, text: str) -> None:
        """Create a note, or replace its text."""
        current = self._notes.get(key)
        if isinstance(current, pycrdt.Text):
            with self._doc.transaction():
                del current[0 : len(current)]
                current.insert(0, text)
        else:
            self._notes[key] = pycrdt.Text(text)

    def remove_note(self, key: str) -> None:
        if key in self._notes:
            del self._notes[key]

    # check-in schedule
    def schedule(self) -> dict[str, str | int]:
        """The schedule's plain values: integers stay integers, text stays text."""
        found: dict[str, str | int] = {}
        for key, value in self._schedule.items():
            if isinstance(value, str):
                found[key] = value
            elif isinstance(value, int | float) and not isinstance(value, bool):
                if float(value).is_integer():
                    found[key] = int(value)
        return found

    def set_schedule(self, values: dict[str, str | int]) -> None:
        with self._doc.transaction():
            for key in list(self._schedule.keys()):
                if key not in values:
                    del self._schedule[key]
            for key, value in values.items():
                self._schedule[key] = value


def document_for(name: str) -> Document:
    """A new, empty document of the right class for ``name``.

    Raises:
        MalformedError: ``name`` is not a document name.
    """
    return SharedDocument(name) if voice_owner(name) is None else VoiceDocument(name)


def restore_document(name: str, snapshot: bytes) -> Document:
    """A document of the right class restored from a snapshot.

    Raises:
        MalformedError: ``name`` is not a document name.
        MalformedUpdateError: the snapshot cannot be decoded.
    """
    cls = SharedDocument if voice_owner(name) is None else VoiceDocument
    return cls.from_snapshot(name, snapshot)


def merge_updates(updates: list[bytes]) -> bytes:
    """One update equivalent to all of ``updates`` (Yjs update merging)."""
    if len(updates) == 1:
        return updates[0]
    return bytes(pycrdt.merge_updates(*updates))


class DocumentSet:
    """The documents of one space, created on first use."""

    def __init__(self) -> None:
        self._docs: dict[str, Document] = {}
        self._edit: ExitStack | None = None
        self._collected: dict[str, list[bytes]] = {}

    @contextmanager
    def local_edit(self) -> Iterator[dict[str, bytes]]:
        """Collect every local edit made inside the block, in any document.

        The yielded dict is filled when the block ends: one merged update per document
        that changed, by document name.
        """
        result: dict[str, bytes] = {}
        with ExitStack() as stack:
            self._edit = stack
            self._collected = {}
            try:
                for doc in self._docs.values():
                    self._collect(doc)
                yield result
            finally:
                self._edit = None
        for name, updates in sorted(self._collected.items()):
            if updates:
                result[name] = merge_updates(updates)
        self._collected = {}

    def _collect(self, doc: Document) -> None:
        assert self._edit is not None
        self._collected[doc.name] = self._edit.enter_context(doc.local_edit())

    def names(self) -> list[str]:
        return sorted(self._docs)

    def get(self, name: str) -> Document:
        """The document ``name``, created empty if new.

        Raises:
            MalformedError: ``name`` is not a document name.
        """
        doc = self._docs.get(name)
        if doc is None:
            doc = document_for(name)
            self._docs[name] = doc
            if self._edit is not None:
                self._collect(doc)
        return doc

    def voice(self, member: bytes) -> VoiceDocument:
        doc = self.get(voice_name(member))
        assert isinstance(doc, VoiceDocument)
        return doc

    def voices(self) -> dict[bytes, VoiceDocument]:
        """Every voice document present, by owner."""
        found = {}
        for name, doc in self._docs.items():
            if isinstance(doc, VoiceDocument):
                found[bytes.fromhex(name[len(VOICE_PREFIX) :])] = doc
        return found

    @property
    def shared(self) -> SharedDocument:
        doc = self.get(SHARED)
        assert isinstance(doc, SharedDocument)
        return doc

    def restore(self, snapshots: dict[str, bytes]) -> None:
        """Replace the documents by those restored from snapshots.

        Raises:
            MalformedError, MalformedUpdateError: see :func:`restore_document`.
        """
        self._docs = {name: restore_document(name, data) for name, data in snapshots.items()}

    def snapshots(self) -> dict[str, bytes]:
        return {name: doc.snapshot() for name, doc in self._docs.items()}
