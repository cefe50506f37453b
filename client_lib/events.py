"""What a replica tells its caller: typed events of ingesting and checking entries.

Every call to :meth:`Replica.ingest` returns a list of these; problems are also kept
in the local store (once each) so a front end can list them later. None of them is
ever raised: a bad entry from one feed never stops anything else.

    ReplicaEvent
    ├── Accepted          an entry joined its feed (its content applied, or refused)
    ├── Duplicate         an entry already held (or already waiting)
    ├── Waiting           kept until a gap fills, a roster entry or an epoch key arrives
    └── Problem           something is wrong; never merged, always reported
        ├── Refused           bad shape, signature, chain, epoch, decryption, record...
        ├── NotAuthor         a write into another member's voice
        ├── ForkDetected      two signed entries at one (device, seq), with the proof
        ├── Withholding       some device had read more of a feed than we were given
        └── RollbackDetected  the relay now shows less than it showed before

``code`` is the protocol's stable :class:`~protocol.errors.ErrorCode` where one fits.
``describe()`` gives calm wording for people; programs use the class and ``code``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TypedDict

from protocol.crypto import fingerprint
from protocol.errors import ErrorCode


class WaitReason(StrEnum):
    """Why an entry is kept but not used yet."""

    GAP = "gap"  # an earlier entry of its feed has not arrived
    CAUSAL = "causal"  # an entry it names as seen has not arrived
    UNKNOWN_DEVICE = "unknown_device"  # the roster entry adding its device has not arrived
    EPOCH_KEY = "epoch_key"  # this device holds no key for its epoch (yet, or ever)
    FORKED_FEED = "forked_feed"  # its feed forked earlier; held as evidence only


class ContentState(StrEnum):
    """What became of an accepted entry's content (``entries.content`` in the store)."""

    APPLIED = "applied"  # decrypted and merged into the documents
    REFUSED = "refused"  # a valid link of its feed, but its content broke a rule
    HELD = "held"  # cannot count now (roster, epoch or key); judged again when they change
    ROSTER = "roster"  # a roster entry, folded into the roster


class Where(TypedDict):
    """Where an event happened: the keyword arguments every event takes."""

    space: bytes
    entry_id: bytes | None
    device: bytes | None
    seq: int | None


def where(space: bytes, entry_id: bytes, device: bytes, seq: int) -> Where:
    return Where(space=space, entry_id=entry_id, device=device, seq=seq)


def _short(device: bytes | None) -> str:
    return "a device" if device is None else "the device " + fingerprint(device)[:9]


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplicaEvent:
    """Base of every event. ``entry_id``/``device``/``seq`` are None when unknown."""

    space: bytes
    entry_id: bytes | None = None
    device: bytes | None = None
    seq: int | None = None

    @property
    def is_problem(self) -> bool:
        return isinstance(self, Problem)

    def describe(self) -> str:
        return "An entry was handled."


@dataclass(frozen=True, slots=True, kw_only=True)
class Accepted(ReplicaEvent):
    content: ContentState = ContentState.APPLIED

    def describe(self) -> str:
        return f"Entry {self.seq} from {_short(self.device)} is in place."


@dataclass(frozen=True, slots=True, kw_only=True)
class Duplicate(ReplicaEvent):
    def describe(self) -> str:
        return "An entry arrived again; nothing changed."


@dataclass(frozen=True, slots=True, kw_only=True)
class Waiting(ReplicaEvent):
    reason: WaitReason = WaitReason.GAP

    def describe(self) -> str:
        return f"Entry {self.seq} from {_short(self.device)} is kept until what it needs arrives."


@dataclass(frozen=True, slots=True, kw_only=True)
class Problem(ReplicaEvent):
    """Something is wrong. ``detail`` is plain words; ``code`` is for programs."""

    code: ErrorCode = ErrorCode.MALFORMED
    detail: str = ""

    def describe(self) -> str:
        return self.detail or "Something that arrived could not be used, and was set aside."


@dataclass(frozen=True, slots=True, kw_only=True)
class Refused(Problem):
    """An entry (or a record inside one) that breaks a rule; never merged."""


@dataclass(frozen=True, slots=True, kw_only=True)
class NotAuthor(Problem):
    """A device wrote into a voice that is not its member's. ``voice`` is that member."""

    code: ErrorCode = ErrorCode.NOT_AUTHOR
    voice: bytes | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ForkDetected(Problem):
    """Two validly signed entries at one (device, seq); ``proof`` is an encoded ForkProof."""

    code: ErrorCode = ErrorCode.FORK
    proof: bytes = b""


@dataclass(frozen=True, slots=True, kw_only=True)
class Withholding(Problem):
    """Some device had read ``claimed_seq`` of ``device``'s feed; we have ``have_seq``."""

    code: ErrorCode = ErrorCode.FEED_GAP
    claimed_seq: int = 0
    have_seq: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class RollbackDetected(Problem):
    """The relay once showed ``stored_seq`` of ``device``'s feed and now only ``reported_seq``."""

    code: ErrorCode = ErrorCode.FEED_GAP
    stored_seq: int = 0
    reported_seq: int = 0
