"""What the other devices of a space see of a pairing: "a device was added".

Nothing is sent to them: they learn of the new device from the roster entry that added
it, when they next sync, like any roster change (SPEC.md section 11.9).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from client_lib.account import Account
from client_lib.events import Accepted, ContentState, ReplicaEvent
from protocol.crypto import fingerprint
from protocol.entry import Entry
from protocol.errors import ProtocolError
from protocol.roster import AddDevice, AddMember, decode_record


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceAdded:
    """A roster entry that added a device, as every device of the space learns of it."""

    space: bytes
    device: bytes
    member: bytes
    by: bytes
    new_member: bool

    def describe(self) -> str:
        who = "a new member" if self.new_member else "an existing member"
        return f"A device was added ({fingerprint(self.device)[:9]}, {who})."


def devices_added(
    account: Account, space: bytes, events: Iterable[ReplicaEvent]
) -> list[DeviceAdded]:
    """The devices that the accepted roster entries among ``events`` added to ``space``."""
    found = []
    for event in events:
        if not isinstance(event, Accepted) or event.content is not ContentState.ROSTER:
            continue
        if event.entry_id is None:
            continue
        stored = account.store.entry(event.entry_id)
        if stored is None:
            continue
        entry = Entry.from_bytes(stored.raw)
        try:
            record = decode_record(entry.body)
        except ProtocolError:
            continue
        if isinstance(record, AddDevice | AddMember):
            found.append(
                DeviceAdded(
                    space=space,
                    device=record.device,
                    member=record.member,
                    by=entry.device,
                    new_member=isinstance(record, AddMember),
                )
            )
    return found
