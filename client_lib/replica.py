"""The replica: one space on this device, with no network.

Theory of operation (SPEC.md 4.5, 5, 6, 7.5):

* **Chain.** An entry joins its feed's chain here when it is authentic (its signature
  verifies), it is the next seq of its feed, its ``prev`` names the feed's head, and
  every entry its ``seen`` names is already held. Otherwise it waits in the store
  (``waiting``) until the gap fills: kept, never lost. Two signed entries at one
  (device, seq) are a fork: the proof is kept and reported, and the feed stops at the
  fork. A bad feed never stops another one.
* **Roster.** The roster is :func:`protocol.roster.fold` over every entry in the
  chains, folded again whenever a roster entry joins. Epoch floors come from
  :func:`protocol.epochs.epoch_floors`.
* **Content.** A data entry that joined its chain is judged by
  :mod:`client_lib.content`: applied, held (its device, epoch or key is not there
  yet, or it comes after its device's removal) or refused. Held entries are judged
  again whenever the roster or the keys change; if an applied entry stops counting
  (a removal arrived that cuts it), the documents are rebuilt from the entries that
  still count. Every replica holding the same entries reaches the same documents.
* **Writes.** A local change is made in the documents, sealed into the next entry
  of this device's feed (next seq, ``prev``, ``seen`` heads, current epoch) and stored
  with its outbox row in one transaction.
* **Durability.** The store commits before the documents change in memory; the
  documents are snapshotted regularly, and a restart replays only entries after the
  last snapshot.

The sync engine uses :meth:`have_vector`, :meth:`pending_outbox`,
:meth:`mark_acknowledged`, :meth:`ingest_many`, :meth:`note_relay_heads` and the key
envelope methods; the agreements API uses :meth:`change`, :meth:`write_records`,
:meth:`voice_records` and :meth:`members`.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Sequence

from client_lib.agreements import Clock, wall_clock_ms
from client_lib.content import Verdict, judge_data_entry, open_content, roster_verdict
from client_lib.documents import DocumentSet, MalformedUpdateError
from client_lib.events import (
    Accepted,
    ContentState,
    Duplicate,
    ForkDetected,
    Problem,
    Refused,
    ReplicaEvent,
    Waiting,
    WaitReason,
    where,
)
from client_lib.feed_status import FeedStatus
from client_lib.key_rotation import KeyRotation
from client_lib.keystore import Keystore
from client_lib.local_writes import LocalWrites
from client_lib.payload import DocUpdate
from client_lib.records import (
    VoiceRecord,
    read_voice_record,
)
from client_lib.store import Store, StoredEntry, WaitingEntry
from protocol.crypto import fingerprint, verify_signature
from protocol.entry import Entry, EntryType, entry_id
from protocol.epochs import epoch_floors
from protocol.errors import (
    BadSignatureError,
    ErrorCode,
    ProtocolError,
    UsageError,
)
from protocol.feeds import ForkProof, entry_references
from protocol.roster import Roster, fold

Progress = Callable[[int, int], None]
#: Take a snapshot of the documents after this many applied entries.
SNAPSHOT_EVERY = 64
#: Entries placed from one batch per local transaction.
COMMIT_EVERY = 500


class Replica(LocalWrites, KeyRotation, FeedStatus):
    """One space on this device: chains, roster, documents, outbox."""

    def __init__(
        self,
        *,
        space: bytes,
        store: Store,
        keystore: Keystore,
        clock: Clock = wall_clock_ms,
        snapshot_every: int = SNAPSHOT_EVERY,
    ) -> None:
        self.space = space
        self._store = store
        self._keys = keystore
        self._clock = clock
        self._snapshot_every = snapshot_every
        self._since_snapshot = 0
        #: True while a batch is placed: snapshots wait for its end (see ingest_many).
        self._batching = False
        #: The batch being ingested, parsed, by id: read again instead of parsing again.
        self._parsed: dict[bytes, Entry] = {}
        self._docs = DocumentSet()
        self._roster = Roster.empty(space)
        self._reach: dict[bytes, int] = {}
        self._generation = 0
        self._records_cache: tuple[int, dict[bytes, list[VoiceRecord]]] | None = None
        self._checked_records: dict[tuple[bytes, str], tuple[bytes, VoiceRecord | None]] = {}
        self._record_problems: list[Problem] = []
        self._forked: dict[bytes, int] | None = None
        store.add_space(space, at=clock())
        self._load()

    # -- identity and state ------------------------------------------------------------

    @property
    def device(self) -> bytes:
        return self._keys.device_key.public

    @property
    def member_id(self) -> bytes:
        return self._keys.member_id

    @property
    def roster(self) -> Roster:
        """The roster folded from every entry held (do not mutate)."""
        return self._roster

    def members(self) -> frozenset[bytes]:
        """The current members (those with an active device)."""
        return self._roster.members

    @property
    def documents(self) -> DocumentSet:
        """The space's documents. Read them freely; change them only in :meth:`change`."""
        return self._docs

    @property
    def rotation_due(self) -> bool:
        """True when a removal happened since the current key began (SPEC 5.5): an active
        device should call :meth:`rotate_epoch`."""
        return self._roster.rotation_due and self._roster.is_active(self.device)

    def get_sync_state(self, key: str) -> bytes | None:
        """A value the sync engine kept for this space (None when never set)."""
        return self._store.get_state(self.space, key)

    def set_sync_state(self, key: str, value: bytes) -> None:
        """Keep a small value for the sync engine (a cursor, a relay address...)."""
        self._store.set_state(self.space, key, value)

    def have_vector(self) -> dict[bytes, int]:
        """``{device: seq}``: the head of every feed's chain held here."""
        return {device: head.seq for device, head in self._store.heads(self.space).items()}

    # -- loading and rebuilding --------------------------------------------------------

    def _load(self) -> None:
        entries = self._chain_entries()
        self._refold_from(entries)
        upto, snapshots = self._store.load_snapshots(self.space)
        try:
            self._docs.restore(snapshots)
        except (MalformedUpdateError, ProtocolError):
            upto = 0
            self._docs = DocumentSet()
        for stored in self._store.entries(self.space, after=upto, type=EntryType.DATA.value):
            if stored.content == ContentState.APPLIED:
                self._replay(Entry.from_bytes(stored.raw))
        self._generation += 1
        self._reevaluate(entries)

    def _chain_entries(self) -> list[tuple[StoredEntry, Entry]]:
        parsed = self._parsed
        stored = self._store.entries(self.space)
        return [(s, parsed.get(s.id) or Entry.from_bytes(s.raw)) for s in stored]

    def _replay(self, entry: Entry) -> None:
        key = self._keys.epoch_keys(self.space).get(entry.epoch)
        if key is None:
            return
        verdict = open_content(entry, key=key, author=self._roster.member_of(entry.device))
        self._apply(verdict.updates)

    def _apply(self, updates: Iterable[DocUpdate]) -> None:
        for update in updates:
            try:
                self._docs.get(update.doc).apply_update(update.update)
            except (MalformedUpdateError, ProtocolError):
                continue  # checked before; an engine failure here changes nothing
        self._generation += 1

    def _refold_from(self, entries: Sequence[tuple[StoredEntry, Entry]]) -> list[ReplicaEvent]:
        """Fold the roster again and recompute every entry's epoch reach."""
        chain = [entry for _, entry in entries]
        evidence: list[Entry] = []
        for _, proof in self._store.forks(self.space).values():
            try:
                evidence.extend(ForkProof.from_bytes(proof).entries())
            except ProtocolError:
                continue
        roster, refusals = fold([*chain, *evidence], space=self.space)
        self._roster = roster
        rotations = roster.rotations
        floors = epoch_floors(chain, rotations)
        self._reach = {eid: max(floor, rotations.get(eid, 0)) for eid, floor in floors.items()}
        events: list[ReplicaEvent] = []
        for refusal in refusals:
            problem = Refused(
                space=self.space,
                entry_id=refusal.entry.id,
                device=refusal.entry.device,
                seq=refusal.entry.seq,
                code=refusal.code,
                detail="A change to who is in the space did not follow the rules, so it was "
                "not used.",
            )
            events.extend(self._report(problem))
        return events

    def _reevaluate(self, entries: Sequence[tuple[StoredEntry, Entry]]) -> list[ReplicaEvent]:
        """Judge held entries again, and un-count applied ones the roster now cuts."""
        by_id = {entry.id: entry for _, entry in entries}
        forked = {device: seq for device, (seq, _) in self._store.forks(self.space).items()}
        keys = self._keys.epoch_keys(self.space)
        events: list[ReplicaEvent] = []
        changes: list[tuple[bytes, ContentState]] = []
        newly: list[Verdict] = []
        rebuild = False
        for stored, entry in entries:
            if entry.type is not EntryType.DATA or stored.content == ContentState.REFUSED:
                continue
            prev = by_id.get(entry.prev) if entry.prev is not None else None
            context = {
                "roster": self._roster,
                "floor": self._floor_of(entry),
                "prev_epoch": prev.epoch if prev is not None else 0,
                "forked_from": forked,
            }
            if stored.content == ContentState.APPLIED:
                held = roster_verdict(entry, **context)  # type: ignore[arg-type]
                if held is not None:
                    rebuild = True
                    changes.append((entry.id, ContentState.HELD))
                    if held.problem is not None:
                        events.extend(self._report(held.problem))
            else:
                verdict = judge_data_entry(entry, epoch_keys=keys, **context)  # type: ignore[arg-type]
                if verdict.state != ContentState.HELD:
                    changes.append((entry.id, verdict.state))
                    newly.append(verdict)
                    events.append(self._accepted(entry, verdict.state))
                if verdict.problem is not None:
                    events.extend(self._report(verdict.problem))
        if not changes:
            return events
        if rebuild:
            # Start the documents again from the entries that still count. The store is
            # changed only below, together with the new snapshot, so a crash in between
            # leaves the old states and the old snapshot, which agree.
            final = {stored.id: stored.content for stored, _ in entries}
            final.update({eid: state.value for eid, state in changes})
            self._docs = DocumentSet()
            for stored, entry in entries:
                if entry.type is EntryType.DATA and final[stored.id] == ContentState.APPLIED:
                    self._replay(entry)
        else:
            for verdict in newly:
                self._apply(verdict.updates)
        with self._store.transaction():
            for eid, state in changes:
                self._store.set_content(eid, state)
            self._save_snapshot()
        return events

    def _floor_of(self, entry: Entry) -> int:
        return max((self._reach.get(ref, 0) for ref, _, _ in entry_references(entry)), default=0)

    def _save_snapshot(self) -> None:
        self._store.save_snapshots(
            self.space,
            self._docs.snapshots(),
            upto=self._store.last_order(self.space),
            at=self._clock(),
        )
        self._since_snapshot = 0

    def snapshot(self) -> None:
        """Save the documents now, so the next start replays nothing."""
        with self._store.transaction():
            self._save_snapshot()

    def _accepted(self, entry: Entry, state: ContentState) -> Accepted:
        return Accepted(
            space=self.space, entry_id=entry.id, device=entry.device, seq=entry.seq, content=state
        )

    # -- ingesting ---------------------------------------------------------------------

    def ingest(self, raw: bytes) -> list[ReplicaEvent]:
        """Verify one encoded entry and use it if it can be used; never raises for bad input.

        Returns the typed events: accepted, duplicate, waiting, or problems (refused,
        fork with proof, not-author...). Ingesting the same entry again does nothing.
        """
        return self.ingest_many([raw])

    def ingest_many(
        self, raws: Iterable[bytes], *, progress: Progress | None = None
    ) -> list[ReplicaEvent]:
        """Ingest many entries (in any order); ``progress(done, total)`` is called as it goes.

        The batch is placed in causal order (every entry after what it names, SPEC 4.5.4),
        so an entry waits only for what is missing from both the store and the batch; the
        entries left waiting are tried again once, in causal order, after the batch. Work
        grows with the batch and the waiting entries, never with their product.
        """
        items = list(raws)
        total = len(items)
        events: list[ReplicaEvent] = []
        batch: dict[bytes, tuple[Entry, bytes]] = {}
        for raw in items:
            try:
                entry = Entry.from_bytes(raw)
            except ProtocolError as error:
                events.extend(self._report_malformed(raw, error))
                continue
            except TypeError:
                events.extend(self._report_malformed(b"", UsageError("not bytes")))
                continue
            batch.setdefault(entry.id, (entry, bytes(raw)))
        skipped = total - len(batch)
        roster_changed = False
        placed = 0
        ordered = _causally(batch)
        self._parsed = {eid: entry for eid, (entry, _) in batch.items()}
        # A snapshot holds whole documents, so taking one every few entries of a long
        # history would cost time growing with its square; one at the end of the batch
        # is enough (a crash before it only makes the next start replay more).
        self._batching = True
        try:
            for start in range(0, len(ordered), COMMIT_EVERY):
                # One transaction per slice: nothing was acknowledged to anyone yet, so
                # a crash loses at most a slice, which the next sync fetches again.
                with self._store.transaction():
                    for done, (entry, raw) in enumerate(
                        ordered[start : start + COMMIT_EVERY], start=start + 1
                    ):
                        new_events, changed = self._ingest_one(raw, from_waiting=False, entry=entry)
                        events.extend(new_events)
                        roster_changed |= changed
                        placed += any(isinstance(event, Accepted) for event in new_events)
                        if progress is not None:
                            progress(done + skipped, total)
            if placed:
                with self._store.transaction():
                    drained, changed = self._drain_waiting()
                events.extend(drained)
                roster_changed |= changed
        except BaseException:
            self._batching = False
            self._parsed = {}
            self._reload()  # the documents in memory follow the store again
            raise
        self._batching = False
        if self._since_snapshot >= self._snapshot_every:
            self.snapshot()
        try:
            if roster_changed:
                entries = self._chain_entries()
                events.extend(self._reevaluate(entries))
                events.extend(self._retry_envelopes())
        finally:
            self._parsed = {}
        self.voice_records()
        events.extend(self.take_record_problems())
        return events

    def _reload(self) -> None:
        """Rebuild everything in memory from the store (after a failed write)."""
        self._docs = DocumentSet()
        self._roster = Roster.empty(self.space)
        self._reach = {}
        self._records_cache = None
        self._forked = None
        self._load()

    def _report_malformed(self, raw: bytes, error: Exception) -> list[ReplicaEvent]:
        code = error.code if isinstance(error, ProtocolError) else ErrorCode.MALFORMED
        problem = Refused(
            space=self.space,
            code=code,
            detail="Something arrived that is not a readable entry. It was set aside.",
        )
        return self._report(problem, dedupe=f"unreadable:{entry_id(raw).hex()}")

    def _ingest_one(
        self, raw: bytes, *, from_waiting: bool, entry: Entry | None = None
    ) -> tuple[list[ReplicaEvent], bool]:
        """Place one entry (``entry`` is ``raw`` parsed, when the caller has it). Returns
        its events and whether a roster entry joined."""
        entry = entry if entry is not None else Entry.from_bytes(raw)
        eid = entry.id
        at = where(self.space, eid, entry.device, entry.seq)
        if entry.space != self.space:
            problem = Refused(
                **at, code=ErrorCode.WRONG_SPACE, detail="An entry of another space arrived."
            )
            return self._report(problem), False
        if self._store.has_entry(eid):
            return [Duplicate(**at)], False
        if not from_waiting:
            if self._store.is_waiting(eid):
                return [Duplicate(**at)], False
            try:
                verify_signature(entry.device, entry.signing_bytes(), entry.sig)
            except BadSignatureError:
                problem = Refused(
                    **at,
                    code=ErrorCode.BAD_SIGNATURE,
                    detail="An entry's signature does not check out, so it was set aside.",
                )
                return self._report(problem), False
        fork_events = self._check_fork(entry, raw)
        if fork_events is not None:
            return fork_events, False
        head = self._store.feed_head(self.space, entry.device)
        head_seq = head.seq if head is not None else 0
        if entry.seq > head_seq + 1:
            return self._wait(entry, raw, WaitReason.GAP, from_waiting), False
        if entry.prev != (head.id if head is not None else None):
            problem = Refused(
                **at,
                code=ErrorCode.BROKEN_CHAIN,
                detail="An entry does not follow the one before it in its device's history, "
                "so it was set aside.",
            )
            self._store.remove_waiting(eid)
            return self._report(problem), False
        # rank = 1 + the highest rank of what it names: its prev (the head) and seen heads
        rank = head.rank if head is not None else 0
        for seen in entry.seen:
            held = self._store.ref_at(self.space, seen.device, seen.seq)
            if held is None:
                return self._wait(entry, raw, WaitReason.CAUSAL, from_waiting), False
            if held.id != seen.id:
                conflict = ForkDetected(
                    **at,
                    detail="A device read a different entry than the one we hold. That "
                    "device's history may have two versions.",
                )
                events = self._report(conflict, dedupe=f"seen-conflict:{eid.hex()}")
                wait = self._wait(entry, raw, WaitReason.CAUSAL, from_waiting)
                return events + wait, False
            rank = max(rank, held.rank)
        return self._place(
            entry,
            raw,
            rank=rank + 1,
            prev_epoch=head.epoch if head is not None else 0,
            from_waiting=from_waiting,
        )

    def _wait(
        self, entry: Entry, raw: bytes, reason: WaitReason, from_waiting: bool
    ) -> list[ReplicaEvent]:
        if from_waiting:
            return []
        self._store.put_waiting(
            WaitingEntry(
                id=entry.id,
                space=self.space,
                device=entry.device,
                seq=entry.seq,
                reason=reason.value,
                raw=raw,
                received_at=self._clock(),
            )
        )
        return [
            Waiting(
                space=self.space,
                entry_id=entry.id,
                device=entry.device,
                seq=entry.seq,
                reason=reason,
            )
        ]

    def _forked_from(self) -> dict[bytes, int]:
        """Forked feeds: device -> first forked seq (kept in memory between forks)."""
        if self._forked is None:
            self._forked = {d: seq for d, (seq, _) in self._store.forks(self.space).items()}
        return self._forked

    def _check_fork(self, entry: Entry, raw: bytes) -> list[ReplicaEvent] | None:
        """Report a fork if another signed entry holds this (device, seq); None if not."""
        others: list[Entry] = []
        placed = self._store.ref_at(self.space, entry.device, entry.seq)
        if placed is not None:
            stored = self._store.entry(placed.id)
            if stored is not None:
                others.append(Entry.from_bytes(stored.raw))
        for waiting in self._store.waiting_at(self.space, entry.device, entry.seq):
            if waiting.id != entry.id:
                others.append(Entry.from_bytes(waiting.raw))
        forked_at = self._forked_from().get(entry.device)
        if not others:
            if forked_at is not None and entry.seq >= forked_at:
                return self._wait(entry, raw, WaitReason.FORKED_FEED, False)
            return None
        proof = ForkProof.of(others[0], entry)
        self._store.record_fork(self.space, entry.device, entry.seq, proof.to_bytes())
        self._forked = None
        self._store.put_waiting(
            WaitingEntry(
                id=entry.id,
                space=self.space,
                device=entry.device,
                seq=entry.seq,
                reason=WaitReason.FORKED_FEED.value,
                raw=raw,
                received_at=self._clock(),
            )
        )
        problem = ForkDetected(
            space=self.space,
            entry_id=entry.id,
            device=entry.device,
            seq=entry.seq,
            proof=proof.to_bytes(),
            detail=proof.describe(),
        )
        events = self._report(problem)
        # The feed's entries from the fork on no longer count: judge them again.
        entries = self._chain_entries()
        events.extend(self._refold_from(entries))
        events.extend(self._reevaluate(entries))
        return events

    def _place(
        self,
        entry: Entry,
        raw: bytes,
        *,
        rank: int,
        prev_epoch: int,
        from_waiting: bool,
    ) -> tuple[list[ReplicaEvent], bool]:
        """Add an entry that follows its chain and whose causal past is held."""
        floor = self._floor_of(entry)
        events: list[ReplicaEvent] = []
        if entry.type is EntryType.ROSTER:
            verdict = Verdict(state=ContentState.ROSTER)
        else:
            verdict = judge_data_entry(
                entry,
                roster=self._roster,
                floor=floor,
                prev_epoch=prev_epoch,
                forked_from=self._forked_from(),
                epoch_keys=self._keys.epoch_keys(self.space),
            )
        now = self._clock()
        stored = StoredEntry(
            id=entry.id,
            space=self.space,
            device=entry.device,
            seq=entry.seq,
            type=entry.type.value,
            epoch=entry.epoch,
            rank=rank,
            content=verdict.state.value,
            raw=raw,
            received_at=now,
        )
        with self._store.transaction():
            self._store.insert_entry(stored)
            if from_waiting:
                self._store.remove_waiting(entry.id)
            self._store.note_heard(self.space, entry.device, seq=entry.seq, at=now)
        self._reach[entry.id] = floor
        self._apply(verdict.updates)
        events.append(self._accepted(entry, verdict.state))
        if verdict.wait is not None:
            events.append(
                Waiting(
                    space=self.space,
                    entry_id=entry.id,
                    device=entry.device,
                    seq=entry.seq,
                    reason=verdict.wait,
                )
            )
        if verdict.problem is not None:
            events.extend(self._report(verdict.problem))
        self._after_apply()
        if entry.type is EntryType.ROSTER:
            # Fold now, so the entries after it in this batch meet the new roster. Held
            # entries are judged again once the batch is done.
            events.extend(self._refold_from(self._chain_entries()))
            # Envelopes kept until their sender was in the roster may open now, before
            # the rest of the batch needs their keys.
            events.extend(self._retry_envelopes())
        return events, entry.type is EntryType.ROSTER

    def _rank_of(self, device: bytes, seq: int) -> int:
        held = self._store.ref_at(self.space, device, seq)
        return held.rank if held is not None else 0

    def _after_apply(self) -> None:
        self._since_snapshot += 1
        if self._since_snapshot >= self._snapshot_every and not self._batching:
            self.snapshot()

    def _drain_waiting(self) -> tuple[list[ReplicaEvent], bool]:
        """Place the waiting entries whose gap has filled: one pass in causal order, so
        each entry comes after everything it names that is also waiting."""
        events: list[ReplicaEvent] = []
        roster_changed = False
        waiting: dict[bytes, tuple[Entry, bytes]] = {}
        for item in self._store.waiting(self.space):
            if item.reason != WaitReason.FORKED_FEED:
                waiting[item.id] = (Entry.from_bytes(item.raw), item.raw)
        for entry, raw in _causally(waiting):
            new_events, changed = self._ingest_one(raw, from_waiting=True, entry=entry)
            events.extend(new_events)
            roster_changed |= changed
        return events, roster_changed

    # -- reading records ---------------------------------------------------------------

    def voice_records(self) -> dict[bytes, list[VoiceRecord]]:
        """Every valid record of every voice, by owner. Invalid ones are reported, skipped."""
        cached = self._records_cache
        if cached is not None and cached[0] == self._generation:
            return cached[1]
        result: dict[bytes, list[VoiceRecord]] = {}
        checked = self._checked_records
        for owner, doc in self._docs.voices().items():
            records: list[VoiceRecord] = []
            for key, data in sorted(doc.raw_records().items()):
                # Stored bytes never change under a key, so each is checked once.
                known = checked.get((owner, key))
                if known is not None and known[0] == data:
                    record = known[1]
                else:
                    try:
                        record = read_voice_record(key, data, owner=owner)
                    except ProtocolError as error:
                        self._bad_record(owner, key, data, error)
                        record = None
                    checked[(owner, key)] = (data, record)
                if record is not None:
                    records.append(record)
            result[owner] = records
        self._records_cache = (self._generation, result)
        return result

    def __repr__(self) -> str:
        return f"Replica(space={self.space.hex()}, device={fingerprint(self.device)[:9]})"


def _causally(batch: dict[bytes, tuple[Entry, bytes]]) -> list[tuple[Entry, bytes]]:
    """The batch (entries by id) as ``(entry, raw)``, ordered so that each entry
    comes after every entry of the batch that it names (its ``prev`` and ``seen``), ties
    by (seq, id). References outside the batch do not constrain the order. Linear in
    entries and references."""
    blocking: dict[bytes, int] = {}
    dependents: dict[bytes, list[bytes]] = {}
    ready: list[tuple[int, bytes]] = []
    for eid, (entry, _) in batch.items():
        inside = {ref for ref, _, _ in entry_references(entry) if ref in batch and ref != eid}
        blocking[eid] = len(inside)
        for ref in inside:
            dependents.setdefault(ref, []).append(eid)
        if not inside:
            ready.append((entry.seq, eid))
    heapq.heapify(ready)
    ordered: list[tuple[Entry, bytes]] = []
    while ready:
        _, eid = heapq.heappop(ready)
        ordered.append(batch[eid])
        for later in dependents.get(eid, ()):
            blocking[later] -= 1
            if blocking[later] == 0:
                heapq.heappush(ready, (batch[later][0].seq, later))
    if len(ordered) < len(batch):
        # Only forged references can form a cycle; those entries go last, in seq order,
        # and are refused or kept waiting as usual.
        placed = {entry.id for entry, _ in ordered}
        rest = sorted((entry.seq, eid) for eid, (entry, _) in batch.items() if eid not in placed)
        ordered.extend(batch[eid] for _, eid in rest)
    return ordered
