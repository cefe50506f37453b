"""The relay's copy of each space's roster, kept in the ``devices`` table.

The relay applies roster entries in arrival order with :class:`protocol.roster.Roster`
(one valid causal order, SPEC.md 5.4) and writes the outcome into ``devices``: each
device's member, whether it was removed and its cut. Data entries are then checked
against those rows alone, without replaying anything. When a roster entry arrives,
the space's stored roster entries (few) are replayed to rebuild the state it applies
to. The copy is advisory: it lets the relay refuse garbage early and stop removed
devices, and clients still fold the roster themselves.

This module does not import aiohttp.
"""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from protocol.entry import Entry, EntryType
from protocol.errors import ProtocolError, RosterError
from protocol.roster import Found, Roster
from server.models import Device, Space, StoredEntry

logger = logging.getLogger("accord.relay.roster")


def found(space: bytes, entry: Entry) -> Roster:
    """The roster of a new space: its founding entry applied to the empty roster.

    Raises:
        RosterError: the entry is not a ``found`` record.
        WrongSpaceError, BadSignatureError, MalformedError, WrongEpochError: from
            :meth:`Roster.apply`.
    """
    roster = Roster.empty(space)
    record = roster.apply(entry)
    if not isinstance(record, Found):
        raise RosterError("a space starts with a found record")
    return roster


async def load(session: AsyncSession, space: bytes) -> Roster:
    """Rebuild the roster from the space's stored roster entries, in arrival order.

    When a removal cuts a device below roster records of its that were already applied
    (they raced with the removal), those records are dropped and the replay starts
    again, as the clients' fold does (SPEC.md 5.4): a device added by a record past its
    author's cut never counts, on the relay either.
    """
    entries = [
        Entry.from_bytes(data)
        for data in (
            await session.execute(
                select(StoredEntry.data)
                .where(StoredEntry.space_id == space, StoredEntry.type == EntryType.ROSTER.value)
                .order_by(StoredEntry.position)
            )
        ).scalars()
    ]
    bans: dict[bytes, int] = {}
    while True:
        roster = Roster.empty(space)
        restart = False
        for entry in entries:
            if entry.device in bans and entry.seq > bans[entry.device]:
                continue
            try:
                roster.apply(entry)
            except ProtocolError as exc:  # dropped by a restart, or stored under older rules
                logger.info(
                    "stored roster entry does not apply",
                    extra={"event": "roster_replay", "code": exc.code.value},
                )
                continue
            late = {
                device: cut
                for device, cut in roster.superseded.items()
                if bans.get(device, cut + 1) > cut
            }
            if late:
                for device, cut in late.items():
                    bans[device] = min(cut, bans.get(device, cut))
                restart = True
                break
        if not restart:
            return roster


def apply(roster: Roster, entry: Entry) -> None:
    """Apply one new roster entry (see :meth:`protocol.roster.Roster.apply` for errors)."""
    roster.apply(entry)


async def sync_devices(
    session: AsyncSession, space: Space, roster: Roster, *, position: int, moment: int
) -> None:
    """Make ``devices`` say what ``roster`` says: new devices, removals, cuts, and the
    devices a rebuilt roster no longer counts (removed with cut 0) or counts again."""
    rows = {
        row.device: row
        for row in (
            await session.execute(select(Device).where(Device.space_id == space.id))
        ).scalars()
    }
    for device in sorted(roster.known_devices):
        if device not in rows:
            rows[device] = Device(
                space_id=space.id,
                device=device,
                member=roster.member_of(device),
                added_at=moment,
                added_position=position,
                removed=False,
                removed_at=None,
                cut_seq=None,
                head_seq=0,
                head_id=None,
                head_epoch=0,
            )
            session.add(rows[device])
    for device, row in rows.items():
        if device in roster.known_devices:
            cut = roster.cut_of(device)
        else:
            cut = 0  # added by a record that no longer counts
        if cut is None:
            if row.removed:
                row.removed, row.removed_at, row.cut_seq = False, None, None
        elif not row.removed or row.cut_seq != cut:
            row.removed = True
            row.removed_at = row.removed_at or moment
            row.cut_seq = cut
    space.epoch = roster.epoch
