"""Feeds: one device's chain of entries in one space, and what can go wrong with it.

Theory of operation (SPEC.md section 4.5):

* A :class:`FeedVerifier` holds what we know of one feed. Entries may arrive in any
  order and any number of times. Each authentic entry (right space, signature by the
  feed's device) is kept; the *verified chain* is the longest run ``1..head`` where
  every seq holds exactly one entry and each ``prev`` names the entry before it.
  :meth:`FeedVerifier.add` returns the entries that have just joined that chain, in
  seq order, so a client can apply them as they become safe to apply.
* :meth:`FeedVerifier.report` describes the feed as a pure function of the set of
  entries held, whatever their arrival order: the head, the gaps (:class:`FeedGap`),
  the broken links (:class:`BrokenLink`) and the forks (:class:`ForkProof`). A fork is
  two authentic entries at one seq; the proof carries both encoded entries, so anyone
  can check it again with :func:`verify_fork_proof`, with no trust in whoever sent it.
* Every entry carries ``seen``: its author's view of the other feeds' heads. From the
  ``seen`` claims of the entries we hold, :func:`find_withholding` tells when some
  device had already read more of a feed than the relay has given us (the relay is
  withholding, or has rolled back), and :func:`find_seen_conflicts` when a claim names
  a different entry than the one we hold. :func:`find_rollback` compares the heads a
  relay reports with the highest ones it showed before.
* :func:`causal_ranks` orders entries causally: an entry ranks above the entry its
  ``prev`` names and above every entry its ``seen`` names. The roster fold (SPEC 5.4)
  and the epoch rule (SPEC 6.1) use this order.

Each problem type renders itself in plain words (``describe``) for a person, and maps
to one error code (``code``) and exception (``to_error``) for a program.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from protocol import encoding
from protocol.crypto import fingerprint, verify_signature
from protocol.entry import MAX_ENTRY_BYTES, Entry, entry_id
from protocol.errors import (
    BrokenChainError,
    ErrorCode,
    FeedGapError,
    ForkError,
    MalformedError,
    UnsupportedVersionError,
    UsageError,
    WrongSpaceError,
)

#: ``v`` of an encoded fork proof (SPEC.md 4.5.3).
FORK_PROOF_VERSION = 1
#: Largest encoded fork proof: two of the largest entries and a small map around them.
MAX_FORK_PROOF_BYTES = 2 * MAX_ENTRY_BYTES + 64


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _device_words(device: bytes, names: Mapping[bytes, str] | None) -> str:
    if names and device in names:
        return names[device]
    return "the device " + fingerprint(device)[:9]


# -- problems of one feed ------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class FeedGap:
    """Seqs missing below the highest entry we hold of a feed.

    ``missing`` is a tuple of inclusive ``(first, last)`` ranges, in order, so a gap
    of a billion seqs stays small.
    """

    code: ClassVar[ErrorCode] = ErrorCode.FEED_GAP

    device: bytes
    missing: tuple[tuple[int, int], ...]

    @property
    def missing_count(self) -> int:
        return sum(last - first + 1 for first, last in self.missing)

    def to_error(self) -> FeedGapError:
        first = self.missing[0][0] if self.missing else 0
        return FeedGapError(f"entries are missing from the feed, from seq {first}")

    def describe(self, names: Mapping[bytes, str] | None = None) -> str:
        parts = [f"{a}" if a == b else f"{a} to {b}" for a, b in self.missing]
        return (
            f"Some entries from {_device_words(self.device, names)} have not arrived yet "
            f"(number {', '.join(parts)}). Later entries wait until they do."
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class BrokenLink:
    """Entry ``seq`` names ``prev`` as its predecessor, but we hold ``expected``."""

    code: ClassVar[ErrorCode] = ErrorCode.BROKEN_CHAIN

    device: bytes
    seq: int
    prev: bytes
    expected: bytes

    def to_error(self) -> BrokenChainError:
        return BrokenChainError(f"entry {self.seq} does not follow entry {self.seq - 1}")

    def describe(self, names: Mapping[bytes, str] | None = None) -> str:
        return (
            f"Entry {self.seq} from {_device_words(self.device, names)} does not follow "
            f"the entry {self.seq - 1} we hold. Its history has two versions; entries "
            f"from number {self.seq - 1} on are not used until this is sorted out."
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ForkProof:
    """Two encoded, validly signed entries at one (space, device, seq).

    ``first`` and ``second`` are ordered by entry id. Build one with :meth:`of`; check
    one from elsewhere with :func:`verify_fork_proof`.
    """

    code: ClassVar[ErrorCode] = ErrorCode.FORK

    first: bytes
    second: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.first, bytes) or not isinstance(self.second, bytes):
            raise MalformedError("a fork proof holds two encoded entries")

    @classmethod
    def of(cls, a: Entry, b: Entry) -> ForkProof:
        """The proof of two entries, in canonical order (smaller entry id first).

        Raises:
            UsageError: the entries are the same or not at the same position.
        """
        if (a.space, a.device, a.seq) != (b.space, b.device, b.seq):
            raise UsageError("a fork is two entries at the same (space, device, seq)")
        raw_a, raw_b = a.to_bytes(), b.to_bytes()
        id_a, id_b = entry_id(raw_a), entry_id(raw_b)
        if id_a == id_b:
            raise UsageError("a fork needs two different entries")
        return cls(first=raw_a, second=raw_b) if id_a < id_b else cls(first=raw_b, second=raw_a)

    def entries(self) -> tuple[Entry, Entry]:
        """Both entries, parsed (shape only; see :func:`verify_fork_proof`).

        Raises:
            MalformedError, OversizedError, UnsupportedVersionError: as
                :meth:`Entry.from_bytes`.
        """
        return Entry.from_bytes(self.first), Entry.from_bytes(self.second)

    def to_bytes(self) -> bytes:
        return encoding.encode({"v": FORK_PROOF_VERSION, "entries": [self.first, self.second]})

    @classmethod
    def from_bytes(cls, data: bytes) -> ForkProof:
        """Parse an encoded proof; check it with :func:`verify_fork_proof`.

        Raises:
            OversizedError: above :data:`MAX_FORK_PROOF_BYTES`.
            MalformedError: not ``{"v": 1, "entries": [bytes, bytes]}``.
            UnsupportedVersionError: a ``v`` other than 1.
        """
        fields = encoding.decode_map(data, max_size=MAX_FORK_PROOF_BYTES)
        version = fields.get("v")
        if not isinstance(version, int) or isinstance(version, bool):
            raise MalformedError("a fork proof has an integer v")
        if version != FORK_PROOF_VERSION:
            raise UnsupportedVersionError(f"fork proof version {version} is not supported")
        if set(fields) != {"v", "entries"}:
            raise MalformedError("a fork proof has exactly the fields v and entries")
        pair = fields["entries"]
        if (
            not isinstance(pair, list)
            or len(pair) != 2
            or not all(isinstance(item, bytes) for item in pair)
        ):
            raise MalformedError("a fork proof holds exactly two encoded entries")
        return cls(first=pair[0], second=pair[1])

    @property
    def device(self) -> bytes:
        return self.entries()[0].device

    @property
    def seq(self) -> int:
        return self.entries()[0].seq

    def to_error(self) -> ForkError:
        return ForkError(f"two different entries at seq {self.seq}")

    def describe(self, names: Mapping[bytes, str] | None = None) -> str:
        return (
            f"{_cap(_device_words(self.device, names))} signed two different entries as "
            f"number {self.seq} of its history. A device never does this on its own: "
            f"its key may have been copied, or its storage restored from an old backup. "
            f"Its entries from number {self.seq} on are not used until this is sorted out."
        )


def verify_fork_proof(proof: ForkProof) -> None:
    """Check that ``proof`` really shows a fork; return only if it does.

    Raises:
        MalformedError: an entry does not parse, the two are not at the same
            (space, device, seq), are the same entry, or are not in id order.
        OversizedError, UnsupportedVersionError: an entry is above its limits or of
            another format version.
        BadSignatureError: an entry's signature does not verify.
    """
    a, b = proof.entries()
    if (a.space, a.device, a.seq) != (b.space, b.device, b.seq):
        raise MalformedError("the two entries are not at the same (space, device, seq)")
    id_a, id_b = entry_id(proof.first), entry_id(proof.second)
    if id_a == id_b:
        raise MalformedError("the two entries are the same entry")
    if id_a > id_b:
        raise MalformedError("the entries of a fork proof are ordered by entry id")
    verify_signature(a.device, a.signing_bytes(), a.sig)
    verify_signature(b.device, b.signing_bytes(), b.sig)


FeedProblem = FeedGap | BrokenLink | ForkProof


@dataclass(frozen=True, slots=True, kw_only=True)
class FeedReport:
    """The state of one feed, as a pure function of the entries held.

    ``head`` is the last seq of the verified chain (0 when empty) and ``head_id`` its
    entry id. ``held`` counts the distinct authentic entries held, chain or not.
    """

    device: bytes
    head: int
    head_id: bytes | None
    held: int
    gap: FeedGap | None
    broken: tuple[BrokenLink, ...]
    forks: tuple[ForkProof, ...]

    @property
    def problems(self) -> tuple[FeedProblem, ...]:
        found: list[FeedProblem] = [*self.forks, *self.broken]
        if self.gap is not None:
            found.append(self.gap)
        return tuple(found)

    @property
    def ok(self) -> bool:
        """No fork and no broken link (a gap is only waiting, not wrong)."""
        return not self.forks and not self.broken

    def raise_for_problems(self) -> None:
        """Raise the error of the most serious problem, if any.

        Raises:
            ForkError, BrokenChainError, FeedGapError: in that order of seriousness.
        """
        for problem in self.problems:
            raise problem.to_error()


class FeedVerifier:
    """Everything we hold of one device's feed in one space (SPEC.md 4.5.1).

    ``signatures_checked`` says the caller has already verified each entry's
    signature (for example the relay, or a store reloading what it verified before);
    otherwise :meth:`add` verifies it.
    """

    def __init__(self, *, space: bytes, device: bytes, signatures_checked: bool = False) -> None:
        self.space = space
        self.device = device
        self._signatures_checked = signatures_checked
        self._by_seq: dict[int, dict[bytes, Entry]] = {}
        self._ids: set[bytes] = set()
        self._head = 0
        self._head_id: bytes | None = None
        self._stopped = False

    @property
    def head(self) -> int:
        """The last seq released by :meth:`add` (0 before any)."""
        return self._head

    @property
    def head_id(self) -> bytes | None:
        return self._head_id

    def add(self, entry: Entry) -> tuple[Entry, ...]:
        """Take one entry; return the entries that joined the verified chain, in order.

        A repeat of an entry already held returns ``()``. An entry that makes a fork is
        kept (it is evidence) and stops the chain; see :meth:`report`.

        Raises:
            UsageError: the entry belongs to another device's feed.
            WrongSpaceError: the entry belongs to another space.
            BadSignatureError: the signature does not verify (the entry is not kept).
        """
        if entry.device != self.device:
            raise UsageError("this verifier holds another device's feed")
        if entry.space != self.space:
            raise WrongSpaceError("the entry belongs to another space")
        eid = entry.id
        if eid in self._ids:
            return ()
        if not self._signatures_checked:
            verify_signature(entry.device, entry.signing_bytes(), entry.sig)
        self._ids.add(eid)
        at_seq = self._by_seq.setdefault(entry.seq, {})
        at_seq[eid] = entry
        if len(at_seq) > 1:
            self._stopped = True
        return self._advance()

    def _advance(self) -> tuple[Entry, ...]:
        released: list[Entry] = []
        while not self._stopped:
            candidates = self._by_seq.get(self._head + 1)
            if not candidates or len(candidates) != 1:
                break
            ((eid, entry),) = candidates.items()
            if entry.prev != self._head_id:
                break
            released.append(entry)
            self._head, self._head_id = entry.seq, eid
        return tuple(released)

    def chain(self) -> tuple[Entry, ...]:
        """The verified chain as released so far, seq 1 first."""
        return tuple(next(iter(self._by_seq[seq].values())) for seq in range(1, self._head + 1))

    def report(self) -> FeedReport:
        """The feed's state; the same for the same set of entries in any order."""
        forks: list[ForkProof] = []
        broken: list[BrokenLink] = []
        single: dict[int, tuple[bytes, Entry]] = {}
        for seq in sorted(self._by_seq):
            at_seq = self._by_seq[seq]
            if len(at_seq) > 1:
                ids = sorted(at_seq)
                forks.append(ForkProof.of(at_seq[ids[0]], at_seq[ids[1]]))
            else:
                ((eid, entry),) = at_seq.items()
                single[seq] = (eid, entry)
        for seq, (_eid, entry) in single.items():
            before = single.get(seq - 1)
            if before is not None and entry.prev is not None and entry.prev != before[0]:
                broken.append(
                    BrokenLink(device=self.device, seq=seq, prev=entry.prev, expected=before[0])
                )
        head, head_id = 0, None
        while head + 1 in single and single[head + 1][1].prev == head_id:
            head_id = single[head + 1][0]
            head += 1
        top = max(self._by_seq, default=0)
        missing = _missing_ranges(self._by_seq, top)
        return FeedReport(
            device=self.device,
            head=head,
            head_id=head_id,
            held=len(self._ids),
            gap=FeedGap(device=self.device, missing=missing) if missing else None,
            broken=tuple(broken),
            forks=tuple(forks),
        )


def _missing_ranges(held: Mapping[int, Any], top: int) -> tuple[tuple[int, int], ...]:
    """The inclusive ranges of seqs in ``1..top`` not in ``held``, in order. Costs the
    number of held seqs, never the size of a gap."""
    ranges: list[tuple[int, int]] = []
    expected = 1
    for seq in sorted(held):
        if seq > top:
            break
        if seq > expected:
            ranges.append((expected, seq - 1))
        expected = seq + 1
    return tuple(ranges)


# -- causal order (SPEC.md 4.5.4) ----------------------------------------------------


def entry_references(entry: Entry) -> list[tuple[bytes, bytes, int]]:
    """What an entry names: ``(id, device, seq)`` of its ``prev`` and of each seen head."""
    refs: list[tuple[bytes, bytes, int]] = []
    if entry.prev is not None:
        refs.append((entry.prev, entry.device, entry.seq - 1))
    refs.extend((head.id, head.device, head.seq) for head in entry.seen)
    return refs


def index_by_id(entries: Iterable[Entry]) -> dict[bytes, Entry]:
    """The entries by entry id, duplicates once (each id computed once)."""
    by_id: dict[bytes, Entry] = {}
    for entry in entries:
        by_id.setdefault(entry.id, entry)
    return by_id


def causal_ranks(entries: Iterable[Entry]) -> dict[bytes, int]:
    """The rank of every entry that can be ranked, by entry id.

    ``rank(e) = 1 + max(rank(x) for x named by e's prev and seen)``, 0 for the max of
    nothing. An entry naming an id that is not among ``entries`` (or is, but at another
    device or seq than named) cannot be ranked yet, nor can anything after it; such
    entries are left out. Runs in time linear in the entries and their references.
    """
    return ranks_of(index_by_id(entries))


def ranks_of(by_id: Mapping[bytes, Entry]) -> dict[bytes, int]:
    """:func:`causal_ranks` of entries already indexed by id (:func:`index_by_id`)."""
    waiting_on: dict[bytes, int] = {}
    dependents: dict[bytes, list[bytes]] = defaultdict(list)
    ready: list[bytes] = []
    for eid, entry in by_id.items():
        refs = entry_references(entry)
        usable = True
        for ref_id, device, seq in refs:
            target = by_id.get(ref_id)
            if target is None or target.device != device or target.seq != seq:
                usable = False
                break
        if not usable:
            continue
        distinct = {ref_id for ref_id, _, _ in refs}
        waiting_on[eid] = len(distinct)
        for ref_id in distinct:
            dependents[ref_id].append(eid)
        if not distinct:
            ready.append(eid)
    ranks: dict[bytes, int] = {}
    while ready:
        eid = ready.pop()
        refs = entry_references(by_id[eid])
        ranks[eid] = 1 + max((ranks[ref_id] for ref_id, _, _ in refs), default=0)
        for later in dependents.get(eid, ()):
            if later in waiting_on:
                waiting_on[later] -= 1
                if waiting_on[later] == 0:
                    ready.append(later)
    return ranks


def causal_order(entries: Iterable[Entry]) -> list[Entry]:
    """The rankable entries in causal order: by (rank, entry id), duplicates once."""
    by_id = index_by_id(entries)
    return [by_id[eid] for eid in causal_order_ids(by_id)]


def causal_order_ids(by_id: Mapping[bytes, Entry]) -> list[bytes]:
    """The ids of the rankable entries of ``by_id`` in causal order."""
    ranks = ranks_of(by_id)
    return sorted(ranks, key=lambda eid: (ranks[eid], eid))


# -- seen heads: withholding, rollback, conflicting claims (SPEC.md 4.5.5) ------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Withholding:
    """``claimed_by`` had read ``device``'s feed up to ``claimed_seq``, in the entry
    ``claim_entry``, but the relay has given us only up to ``have_seq``."""

    device: bytes
    claimed_seq: int
    have_seq: int
    claimed_by: bytes
    claim_entry: bytes

    def describe(self, names: Mapping[bytes, str] | None = None) -> str:
        return (
            f"{_cap(_device_words(self.claimed_by, names))} had already read entry "
            f"{self.claimed_seq} from {_device_words(self.device, names)}, but the relay "
            f"has given us only {self.have_seq}. The relay may be holding entries back; "
            f"we keep asking for them."
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Rollback:
    """The relay once showed ``device``'s feed up to ``stored_seq`` and now reports
    only ``reported_seq``."""

    device: bytes
    stored_seq: int
    reported_seq: int

    def describe(self, names: Mapping[bytes, str] | None = None) -> str:
        return (
            f"The relay showed us entries up to number {self.stored_seq} from "
            f"{_device_words(self.device, names)} before, and now says there are only "
            f"{self.reported_seq}. It may have lost data or been rolled back; nothing we "
            f"already hold is lost."
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class SeenConflict:
    """``claimed_by`` says entry ``seq`` of ``device`` has id ``claimed_id``, but the
    entry we hold there has id ``held_id``: a fork we only see one side of (or a false
    claim; either way signed evidence)."""

    device: bytes
    seq: int
    claimed_id: bytes
    held_id: bytes
    claimed_by: bytes
    claim_entry: bytes

    def describe(self, names: Mapping[bytes, str] | None = None) -> str:
        return (
            f"{_cap(_device_words(self.claimed_by, names))} read a different entry "
            f"{self.seq} from {_device_words(self.device, names)} than the one we hold. "
            f"That device's history may have two versions."
        )


def find_withholding(
    entries: Iterable[Entry], have: Mapping[bytes, int]
) -> tuple[Withholding, ...]:
    """Feeds of which some entry we hold claims more than we have.

    ``entries`` are verified entries we hold; ``have`` is our have-vector (the head of
    the verified chain of each feed, absent meaning 0). For each device, the highest
    claim wins; among equal claims, the smallest (author, entry id). Sorted by device.
    """
    best: dict[bytes, tuple[int, bytes, bytes]] = {}
    for entry in entries:
        eid = entry.id
        for head in entry.seen:
            if head.seq <= have.get(head.device, 0):
                continue
            current = best.get(head.device)
            candidate = (head.seq, entry.device, eid)
            if current is None or (-candidate[0], candidate[1:]) < (-current[0], current[1:]):
                best[head.device] = candidate
    return tuple(
        Withholding(
            device=device,
            claimed_seq=seq,
            have_seq=have.get(device, 0),
            claimed_by=author,
            claim_entry=eid,
        )
        for device, (seq, author, eid) in sorted(best.items())
    )


def find_rollback(
    stored: Mapping[bytes, int], reported: Mapping[bytes, int]
) -> tuple[Rollback, ...]:
    """Feeds whose reported head is below the highest the relay showed us before.

    ``stored`` is our own high-water mark per device (kept across restarts);
    ``reported`` is what the relay reports now (absent meaning 0). Sorted by device.
    """
    return tuple(
        Rollback(device=device, stored_seq=seq, reported_seq=reported.get(device, 0))
        for device, seq in sorted(stored.items())
        if reported.get(device, 0) < seq
    )


def find_seen_conflicts(entries: Iterable[Entry]) -> tuple[SeenConflict, ...]:
    """Seen claims that name another entry than the one we hold at that position.

    A claim conflicts when we hold at least one entry at ``(device, seq)`` and none of
    them has the claimed id. Sorted by (device, seq, claimer, claim entry).
    """
    held: dict[tuple[bytes, int], set[bytes]] = defaultdict(set)
    listed = list(entries)
    for entry in listed:
        held[(entry.device, entry.seq)].add(entry.id)
    conflicts: set[SeenConflict] = set()
    for entry in listed:
        for head in entry.seen:
            ids = held.get((head.device, head.seq))
            if ids and head.id not in ids:
                conflicts.add(
                    SeenConflict(
                        device=head.device,
                        seq=head.seq,
                        claimed_id=head.id,
                        held_id=min(ids),
                        claimed_by=entry.device,
                        claim_entry=entry.id,
                    )
                )
    return tuple(sorted(conflicts, key=lambda c: (c.device, c.seq, c.claimed_by, c.claim_entry)))


__all__ = [
    "FORK_PROOF_VERSION",
    "MAX_FORK_PROOF_BYTES",
    "BrokenLink",
    "FeedGap",
    "FeedProblem",
    "FeedReport",
    "FeedVerifier",
    "ForkProof",
    "Rollback",
    "SeenConflict",
    "Withholding",
    "causal_order",
    "causal_order_ids",
    "causal_ranks",
    "entry_references",
    "find_rollback",
    "find_seen_conflicts",
    "find_withholding",
    "index_by_id",
    "ranks_of",
    "verify_fork_proof",
]
