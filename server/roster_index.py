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
    """Rebuild the roster by replaying the space's stored roster entries in arrival order."""
    roster = Roster.empty(space)
    rows = (
        await session.execute(
            select(StoredEntry.data)
            .where(StoredEntry.space_id == space, StoredEntry.type == EntryType.ROSTER.value)
            .order_by(StoredEntry.position)
        )
    ).scalars()
    for data in rows:
        entry = Entry.from_bytes(data)
        try:
            roster.apply(entry)
        except ProtocolError as exc:  # stored by an older relay with other rules
            logger.warning(
                "stored roster entry no longer applies",
                extra={"event": "roster_replay", "code": exc.code.value},
            )
    return roster


def apply(roster: Roster, entry: Entry) -> None:
    """Apply one new roster entry (see :meth:`protocol.roster.Roster.apply` for errors)."""
    roster.apply(entry)


async def sync_devices(
    session: AsyncSession, space: Space, roster: Roster, *, position: int, moment: int
) -> None:
    """Write the roster's devices into ``devices``: new ones, removals and cuts."""
    rows = {
        row.device: row
        for row in (
            await session.execute(select(Device).where(Device.space_id == space.id))
        ).scalars()
    }
    for device in sorted(roster.known_devices):
        cut = roster.cut_of(device)
        row = rows.get(device)
        if row is None:
            row = Device(
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
            session.add(row)
        if cut is not None and not row.removed:
            row.removed = True
            row.removed_at = moment
            row.cut_seq = cut
    space.epoch = roster.epoch
