"""Local writes and the outbox (part of :class:`client_lib.replica.Replica`).

Theory of operation (SPEC.md 4.1, 4.5.5, 7):

* A local change is made in the documents inside :meth:`LocalWrites.change`; the
  updates it produced (one merged update per document) become the payload of this
  device's next entry: the next seq, ``prev`` = the feed's head, ``seen`` = the head of
  every other feed held, the roster's current epoch. The entry and its outbox row are
  stored in one transaction, so a write that returned is never lost.
* Only ``shared`` and this member's own voice can be changed; anything else is undone
  and refused before an entry is made. If sealing or storing fails, the documents are
  rebuilt from the store, so memory never holds a change the store does not.
* A device that is not (or no longer) an active device of the roster cannot write.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from client_lib.documents import DocumentSet, voice_owner
from client_lib.errors import NoEpochKeyError, NotAllowedError
from client_lib.events import ContentState, ReplicaEvent
from client_lib.payload import DocUpdate, Payload
from client_lib.records import VoiceRecord, record_bytes, record_key, record_member
from client_lib.store import StoredEntry
from protocol.entry import Entry, EntryType, SeenHead, entry_id, seal, seal_roster
from protocol.errors import UsageError
from protocol.feeds import entry_references
from protocol.roster import Record as RosterRecord
from protocol.roster import Roster, encode_record

if TYPE_CHECKING:
    from client_lib.agreements import Clock
    from client_lib.keystore import Keystore
    from client_lib.store import Store

#: The most heads an entry's ``seen`` may name (SPEC.md 4.1).
MAX_SEEN_HEADS = 256


@dataclass(frozen=True, slots=True, kw_only=True)
class OutboxEntry:
    """One of this device's entries the relay has not acknowledged yet."""

    id: bytes
    seq: int
    raw: bytes


class LocalWrites:
    """Writing entries of this device; mixed into :class:`client_lib.replica.Replica`."""

    space: bytes
    _store: Store
    _keys: Keystore
    _roster: Roster
    _clock: Clock
    _docs: DocumentSet
    _generation: int
    _reach: dict[bytes, int]

    if TYPE_CHECKING:  # provided by the replica and FeedStatus

        @property
        def device(self) -> bytes: ...

        @property
        def member_id(self) -> bytes: ...

        def _chain_entries(self) -> list[tuple[StoredEntry, Entry]]: ...

        def _refold_from(
            self, entries: Sequence[tuple[StoredEntry, Entry]]
        ) -> list[ReplicaEvent]: ...

        def _reevaluate(
            self, entries: Sequence[tuple[StoredEntry, Entry]]
        ) -> list[ReplicaEvent]: ...

        def _replay(self, entry: Entry) -> None: ...

        def _rank_of(self, device: bytes, seq: int) -> int: ...

        def _floor_of(self, entry: Entry) -> int: ...

        def _after_apply(self) -> None: ...

        def _note_acknowledged(self, entry_ids: Iterable[bytes]) -> None: ...

    # -- local writes ------------------------------------------------------------------

    @contextmanager
    def change(self) -> Iterator[DocumentSet]:
        """Edit the documents; on leaving, the edits become one entry of this device.

        Only ``shared`` and this member's own voice may be edited.

        Raises:
            NotAllowedError: an edit touched another member's voice, or this device
                was removed from the space. The edit is undone.
            NoEpochKeyError: this device holds no key for the space's current epoch.
        """
        with self._docs.local_edit() as updates:
            try:
                yield self._docs
            except BaseException:
                self._reload_documents()
                raise
        if not updates:
            return
        for name in updates:
            owner = voice_owner(name)
            if owner is not None and owner != self.member_id:
                self._reload_documents()
                raise NotAllowedError("only your own voice can be written from this device")
        doc_updates = tuple(DocUpdate(doc=name, update=data) for name, data in updates.items())
        try:
            payload = Payload(at=self._clock(), updates=doc_updates)
            self._append(EntryType.DATA, payload.to_bytes())
        except BaseException:
            self._reload_documents()
            raise
        self._generation += 1

    def write_records(self, records: Sequence[VoiceRecord]) -> None:
        """Write records into this member's own voice (skipping ones already there).

        Raises:
            UsageError: a record speaks for another member.
            NotAllowedError, NoEpochKeyError: see :meth:`change`.
        """
        for record in records:
            if record_member(record) != self.member_id:
                raise UsageError("a device writes records only for its own member")
        voice = self._docs.voice(self.member_id)
        with self.change():
            for record in records:
                data = record_bytes(record)
                key = record_key(record, data)
                if not voice.has_record(key):
                    voice.put_record(key, data)

    def append_roster(self, record: RosterRecord) -> bytes:
        """Write a roster record as this device's next entry; returns the entry id.

        Raises:
            NotAllowedError: this device was removed from the space.
            OversizedError: the record is too large.
        """
        entry_id_ = self._append(EntryType.ROSTER, encode_record(record))
        entries = self._chain_entries()
        self._refold_from(entries)
        self._reevaluate(entries)
        return entry_id_

    def _reload_documents(self) -> None:
        """Rebuild the documents from the store (after a local edit that was not kept)."""
        self._docs = DocumentSet()
        upto, snapshots = self._store.load_snapshots(self.space)
        self._docs.restore(snapshots)
        for stored in self._store.entries(self.space, after=upto, type=EntryType.DATA.value):
            if stored.content == ContentState.APPLIED:
                self._replay(Entry.from_bytes(stored.raw))
        self._generation += 1

    def _append(self, entry_type: EntryType, body: bytes) -> bytes:
        if not self._roster.is_active(self.device):
            if self._roster.founded and self.device in self._roster.known_devices:
                raise NotAllowedError("this device was removed from the space")
            if self._roster.founded or entry_type is EntryType.DATA:
                raise NotAllowedError("this device has not joined the space yet")
        heads = self._store.heads(self.space)
        head = heads.get(self.device)
        seen = tuple(
            SeenHead(device=device, seq=h.seq, id=h.id)
            for device, h in sorted(heads.items())
            if device != self.device
        )
        if len(seen) > MAX_SEEN_HEADS:
            raise UsageError("this space has more feeds than an entry can name")
        epoch = self._roster.epoch
        common = {
            "device_key": self._keys.device_key,
            "space": self.space,
            "seq": (head.seq if head is not None else 0) + 1,
            "prev": head.id if head is not None else None,
            "epoch": epoch,
            "seen": seen,
        }
        if entry_type is EntryType.ROSTER:
            entry = seal_roster(record=body, **common)  # type: ignore[arg-type]
        else:
            key = self._keys.epoch_keys(self.space).get(epoch)
            if key is None:
                raise NoEpochKeyError(
                    "this device does not hold the space's current key yet; changes can be "
                    "made once it arrives"
                )
            entry = seal(epoch_key=key, plaintext=body, **common)  # type: ignore[arg-type]
        raw = entry.to_bytes()
        eid = entry_id(raw)
        refs = entry_references(entry)
        rank = 1 + max((self._rank_of(device, seq) for _, device, seq in refs), default=0)
        now = self._clock()
        state = ContentState.ROSTER if entry_type is EntryType.ROSTER else ContentState.APPLIED
        with self._store.transaction():
            self._store.insert_entry(
                StoredEntry(
                    id=eid,
                    space=self.space,
                    device=self.device,
                    seq=entry.seq,
                    type=entry_type.value,
                    epoch=epoch,
                    rank=rank,
                    content=state.value,
                    raw=raw,
                    received_at=now,
                )
            )
            self._store.add_outbox(eid, self.space, at=now)
            self._store.note_heard(self.space, self.device, seq=entry.seq, at=now)
        self._reach[eid] = self._floor_of(entry)
        self._after_apply()
        return eid

    # -- outbox ------------------------------------------------------------------------

    def pending_outbox(self) -> list[OutboxEntry]:
        """This device's entries the relay has not acknowledged, in feed order."""
        return [
            OutboxEntry(id=e.id, seq=e.seq, raw=e.raw)
            for e in self._store.pending_outbox(self.space)
        ]

    def mark_acknowledged(self, entry_ids: Iterable[bytes]) -> int:
        """The relay holds these entries: drop them from the outbox. Returns how many."""
        ids = list(entry_ids)
        self._note_acknowledged(ids)
        return self._store.mark_acknowledged(ids)

    def feed_entries(self, device: bytes, *, after_seq: int = 0) -> list[bytes]:
        """Encoded entries of one feed held here, after ``after_seq`` (to upload again
        after a relay lost them)."""
        return [e.raw for e in self._store.feed_entries(self.space, device, after_seq=after_seq)]
