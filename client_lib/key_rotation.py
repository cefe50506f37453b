"""Epoch keys of a space: envelopes in and out, rotation, removal (part of :class:`Replica`).

Theory of operation (SPEC.md 6):

* An epoch key reaches this device in a key envelope (:mod:`protocol.epochs`): sealed
  to this device's X25519 key and signed by the sending device. It is opened only when
  the sender is a device of the roster (an active one, or the one that announced that
  epoch) and the key matches the key id the roster announced. An envelope whose epoch
  or sender is not in the roster here yet is kept (once its signature checks) and
  tried again whenever the roster changes.
* Removing a device writes ``remove_device`` (cutting its feed at the last entry this
  device holds of it), then rotates: a new random key, an ``epoch`` roster record
  announcing its key id, and one envelope per remaining active device. The removed
  device never receives the new key, so it cannot read anything written after.
  History written before the removal keeps no forward secrecy: the removed device
  still holds the keys it had.
* A new key is saved in the keystore before the ``epoch`` record is written, so a
  crash can never announce a key this device has lost.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from client_lib.errors import NoSuchRecordError, NotAllowedError
from client_lib.events import Duplicate, Problem, Refused, ReplicaEvent, Waiting, WaitReason
from client_lib.records import record_hash
from protocol.crypto import key_id, verify_signature
from protocol.entry import Entry
from protocol.epochs import KeyEnvelope, new_epoch_key, unwrap_epoch_key, wrap_epoch_key
from protocol.errors import ErrorCode, ProtocolError
from protocol.roster import NewEpoch, RemoveDevice, RemoveMember
from protocol.roster import Record as RosterRecord

if TYPE_CHECKING:
    from client_lib.agreements import Clock
    from client_lib.keystore import Keystore
    from client_lib.store import Store, StoredEntry
    from protocol.roster import Roster


@dataclass(frozen=True, slots=True, kw_only=True)
class OutgoingEnvelope:
    """A key envelope this device made, for the relay to pass to ``recipient``."""

    recipient: bytes
    epoch: int
    data: bytes


class KeyRotation:
    """Epoch keys and device removal; mixed into :class:`client_lib.replica.Replica`."""

    space: bytes
    _store: Store
    _keys: Keystore
    _roster: Roster
    _clock: Clock

    if TYPE_CHECKING:  # provided by the replica and FeedStatus

        @property
        def device(self) -> bytes:
            raise NotImplementedError

        @property
        def member_id(self) -> bytes:
            raise NotImplementedError

        def append_roster(self, record: RosterRecord) -> bytes:
            raise NotImplementedError

        def have_vector(self) -> dict[bytes, int]:
            raise NotImplementedError

        def _chain_entries(self) -> list[tuple[StoredEntry, Entry]]:
            raise NotImplementedError

        def _reevaluate(self, entries: Sequence[tuple[StoredEntry, Entry]]) -> list[ReplicaEvent]:
            raise NotImplementedError

        def _report(self, problem: Problem, dedupe: str | None = None) -> list[ReplicaEvent]:
            raise NotImplementedError

    # -- envelopes in ------------------------------------------------------------------

    def accept_key_envelope(self, data: bytes) -> list[ReplicaEvent]:
        """Take a key envelope addressed to this device.

        Returns events: a problem when it is malformed, forged, or its key does not
        match the roster; ``Waiting`` when its epoch is not announced here yet (it is
        kept); nothing else when the key is now held. Entries waiting for the key are
        then judged again.
        """
        events, opened = self._take_envelope(data, keep=True)
        if opened:
            events.extend(self._reevaluate(self._chain_entries()))
        return events

    def _take_envelope(self, data: bytes, *, keep: bool) -> tuple[list[ReplicaEvent], bool]:
        digest = record_hash(data)
        try:
            envelope = KeyEnvelope.from_bytes(data)
        except ProtocolError as error:
            return self._refuse_envelope(error.code, digest), False
        if envelope.space != self.space:
            return self._refuse_envelope(ErrorCode.WRONG_SPACE, digest), False
        if envelope.recipient != self.device:
            return [], False
        held = self._keys.epoch_keys(self.space).get(envelope.epoch)
        announced = self._roster.epoch_key_ids.get(envelope.epoch)
        if held is not None and (announced is None or key_id(held) == announced):
            self._store.drop_envelope_in(self.space, digest)
            return [Duplicate(space=self.space)], False
        unknown_sender = envelope.sender not in self._roster.known_devices
        if envelope.epoch > self._roster.epoch or unknown_sender:
            try:
                verify_signature(envelope.sender, envelope.signing_bytes(), envelope.sig)
            except ProtocolError as error:
                return self._refuse_envelope(error.code, digest), False
            if keep:
                self._store.keep_envelope_in(self.space, digest, data)
                return [Waiting(space=self.space, reason=WaitReason.EPOCH_KEY)], False
            return [], False
        trusted = set(self._roster.active_devices)
        for rotation_id, epoch in self._roster.rotations.items():
            if epoch == envelope.epoch:
                stored = self._store.entry(rotation_id)
                if stored is not None:
                    trusted.add(stored.device)
        try:
            key = unwrap_epoch_key(
                envelope,
                device_key=self._keys.device_key,
                trusted_senders=trusted,
                space=self.space,
                announced_key_id=announced,
            )
        except ProtocolError as error:
            self._store.drop_envelope_in(self.space, digest)
            return self._refuse_envelope(error.code, digest), False
        if held is None:
            self._keys.add_epoch_key(self.space, envelope.epoch, key)
        else:
            # This device's own rotation lost to a concurrent one (SPEC 6.3): the key
            # the roster announced replaces the one this device made.
            self._keys.replace_epoch_key(self.space, envelope.epoch, key)
        self._store.drop_envelope_in(self.space, digest)
        return [], True

    def _refuse_envelope(self, code: ErrorCode, digest: bytes) -> list[ReplicaEvent]:
        problem = Refused(
            space=self.space,
            code=code,
            detail="A key sent to this device could not be used, so it was set aside.",
        )
        return self._report(problem, dedupe=f"envelope:{digest.hex()}")

    def _retry_envelopes(self) -> list[ReplicaEvent]:
        """Try kept envelopes again (after the roster changed)."""
        events: list[ReplicaEvent] = []
        opened = False
        for _, data in self._store.envelopes_in(self.space):
            new_events, got = self._take_envelope(data, keep=False)
            events.extend(e for e in new_events if e.is_problem)
            opened |= got
        if opened:
            events.extend(self._reevaluate(self._chain_entries()))
        return events

    # -- envelopes out -----------------------------------------------------------------

    def envelopes_for(self, device: bytes) -> list[bytes]:
        """Envelopes of every epoch key this device holds, for ``device`` (a device
        being added by pairing, so it can read the space's history)."""
        found = []
        for epoch, key in sorted(self._keys.epoch_keys(self.space).items()):
            envelope = wrap_epoch_key(
                from_key=self._keys.device_key,
                to=device,
                space=self.space,
                epoch=epoch,
                epoch_key=key,
            )
            found.append(envelope.to_bytes())
        return found

    def pending_envelopes(self) -> list[OutgoingEnvelope]:
        """Envelopes made here that the relay has not taken yet."""
        return [
            OutgoingEnvelope(recipient=recipient, epoch=epoch, data=data)
            for _, recipient, epoch, data in self._store.envelopes_out(self.space)
        ]

    def mark_envelopes_delivered(self, delivered: Iterable[tuple[bytes, int]]) -> None:
        """The relay took these envelopes: ``(recipient, epoch)`` pairs."""
        for recipient, epoch in delivered:
            self._store.drop_envelope_out(self.space, recipient, epoch)

    # -- rotation and removal ----------------------------------------------------------

    def rotate_epoch(self) -> list[OutgoingEnvelope]:
        """Start a new epoch: a new key, announced in the roster, sealed to every other
        active device. Returns the envelopes (also kept until delivered).

        Raises:
            NotAllowedError: this device is not an active device of the space.
        """
        if not self._roster.is_active(self.device):
            raise NotAllowedError("only an active device of the space can change its key")
        new_epoch = self._roster.epoch + 1
        key = self._keys.epoch_keys(self.space).get(new_epoch)
        if key is None:
            key = new_epoch_key()
            self._keys.add_epoch_key(self.space, new_epoch, key)
        self.append_roster(NewEpoch(epoch=new_epoch, key_id=key_id(key)))
        if self._roster.epoch != new_epoch:
            raise NotAllowedError("the space's key could not be changed from this device")
        envelopes = []
        for device in sorted(self._roster.active_devices - {self.device}):
            envelope = wrap_epoch_key(
                from_key=self._keys.device_key,
                to=device,
                space=self.space,
                epoch=new_epoch,
                epoch_key=key,
            )
            data = envelope.to_bytes()
            self._store.add_envelope_out(self.space, device, new_epoch, data)
            envelopes.append(OutgoingEnvelope(recipient=device, epoch=new_epoch, data=data))
        return envelopes

    def remove_device(self, device: bytes) -> list[OutgoingEnvelope]:
        """Remove one of this member's devices, then rotate the key (see module doc).

        Removing this device itself is leaving: no rotation is made here (another
        device of the space rotates when it sees the removal).

        Raises:
            NoSuchRecordError: the device is not an active device of the space.
            NotAllowedError: the device belongs to another member (remove the member
                instead), or this device was removed.
        """
        if not self._roster.is_active(device):
            raise NoSuchRecordError("that device is not an active device of this space")
        if self._roster.member_of(device) != self.member_id:
            raise NotAllowedError("a device can remove only devices of its own member")
        if device == self.device:
            next_seq = self.have_vector().get(self.device, 0) + 1
            self.append_roster(RemoveDevice(device=device, last_seq=next_seq))
            return []
        last_seq = self.have_vector().get(device, 0)
        self.append_roster(RemoveDevice(device=device, last_seq=last_seq))
        return self.rotate_epoch()

    def remove_member(self, member: bytes) -> list[OutgoingEnvelope]:
        """Remove a member and all their devices, then rotate the key.

        Raises:
            NoSuchRecordError: not a current member.
            NotAllowedError: the member is this device's own member (leave instead).
        """
        if member not in self._roster.members:
            raise NoSuchRecordError("that person is not a member of this space")
        if member == self.member_id:
            raise NotAllowedError("to leave a space, remove this device instead")
        have = self.have_vector()
        cuts = tuple((d, have.get(d, 0)) for d in self._roster.devices_of(member))
        self.append_roster(RemoveMember(member=member, last_seqs=cuts))
        return self.rotate_epoch()
