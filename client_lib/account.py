"""The facade front ends use: a profile on this machine, its spaces and their APIs.

Theory of operation:

* An :class:`Account` is one profile: one device (its keystore and local store, see
  :mod:`client_lib.paths`). Creating one makes the device key, the member id, and the
  member's **private space** (a space whose only member is this member: journal and
  private check-in answers). A device that joins an existing member by pairing is
  created with ``found_private_space=False`` and joins that member's private space.
* :meth:`Account.create_space` founds a relationship space: a random space id, the
  epoch 0 key, and the founding roster entry. :meth:`Account.adopt_space` registers a
  space this device is joining (pairing then feeds it the roster entries and the key
  envelopes through its :class:`~client_lib.replica.Replica`).
* :meth:`Account.space` returns a :class:`SpaceHandle`: the replica and the
  agreements, check-ins, repair log, crisis plan and notes of that space.

Nothing here talks to the network; the sync engine works on the replicas.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from client_lib.agreements import Agreements, Clock, TimelineEvent, wall_clock_ms
from client_lib.checkins import CheckIns, Journal
from client_lib.crisis_plan import CrisisPlan, Notes
from client_lib.errors import NoSuchSpaceError, NotAllowedError
from client_lib.feed_status import DeviceStatus
from client_lib.key_rotation import OutgoingEnvelope
from client_lib.keystore import MODERATE, KdfLimits, Keystore, SpaceKind
from client_lib.paths import ProfilePaths, create_profile_dir, existing_profile
from client_lib.repairs import RepairLog
from client_lib.replica import Replica
from client_lib.store import Store
from protocol.crypto import (
    SPACE_ID_BYTES,
    DeviceKey,
    forget_content_keys,
    member_id_of,
    random_bytes,
)
from protocol.epochs import new_epoch_key
from protocol.roster import Found

PRIVATE_LABEL = "private"


@dataclass(slots=True, kw_only=True)
class SpaceHandle:
    """One space with its APIs. ``checkins`` answers are private unless shared."""

    replica: Replica
    agreements: Agreements
    checkins: CheckIns
    repairs: RepairLog
    plan: CrisisPlan
    notes: Notes
    label: str
    kind: SpaceKind
    journal: Journal | None = field(default=None)

    @property
    def space(self) -> bytes:
        return self.replica.space

    def timeline(self) -> list[TimelineEvent]:
        """The space's timeline, with my own private check-ins added (seen only here)."""
        private = [view.record for view in self.checkins.mine() if not view.shared]
        return self.agreements.timeline(extra=private)

    def devices(self) -> tuple[DeviceStatus, ...]:
        """Every device of the space, with its member and how recently it was heard."""
        return self.replica.status().devices

    def remove_device(self, device: bytes) -> list[OutgoingEnvelope]:
        """Remove one of my devices and rotate the key (see :meth:`Replica.remove_device`)."""
        return self.replica.remove_device(device)


@dataclass(frozen=True, slots=True, kw_only=True)
class SpaceInfo:
    space: bytes
    kind: SpaceKind
    label: str


class Account:
    """One profile (one device) on this machine. Build with :meth:`create` or :meth:`open`."""

    def __init__(self, *, paths: ProfilePaths, keystore: Keystore, clock: Clock) -> None:
        self.paths = paths
        self.keystore = keystore
        self._clock = clock
        self.store = Store.open(paths.store, snapshot_key=keystore.store_key)
        self._replicas: dict[bytes, Replica] = {}

    # -- opening -----------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        profile: str = "default",
        *,
        display_name: str,
        passphrase: str | None = None,
        no_passphrase: bool = False,
        limits: KdfLimits = MODERATE,
        base: Path | None = None,
        member_id: bytes | None = None,
        found_private_space: bool = True,
        clock: Clock = wall_clock_ms,
        device_key: DeviceKey | None = None,
    ) -> Account:
        """Create a profile: a new device key, its keystore and store, its private space.

        ``member_id`` is given for a device joining an existing member (self pairing);
        then ``found_private_space`` should be False, since that member's private space
        already exists.

        Raises:
            ValueError: a bad profile name, or both/neither of a passphrase and
                ``no_passphrase``.
            ProfileExistsError: the profile exists already.
        """
        paths = create_profile_dir(profile, base=base)
        key = device_key if device_key is not None else DeviceKey.generate()
        keystore = Keystore.create(
            paths.keystore,
            device_key=key,
            member_id=member_id if member_id is not None else member_id_of(key.public),
            display_name=display_name,
            passphrase=passphrase,
            no_passphrase=no_passphrase,
            limits=limits,
        )
        account = cls(paths=paths, keystore=keystore, clock=clock)
        if found_private_space:
            account._found(SpaceKind.PRIVATE, PRIVATE_LABEL)
        return account

    @classmethod
    def open(
        cls,
        profile: str = "default",
        *,
        passphrase: str | None = None,
        base: Path | None = None,
        clock: Clock = wall_clock_ms,
    ) -> Account:
        """Open an existing profile.

        Raises:
            NoSuchProfileError: there is no such profile.
            WrongPassphrase: the passphrase does not open its keystore.
            KeystoreCorruptError, StoreCorruptError, SchemaVersionError: damaged files.
        """
        paths = existing_profile(profile, base=base)
        keystore = Keystore.open(paths.keystore, passphrase=passphrase)
        return cls(paths=paths, keystore=keystore, clock=clock)

    def close(self) -> None:
        """Snapshot every open space and close the store."""
        for replica in self._replicas.values():
            replica.snapshot()
        self._replicas.clear()
        self.store.close()
        forget_content_keys()  # keys derived for this profile leave the process's memory

    def wipe(self) -> None:
        """Close and delete this profile's files from this machine (local wipe).

        What other devices already hold is not affected.
        """
        self.store.close()
        self._replicas.clear()
        forget_content_keys()
        shutil.rmtree(self.paths.directory)

    # -- who this is -------------------------------------------------------------------

    @property
    def device(self) -> bytes:
        return self.keystore.device_key.public

    @property
    def member_id(self) -> bytes:
        return self.keystore.member_id

    @property
    def display_name(self) -> str:
        return self.keystore.display_name

    @property
    def is_protected(self) -> bool:
        """False for a profile made with ``no_passphrase``: show a warning."""
        return self.keystore.is_protected

    # -- spaces ------------------------------------------------------------------------

    def spaces(self) -> list[SpaceInfo]:
        return [
            SpaceInfo(space=k.space, kind=k.kind, label=k.label) for k in self.keystore.spaces()
        ]

    def _found(self, kind: SpaceKind, label: str) -> Replica:
        if self.member_id != member_id_of(self.device):
            raise NotAllowedError(
                "a space is founded from the device a member started with; "
                "use that device, or be invited by pairing"
            )
        space = random_bytes(SPACE_ID_BYTES)
        self.keystore.add_space(space, kind=kind, label=label)
        self.keystore.add_epoch_key(space, 0, new_epoch_key())
        replica = self.replica(space)
        replica.append_roster(Found(member=self.member_id, device=self.device))
        return replica

    def found_private_space(self) -> Replica:
        """Found this member's private space (journal, private check-in answers), for a
        device that joined as a new member by pairing and so has none yet.

        Raises:
            NotAllowedError: this device is not the one its member started with, or the
                private space exists already.
        """
        if self.private_replica() is not None:
            raise NotAllowedError("this member's private space exists already")
        return self._found(SpaceKind.PRIVATE, PRIVATE_LABEL)

    def create_space(self, label: str) -> SpaceHandle:
        """Found a relationship space with this member as its first member.

        Raises:
            NotAllowedError: this device is not the one its member started with.
        """
        replica = self._found(SpaceKind.SHARED, label)
        handle = self.space(replica.space)
        handle.agreements.set_my_name(self.display_name)
        return handle

    def adopt_space(self, space: bytes, *, kind: SpaceKind, label: str) -> Replica:
        """Register a space this device is joining; feed it entries and envelopes next."""
        self.keystore.add_space(space, kind=kind, label=label)
        return self.replica(space)

    def replica(self, space: bytes) -> Replica:
        """The replica of a space this device is in.

        Raises:
            NoSuchSpaceError: this device is not in that space.
        """
        replica = self._replicas.get(space)
        if replica is None:
            if not self.keystore.has_space(space):
                raise NoSuchSpaceError("this device is not in that space")
            replica = Replica(
                space=space, store=self.store, keystore=self.keystore, clock=self._clock
            )
            self._replicas[space] = replica
        return replica

    def private_replica(self) -> Replica | None:
        """The replica of my private space, when this device is in it."""
        for info in self.keystore.spaces():
            if info.kind is SpaceKind.PRIVATE:
                return self.replica(info.space)
        return None

    def space(self, space: bytes) -> SpaceHandle:
        """A space with its APIs.

        Raises:
            NoSuchSpaceError: this device is not in that space.
        """
        replica = self.replica(space)
        info = self.keystore.space(space)
        private = self.private_replica()
        clock = self._clock
        return SpaceHandle(
            replica=replica,
            agreements=Agreements(replica, clock=clock),
            checkins=CheckIns(
                replica, private=private if private is not replica else None, clock=clock
            ),
            repairs=RepairLog(replica, clock=clock),
            plan=CrisisPlan(replica, clock=clock),
            notes=Notes(replica),
            label=info.label,
            kind=info.kind,
            journal=Journal(replica, clock=clock) if info.kind is SpaceKind.PRIVATE else None,
        )

    def journal(self) -> Journal:
        """My private journal.

        Raises:
            NoSuchSpaceError: this device is not in my private space.
        """
        private = self.private_replica()
        if private is None:
            raise NoSuchSpaceError("this device is not in your private space yet")
        return Journal(private, clock=self._clock)

    def __repr__(self) -> str:
        return f"Account(profile={self.paths.name!r}, protected={self.is_protected})"
