"""The roster: who is in a space, with which devices, in which key epoch.

Theory of operation (SPEC.md section 5):

* Roster records travel in clear as the body of roster entries. Each is a canonical
  map with an ``op``, decoded into one frozen dataclass per op
  (:mod:`protocol.roster_records`, re-exported here).
* :class:`Roster` is the state: members, their devices, each device's *cut* (the last
  seq of its feed that stays valid after a removal), and the epochs with their key
  ids. :meth:`Roster.apply` checks one roster entry against the state and applies it
  whole or not at all. The table :data:`RULES` says who may write each op.
* A client builds the roster with :func:`fold`: every roster entry it holds, in causal
  order (rank, entry id), so all clients holding the same entries reach the same
  roster whatever order they arrived in. A record that breaks a rule is refused (and
  reported); its entry stays in its feed.
* A removal may cut a device below roster records of that device that were already
  applied (they were concurrent with it). The fold then starts again with those
  records refused from the outset, until no removal does that (SPEC 5.4).
* The relay applies roster entries in arrival order, which is one valid causal order.
  Its copy is advisory: clients trust only their own fold.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from protocol.crypto import member_id_of, verify_signature
from protocol.entry import Entry, EntryType
from protocol.errors import (
    DeviceRemovedError,
    ErrorCode,
    ForkError,
    ProtocolError,
    RosterError,
    UnknownDeviceError,
    UsageError,
    WrongEpochError,
    WrongSpaceError,
)
from protocol.feeds import causal_order_ids, entry_references, index_by_id
from protocol.roster_records import (
    RULES,
    AddDevice,
    AddMember,
    Found,
    NewEpoch,
    Record,
    RemoveDevice,
    RemoveMember,
    RosterOp,
    decode_record,
    encode_record,
    join_message,
    join_proof,
)


@dataclass(slots=True)
class _Device:
    member: bytes
    cut: int | None  # None while active; else the last valid seq
    added_by: tuple[bytes, int] | None  # (author, seq) of the record that added it


@dataclass(frozen=True, slots=True, kw_only=True)
class Refusal:
    """A roster entry the fold did not apply, and why."""

    entry: Entry
    error: ProtocolError

    @property
    def code(self) -> ErrorCode:
        return self.error.code


class Roster:
    """The roster state of one space (SPEC.md 5.3). Mutable; see :meth:`copy`."""

    def __init__(self, space: bytes) -> None:
        self.space = space
        self._devices: dict[bytes, _Device] = {}
        self._members: set[bytes] = set()  # every member id ever added
        self._epoch = 0
        self._key_ids: dict[int, bytes] = {}
        self._rotations: dict[bytes, int] = {}
        self._rotation_author: tuple[bytes, int] | None = None
        self._removed_since_rotation = False
        self._applied_up_to: dict[bytes, int] = {}  # device -> highest applied roster seq
        self._late_cuts: dict[bytes, int] = {}

    @classmethod
    def empty(cls, space: bytes) -> Roster:
        return cls(space)

    def copy(self) -> Roster:
        other = Roster(self.space)
        other._devices = {d: _Device(s.member, s.cut, s.added_by) for d, s in self._devices.items()}
        other._members = set(self._members)
        other._epoch = self._epoch
        other._key_ids = dict(self._key_ids)
        other._rotations = dict(self._rotations)
        other._rotation_author = self._rotation_author
        other._removed_since_rotation = self._removed_since_rotation
        other._applied_up_to = dict(self._applied_up_to)
        other._late_cuts = dict(self._late_cuts)
        return other

    # -- queries ----------------------------------------------------------------------

    @property
    def founded(self) -> bool:
        return bool(self._members)

    @property
    def members(self) -> frozenset[bytes]:
        """The current members: those with at least one active device."""
        return frozenset(state.member for state in self._devices.values() if state.cut is None)

    @property
    def former_members(self) -> frozenset[bytes]:
        return frozenset(self._members) - self.members

    @property
    def active_devices(self) -> frozenset[bytes]:
        return frozenset(device for device, state in self._devices.items() if state.cut is None)

    @property
    def known_devices(self) -> frozenset[bytes]:
        """Every device ever added, active or removed."""
        return frozenset(self._devices)

    def devices_of(self, member: bytes) -> tuple[bytes, ...]:
        """The active devices of ``member``, sorted; empty for an unknown member."""
        return tuple(
            sorted(d for d, s in self._devices.items() if s.member == member and s.cut is None)
        )

    def member_of(self, device: bytes) -> bytes:
        """The member a device belongs (or belonged) to.

        Raises:
            UnknownDeviceError: the device was never in this roster.
        """
        state = self._devices.get(device)
        if state is None:
            raise UnknownDeviceError("the device is not in the roster")
        return state.member

    def is_active(self, device: bytes) -> bool:
        state = self._devices.get(device)
        return state is not None and state.cut is None

    def cut_of(self, device: bytes) -> int | None:
        """The last valid seq of a removed device; None for an active or unknown one."""
        state = self._devices.get(device)
        return None if state is None else state.cut

    def accepts(self, device: bytes, seq: int) -> bool:
        """True when ``device`` is known and ``seq`` is not after its cut."""
        state = self._devices.get(device)
        return state is not None and (state.cut is None or seq <= state.cut)

    def check_author(self, device: bytes, seq: int) -> None:
        """Check that entry ``seq`` of ``device``'s feed may count.

        Raises:
            UnknownDeviceError: the device is not in the roster.
            DeviceRemovedError: the entry comes after the device's removal.
        """
        state = self._devices.get(device)
        if state is None:
            raise UnknownDeviceError("the entry's device is not in the roster")
        if state.cut is not None and seq > state.cut:
            raise DeviceRemovedError(f"the device was removed after its entry {state.cut}")

    @property
    def epoch(self) -> int:
        """The current (highest) key epoch."""
        return self._epoch

    @property
    def epoch_key_ids(self) -> Mapping[int, bytes]:
        """The key id announced for each rotated epoch (epoch 0 has none)."""
        return dict(self._key_ids)

    @property
    def known_epochs(self) -> frozenset[int]:
        return frozenset(range(self._epoch + 1))

    @property
    def rotations(self) -> Mapping[bytes, int]:
        """Entry id of each applied ``epoch`` record -> the epoch it starts."""
        return dict(self._rotations)

    @property
    def rotation_due(self) -> bool:
        """True when a device or member was removed after the current epoch began, or
        the current epoch was made by a device that was then cut before it: a remaining
        device should rotate to a new key (SPEC 6.3)."""
        return self._removed_since_rotation

    @property
    def superseded(self) -> Mapping[bytes, int]:
        """Devices cut below roster records of theirs that were already applied (device
        -> cut). Non-empty means :func:`fold` would give another roster than this
        arrival-order one; a relay may rebuild its copy with :func:`fold`."""
        return dict(self._late_cuts)

    # -- applying ---------------------------------------------------------------------

    def apply(
        self, entry: Entry, *, epoch_floor: int = 0, past: Mapping[bytes, int] | None = None
    ) -> Record:
        """Check one roster entry against this roster and apply it, all or nothing.

        ``epoch_floor`` is the lowest epoch the entry may use: the epoch of its feed's
        previous entry and any rotation in its causal past. ``past`` is the entry's
        causal past as a vector clock (device -> highest seq reached); by default the
        entry's own view: its ``seen`` heads and its own ``seq - 1``. :func:`fold`
        computes both over everything it holds.

        Raises:
            UsageError: ``entry`` is a data entry.
            WrongSpaceError: the entry belongs to another space.
            BadSignatureError: the entry's or a join proof's signature does not verify.
            MalformedError, OversizedError: the body is not a roster record.
            UnknownDeviceError: the author is not in the roster.
            DeviceRemovedError: the author was removed before this entry.
            WrongEpochError: the entry's epoch is unknown or below ``epoch_floor``.
            RosterError: the record breaks a roster rule (SPEC 5.3).
        """
        if entry.type is not EntryType.ROSTER:
            raise UsageError("only roster entries change the roster")
        if entry.space != self.space:
            raise WrongSpaceError("the entry belongs to another space")
        verify_signature(entry.device, entry.signing_bytes(), entry.sig)
        record = decode_record(entry.body)
        if past is None:
            past = direct_past(entry)
        if isinstance(record, Found):
            self._check_found(entry, record)
        else:
            if not self.founded:
                raise RosterError("the space has no founder yet")
            self.check_author(entry.device, entry.seq)
            added_by = self._devices[entry.device].added_by
            if added_by is not None and past.get(added_by[0], 0) < added_by[1]:
                raise RosterError("the record that added the author is not in its causal past")
        if entry.epoch > self._epoch:
            raise WrongEpochError(f"epoch {entry.epoch} is not known")
        if entry.epoch < epoch_floor:
            raise WrongEpochError(f"the entry's epoch is below {epoch_floor}")
        author = (entry.device, entry.seq)
        if isinstance(record, Found):
            self._members.add(record.member)
            self._devices[record.device] = _Device(record.member, None, None)
        elif isinstance(record, AddDevice | AddMember):
            self._check_add(entry, record)
            self._members.add(record.member)
            self._devices[record.device] = _Device(record.member, None, author)
        elif isinstance(record, RemoveDevice):
            self._check_remove_device(entry, record, past)
            self._cut(record.device, record.last_seq)
        elif isinstance(record, RemoveMember):
            cuts = self._check_remove_member(entry, record, past)
            for device, cut in cuts.items():
                self._cut(device, cut)
        else:
            if record.epoch != self._epoch + 1:
                raise RosterError(f"the next epoch is {self._epoch + 1}, not {record.epoch}")
            self._epoch = record.epoch
            self._key_ids[record.epoch] = record.key_id
            self._rotations[entry.id] = record.epoch
            self._rotation_author = author
            self._removed_since_rotation = False
        self._applied_up_to[entry.device] = max(self._applied_up_to.get(entry.device, 0), entry.seq)
        return record

    def _check_found(self, entry: Entry, record: Found) -> None:
        if self.founded:
            raise RosterError("the space already has a founder")
        if entry.seq != 1:
            raise RosterError("the founding record is the first entry of the founder's feed")
        if record.device != entry.device:
            raise RosterError("the founding device must write the founding record")
        if record.member != member_id_of(record.device):
            raise RosterError("the founder's member id is the hash of its device key")
        if entry.epoch != 0:
            raise WrongEpochError("the founding entry is in epoch 0")

    def _check_add(self, entry: Entry, record: AddDevice | AddMember) -> None:
        author_member = self._devices[entry.device].member
        if isinstance(record, AddDevice):
            if record.member != author_member:
                raise RosterError("a device may only add devices to its own member")
            if record.member not in self.members:
                raise RosterError("the member has left the space")
        else:
            if record.member != member_id_of(record.device):
                raise RosterError("a new member's id is the hash of its first device key")
            if record.member in self._members:
                raise RosterError("this member is, or was, already in the space")
        if record.device in self._devices:
            raise RosterError("this device is, or was, already in the space")
        verify_signature(
            record.device,
            join_message(
                space=self.space, member=record.member, device=record.device, by=entry.device
            ),
            record.proof,
        )

    def _check_remove_device(
        self, entry: Entry, record: RemoveDevice, past: Mapping[bytes, int]
    ) -> None:
        target = self._devices.get(record.device)
        if target is None:
            raise RosterError("the device to remove is not in the roster")
        if target.cut is not None:
            raise RosterError("the device was already removed")
        if target.member != self._devices[entry.device].member:
            raise RosterError("only a device of the same member may remove a device")
        _check_cut(entry, record.device, record.last_seq, past)

    def _check_remove_member(
        self, entry: Entry, record: RemoveMember, past: Mapping[bytes, int]
    ) -> dict[bytes, int]:
        if record.member not in self.members:
            raise RosterError("the member to remove is not a current member")
        listed = dict(record.last_seqs)
        for device in listed:
            state = self._devices.get(device)
            if state is None or state.member != record.member:
                raise RosterError("last_seqs names a device that is not the member's")
        cuts = {device: listed.get(device, 0) for device in self.devices_of(record.member)}
        for device, cut in cuts.items():
            _check_cut(entry, device, cut, past)
        return cuts

    def _cut(self, device: bytes, cut: int) -> None:
        self._devices[device].cut = cut
        self._removed_since_rotation = True
        if self._applied_up_to.get(device, 0) > cut:
            self._late_cuts[device] = min(cut, self._late_cuts.get(device, cut))


def direct_past(entry: Entry) -> dict[bytes, int]:
    """An entry's own view of its causal past: its seen heads and its ``seq - 1``."""
    past = {head.device: head.seq for head in entry.seen}
    past[entry.device] = entry.seq - 1
    return past


def _check_cut(entry: Entry, device: bytes, cut: int, past: Mapping[bytes, int]) -> None:
    if device == entry.device:
        if cut != entry.seq:
            raise RosterError("a device leaving names its leaving entry as its last")
    elif cut < past.get(device, 0):
        raise RosterError("a removal may not cut entries in its own causal past")


def fold(entries: Iterable[Entry], *, space: bytes | None = None) -> tuple[Roster, list[Refusal]]:
    """The roster of a space from all the entries held of it (SPEC.md 5.4).

    ``entries`` are the verified entries of the space, data and roster alike: data
    entries count only for the causal order. Roster entries are applied in order
    (rank, entry id); entries that cannot be ranked yet are left out (neither applied
    nor refused). The answer is the same for the same set in any order. ``space`` is
    the entries' space when not given; roster entries of another space are refused.

    Returns the roster and the refused roster entries, in the order tried.

    Raises:
        UsageError: ``space`` is not given and the entries are of no space or of several.
    """
    by_id = index_by_id(entries)
    if space is None:
        spaces = {entry.space for entry in by_id.values()}
        if len(spaces) != 1:
            raise UsageError("fold() needs the space when the entries do not name exactly one")
        (space,) = spaces
    ordered = causal_order_ids(by_id)
    positions: dict[tuple[bytes, int], set[bytes]] = {}
    for eid, entry in by_id.items():
        positions.setdefault((entry.device, entry.seq), set()).add(eid)
    forked_from: dict[bytes, int] = {}
    for (device, seq), ids in positions.items():
        if len(ids) > 1:
            forked_from[device] = min(seq, forked_from.get(device, seq))
    bans: dict[bytes, int] = {}
    while True:
        roster = Roster.empty(space)
        refused: list[Refusal] = []
        reach: dict[bytes, int] = {}
        clocks: dict[bytes, dict[bytes, int]] = {}
        restart = False
        for eid in ordered:
            entry = by_id[eid]
            refs = [ref for ref, _, _ in entry_references(entry)]
            floor = max((reach[ref] for ref in refs), default=0)
            past: dict[bytes, int] = {}
            for ref in refs:
                for device, seq in clocks[ref].items():
                    if seq > past.get(device, 0):
                        past[device] = seq
            rotated = 0
            if entry.type is EntryType.ROSTER:
                try:
                    if entry.device in forked_from and entry.seq >= forked_from[entry.device]:
                        raise ForkError("the device's feed forks at or before this entry")
                    if entry.device in bans and entry.seq > bans[entry.device]:
                        raise DeviceRemovedError("the device was removed before this entry")
                    prev_epoch = by_id[entry.prev].epoch if entry.prev is not None else 0
                    record = roster.apply(entry, epoch_floor=max(floor, prev_epoch), past=past)
                except ProtocolError as error:
                    refused.append(Refusal(entry=entry, error=error))
                else:
                    if isinstance(record, NewEpoch):
                        rotated = record.epoch
                    late = {d: c for d, c in roster._late_cuts.items() if bans.get(d, c + 1) > c}
                    if late:
                        for device, cut in late.items():
                            bans[device] = min(cut, bans.get(device, cut))
                        restart = True
                        break
            reach[eid] = max(floor, rotated)
            past[entry.device] = max(entry.seq, past.get(entry.device, 0))
            clocks[eid] = past
        if not restart:
            _mark_stale_rotation(roster)
            return roster, refused


def _mark_stale_rotation(roster: Roster) -> None:
    author = roster._rotation_author
    if author is not None and not roster.accepts(*author):
        roster._removed_since_rotation = True


__all__ = [
    "RULES",
    "AddDevice",
    "AddMember",
    "Found",
    "NewEpoch",
    "Record",
    "Refusal",
    "RemoveDevice",
    "RemoveMember",
    "Roster",
    "RosterOp",
    "decode_record",
    "direct_past",
    "encode_record",
    "fold",
    "join_message",
    "join_proof",
]
