"""A couple's history, written for the benchmarks: real records, real entries.

Theory of operation:

* **Set-up through the product.** Two partners, Alex and Sam, are real
  :class:`~client_lib.account.Account` profiles. Alex founds the space and signs Sam
  in as a member; Sam then signs in a second device of their own, the **fresh
  device** that the replay and initial-sync benchmarks load the history into. Its
  key envelope comes from Sam's replica, exactly as pairing hands it over.
* **The bulk by a lean writer.** Writing tens of thousands of entries through
  ``Replica.change`` costs milliseconds each (a local SQLite transaction per write),
  which would make the set-up longer than the benchmarks. :class:`_Writer` does
  what :mod:`client_lib.local_writes` does minus the local store: it puts a record in
  its member's voice document (pycrdt), turns the update into a payload, and seals
  it as the device's next entry: next seq, ``prev`` = its head, ``seen`` = the
  partner's head, epoch 0. Nothing is faked: every entry verifies, decrypts and
  applies like one written by the app.
* **The mix.** A seeded generator picks, per entry, who writes (Alex a little more
  often than Sam, so the feeds drift apart in length as real ones do) and what: a
  shared check-in, a new agreement item, a change of one, an affirmation of the
  partner's newest version, or a pause and later its resume.
"""

from __future__ import annotations

import random
import tempfile
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

from client_lib.account import Account
from client_lib.documents import DocumentSet
from client_lib.keystore import FAST_FOR_TESTS, SpaceKind
from client_lib.payload import DocUpdate, Payload
from client_lib.records import CheckIn, VoiceRecord, record_bytes, record_key
from protocol.agreement_records import (
    Affirmation,
    Kind,
    Level,
    Pause,
    Resume,
    Version,
    draft_version,
    new_record_id,
)
from protocol.crypto import DeviceKey
from protocol.entry import Entry, SeenHead, entry_id, seal
from protocol.roster import AddDevice, AddMember, join_proof

#: The history's clock starts here (2024-01-01, ms) and spans one year.
YEAR_START_MS = 1_704_067_200_000
YEAR_MS = 365 * 24 * 3600 * 1000
#: Share of entries Alex writes; the rest are Sam's.
ALEX_SHARE = 0.55

_TITLES = (
    "Kissing",
    "Holding hands in public",
    "Sleeping in the same bed",
    "Talking about the past",
    "Touch when one of us is upset",
    "Massage",
    "Being woken up with a touch",
    "Nudity at home",
    "Sexting",
    "Staying over at each other's place",
)
_DETAILS = (
    "Ask first, every time, and a pause means stop.",
    "Only when we have both had a calm day.",
    "Fine at home; not in front of friends yet.",
    "",
    "Check in afterwards, even briefly.",
)
_FEELS_SAFE = ("walking together after dinner", "cooking side by side", "a slow evening", "")
_WOULD_HELP = ("more time before we talk about it", "a quiet weekend", "the plan on the fridge", "")


@dataclass(slots=True)
class _Writer:
    """One partner's device writing its feed without a local store."""

    member: bytes
    key: DeviceKey
    seq: int
    head: bytes | None
    docs: DocumentSet = field(default_factory=DocumentSet)
    pauses: list[bytes] = field(default_factory=list)
    public: bytes = field(init=False)

    def __post_init__(self) -> None:
        self.public = self.key.public

    def write(
        self, record: VoiceRecord, *, space: bytes, epoch_key: bytes, at: int, seen: SeenHead
    ) -> tuple[bytes, int]:
        """Seal ``record`` as this device's next entry; returns it and its plaintext size."""
        data = record_bytes(record)
        with self.docs.local_edit() as updates:
            self.docs.voice(self.member).put_record(record_key(record, data), data)
        payload = Payload(
            at=at,
            updates=tuple(DocUpdate(doc=name, update=u) for name, u in sorted(updates.items())),
        ).to_bytes()
        entry = seal(
            device_key=self.key,
            space=space,
            seq=self.seq + 1,
            prev=self.head,
            epoch=0,
            epoch_key=epoch_key,
            plaintext=payload,
            seen=(seen,),
        )
        raw = entry.to_bytes()
        self.seq += 1
        self.head = entry_id(raw)
        return raw, len(payload)


@dataclass(frozen=True, slots=True, kw_only=True)
class History:
    """One couple's space: every entry in write order, and what a new device needs."""

    space: bytes
    #: The set-up entries (roster, Alex's profile), in the order they were written.
    set_up: tuple[bytes, ...]
    #: The generated data entries, in the order they were written.
    generated: tuple[bytes, ...]
    #: The fresh device of Sam's, signed in by a roster entry of ``set_up``.
    joiner_key: DeviceKey
    joiner_member: bytes
    #: Key envelopes for the fresh device (from Sam's replica).
    envelopes: tuple[bytes, ...]
    epoch_key: bytes
    #: The keys of the devices that wrote the history: Alex's, then Sam's first device.
    writer_keys: tuple[DeviceKey, DeviceKey]
    #: Voice records written during the set-up (Alex's profile).
    set_up_records: int
    #: Per generated entry: its plaintext size and the kind of record it carries.
    plaintext_sizes: tuple[int, ...]
    kinds: tuple[str, ...]

    @property
    def writer_devices(self) -> frozenset[bytes]:
        return frozenset(key.public for key in self.writer_keys)

    @property
    def entries(self) -> tuple[bytes, ...]:
        """Every entry, set-up first, in write order (a causal order)."""
        return self.set_up + self.generated

    @property
    def expected_records(self) -> int:
        """Voice records a device holds once every entry is applied (one per entry)."""
        return self.set_up_records + len(self.generated)

    @property
    def mix(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for kind in self.kinds:
            counts[kind] = counts.get(kind, 0) + 1
        return counts

    def prefix(self, count: int) -> History:
        """The same space with only the first ``count`` generated entries: a valid
        history too, since every entry names only entries written before it."""
        return replace(
            self,
            generated=self.generated[:count],
            plaintext_sizes=self.plaintext_sizes[:count],
            kinds=self.kinds[:count],
        )


@contextmanager
def _profiles() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="accord-bench-") as directory:
        yield Path(directory)


def _account(base: Path, name: str) -> Account:
    return Account.create(
        name, display_name=name.capitalize(), no_passphrase=True, base=base, limits=FAST_FOR_TESTS
    )


def build_history(data_entries: int, *, partners_writing: int = 2, seed: int = 7) -> History:
    """A space with ``data_entries`` generated data entries after its real set-up.

    ``partners_writing`` is 2 (both partners write, Alex a little more) or 1 (only
    Alex writes; Sam's device has only its roster entry).

    Raises:
        ValueError: ``partners_writing`` is not 1 or 2.
    """
    if partners_writing not in (1, 2):
        raise ValueError("one or both partners write")
    with _profiles() as base:
        alex, sam = _account(base, "alex"), _account(base, "sam")
        handle = alex.create_space("us")
        alex_replica = handle.replica
        space = alex_replica.space
        sam_key = sam.keystore.device_key
        alex_replica.append_roster(
            AddMember(
                member=sam.member_id,
                device=sam_key.public,
                proof=join_proof(sam_key, space=space, member=sam.member_id, by=alex.device),
            )
        )
        sam_replica = sam.adopt_space(space, kind=SpaceKind.SHARED, label="us")
        for envelope in alex_replica.envelopes_for(sam_key.public):
            sam_replica.accept_key_envelope(envelope)
        sam_replica.ingest_many(alex_replica.feed_entries(alex.device))
        joiner = DeviceKey.generate()
        sam_replica.append_roster(
            AddDevice(
                member=sam.member_id,
                device=joiner.public,
                proof=join_proof(joiner, space=space, member=sam.member_id, by=sam.device),
            )
        )
        envelopes = tuple(sam_replica.envelopes_for(joiner.public))
        set_up = alex_replica.feed_entries(alex.device) + sam_replica.feed_entries(sam.device)
        set_up_records = sum(len(records) for records in alex_replica.voice_records().values())
        epoch_key = alex.keystore.epoch_keys(space)[0]
        alex_key = alex.keystore.device_key
        writers = [
            _writer(alex.member_id, alex_key, alex_replica.feed_entries(alex.device)),
            _writer(sam.member_id, sam_key, sam_replica.feed_entries(sam.device)),
        ]
        alex.close()
        sam.close()
    share = ALEX_SHARE if partners_writing == 2 else 1.0
    generated, sizes, kinds = _generate(writers, space, epoch_key, data_entries, seed, share)
    return History(
        space=space,
        set_up=tuple(set_up),
        generated=tuple(generated),
        joiner_key=joiner,
        joiner_member=writers[1].member,
        envelopes=envelopes,
        epoch_key=epoch_key,
        writer_keys=(writers[0].key, writers[1].key),
        set_up_records=set_up_records,
        plaintext_sizes=tuple(sizes),
        kinds=tuple(kinds),
    )


def _writer(member: bytes, key: DeviceKey, feed: list[bytes]) -> _Writer:
    """A lean writer that continues the feed whose entries so far are ``feed``."""
    last = Entry.from_bytes(feed[-1])
    return _Writer(member=member, key=key, seq=last.seq, head=entry_id(feed[-1]))


def _generate(
    writers: list[_Writer], space: bytes, epoch_key: bytes, count: int, seed: int, share: float
) -> tuple[list[bytes], list[int], list[str]]:
    rng = random.Random(seed)
    latest = _Latest()
    entries: list[bytes] = []
    sizes: list[int] = []
    kinds: list[str] = []
    for index in range(count):
        me, partner = (writers[0], writers[1]) if rng.random() < share else writers[::-1]
        at = YEAR_START_MS + index * YEAR_MS // max(count, 1)
        kind, record = _pick(rng, me, partner, latest, at)
        seen = SeenHead(device=partner.public, seq=partner.seq, id=partner.head or b"")
        raw, size = me.write(record, space=space, epoch_key=epoch_key, at=at, seen=seen)
        entries.append(raw)
        sizes.append(size)
        kinds.append(kind)
    return entries, sizes, kinds


@dataclass(slots=True)
class _Latest:
    """The newest version of every item, and the recent ones of each author."""

    by_item: dict[bytes, Version] = field(default_factory=dict)
    items: list[bytes] = field(default_factory=list)
    by_author: dict[bytes, deque[Version]] = field(default_factory=dict)

    def add(self, version: Version) -> None:
        if version.item not in self.by_item:
            self.items.append(version.item)
        self.by_item[version.item] = version
        self.by_author.setdefault(version.author, deque(maxlen=20)).append(version)


def _pick(
    rng: random.Random, me: _Writer, partner: _Writer, latest: _Latest, at: int
) -> tuple[str, VoiceRecord]:
    roll = rng.random()
    if me.pauses and roll < 0.5:
        lifts = tuple(sorted(me.pauses))
        me.pauses.clear()
        return "resume", Resume(member=me.member, id=new_record_id(), at=at, lifts=lifts)
    if roll < 0.02:
        pause = Pause(member=me.member, id=new_record_id(), at=at)
        me.pauses.append(pause.id)
        return "pause", pause
    theirs = latest.by_author.get(partner.member)
    if roll < 0.30 and theirs:
        version = rng.choice(theirs)
        return "affirmation", Affirmation(
            member=me.member, version=version.id, item=version.item, at=at
        )
    if roll < 0.42 or not latest.items:
        version = draft_version(
            item=new_record_id(),
            kind=rng.choice([Kind.LIMIT, Kind.PERMISSION, Kind.PREFERENCE, Kind.SIGNAL]),
            level=rng.choice(list(Level)),
            title=rng.choice(_TITLES),
            details=rng.choice(_DETAILS),
            author=me.member,
            created_at=at,
        )
        latest.add(version)
        return "new item", version
    if roll < 0.60:
        base = latest.by_item[rng.choice(latest.items[-50:])]
        version = draft_version(
            item=base.item,
            kind=base.content.kind,
            level=rng.choice(list(Level)),
            title=base.content.title,
            details=rng.choice(_DETAILS),
            parents=[base.id],
            author=me.member,
            created_at=at,
        )
        latest.add(version)
        return "changed item", version
    return "check-in", CheckIn(
        member=me.member,
        id=new_record_id(),
        at=at,
        safety=rng.randint(2, 5),
        feels_safe=rng.choice(_FEELS_SAFE),
        would_help=rng.choice(_WOULD_HELP),
    )
