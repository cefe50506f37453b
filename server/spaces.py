"""The relay's domain core for spaces: create, append, fetch, heads and the roster view.

Theory of operation (SPEC.md sections 9.2 and 9.4-9.6):

* **Stateless checks first**, outside any transaction: size, shape
  (``Entry.from_bytes``), space, author (the token's device) and signature.
* **Then one write transaction per batch.** It locks the space's row, which queues
  the writers of one space (PostgreSQL: ``SELECT ... FOR UPDATE``; SQLite: the one
  write connection). Under the lock it reads the author's device row, the relay's
  copy of the roster, and checks each entry in order against the feed's stored head:

  - ``seq <= head``: the stored entry at that seq is compared: the same id is a
    *duplicate* (nothing stored), a different one is a *fork* (refused, never stored);
  - ``seq == head + 1``: ``prev`` must name the head (``broken_chain``) and the epoch
    must not go back (``wrong_epoch``);
  - ``seq > head + 1``: ``feed_gap``.

  A device removed from the roster may not write past its cut (``device_removed``).
  Roster entries are applied to the relay's roster copy in the same transaction.
  Entries get the space's next arrival positions; the batch is atomic: one refused
  entry refuses the whole batch, and the error names its index.
* The unique constraint on ``(space, device, seq)`` is the last line: if it ever
  fires (two relays racing without the lock), the batch is retried and the entry then
  shows up as a duplicate or a fork.
* After commit the fan-out announces the new positions (``server.fanout``).

This module does not import aiohttp.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import and_, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from protocol.crypto import SigContext, verify_signature
from protocol.entry import Entry, EntryType, check_link, entry_id, verify_entry
from protocol.errors import (
    AccordError,
    DeviceRemovedError,
    FeedGapError,
    ForkError,
    MalformedError,
    UnknownDeviceError,
    WrongEpochError,
)
from server import roster_index
from server.auth import Principal
from server.config import Limits
from server.errors import EntryRefused, RelayError, RelayErrorCode
from server.fanout import EntriesLanded, Fanout
from server.models import Device, Space, StoredEntry
from server.store import Database, now

_INTEGRITY_RETRIES = 3


class AppendStatus(StrEnum):
    STORED = "stored"
    DUPLICATE = "duplicate"


@dataclass(frozen=True, slots=True, kw_only=True)
class AppendResult:
    """What happened to one entry of a batch."""

    id: bytes
    seq: int
    position: int
    status: AppendStatus


@dataclass(frozen=True, slots=True, kw_only=True)
class FetchPage:
    """One page of a fetch: entries in arrival order, and where to continue."""

    entries: tuple[bytes, ...]
    cursor: int
    more: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class Head:
    seq: int
    id: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class RosterDevice:
    device: bytes
    member: bytes
    removed: bool
    added_at: int
    removed_at: int | None
    cut_seq: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class _Checked:
    entry: Entry
    raw: bytes
    id: bytes


def _check_stateless(raw: bytes, *, space: bytes, author: bytes, limits: Limits) -> _Checked:
    if len(raw) > limits.max_entry_bytes:
        raise RelayError(
            RelayErrorCode.ENTRY_TOO_LARGE,
            f"an entry is at most {limits.max_entry_bytes} bytes on this relay",
        )
    entry = Entry.from_bytes(raw)
    if entry.device != author:
        raise RelayError(RelayErrorCode.FORBIDDEN, "a device appends only to its own feed")
    verify_entry(entry, space=space, devices=(author,))
    return _Checked(entry=entry, raw=raw, id=entry_id(raw))


async def _lock_space(session: AsyncSession, space: bytes) -> Space:
    row = (
        await session.execute(select(Space).where(Space.id == space).with_for_update())
    ).scalar_one_or_none()
    if row is None:
        raise RelayError(RelayErrorCode.UNKNOWN_SPACE, "no such space on this relay")
    return row


async def create_space(
    db: Database,
    fanout: Fanout,
    *,
    space: bytes,
    raw_entry: bytes,
    signature: bytes,
    limits: Limits,
) -> AppendResult:
    """Create ``space`` with its founding roster entry (seq 1, a ``found`` record).

    Raises:
        BadSignatureError: the creation signature or the entry's signature is bad.
        MalformedError, OversizedError, UnsupportedVersionError: a bad entry.
        WrongSpaceError: the entry is for another space.
        RosterError: the entry is not a valid founding record.
        RelayError: ``space_exists``, ``entry_too_large``.
    """
    if len(raw_entry) > limits.max_entry_bytes:
        raise RelayError(RelayErrorCode.ENTRY_TOO_LARGE, "the founding entry is too large")
    entry = Entry.from_bytes(raw_entry)
    verify_signature(entry.device, SigContext.CREATE_SPACE + space, signature)
    verify_entry(entry, space=space, devices=(entry.device,))
    if entry.type is not EntryType.ROSTER or entry.seq != 1:
        raise MalformedError("a space starts with its founder's first entry, a roster record")
    founding = roster_index.found(space, entry)
    moment = now()
    identifier = entry_id(raw_entry)
    try:
        async with db.writing() as session:
            if await session.get(Space, space) is not None:
                raise RelayError(RelayErrorCode.SPACE_EXISTS, "a space with this id exists")
            space_row = Space(
                id=space, created_at=moment, last_position=1, roster_version=1, epoch=0
            )
            session.add(space_row)
            await session.flush()
            _store(session, space, entry, raw_entry, identifier, position=1, moment=moment)
            await roster_index.sync_devices(session, space_row, founding, position=1, moment=moment)
            head = await session.get(Device, (space, entry.device))
            if head is None:  # pragma: no cover - Roster.apply checks the founder adds itself
                raise UnknownDeviceError("the founding record does not add its own author")
            _advance_head(head, entry, identifier)
    except IntegrityError:
        raise RelayError(RelayErrorCode.SPACE_EXISTS, "a space with this id exists") from None
    return AppendResult(id=identifier, seq=1, position=1, status=AppendStatus.STORED)


def _store(
    session: AsyncSession,
    space: bytes,
    entry: Entry,
    raw: bytes,
    identifier: bytes,
    *,
    position: int,
    moment: int,
) -> None:
    session.add(
        StoredEntry(
            space_id=space,
            position=position,
            device=entry.device,
            seq=entry.seq,
            entry_id=identifier,
            type=entry.type.value,
            epoch=entry.epoch,
            body_size=len(entry.body),
            received_at=moment,
            data=raw,
        )
    )


def _advance_head(row: Device, entry: Entry, identifier: bytes) -> None:
    row.head_seq = entry.seq
    row.head_id = identifier
    row.head_epoch = entry.epoch


async def append_entries(
    db: Database,
    fanout: Fanout,
    principal: Principal,
    raw_entries: Sequence[bytes],
    limits: Limits,
) -> list[AppendResult]:
    """Verify and store a batch of the principal's entries, all or nothing.

    Raises:
        EntryRefused: wraps the protocol or relay error of the first refused entry
            (``fork``, ``feed_gap``, ``broken_chain``, ``bad_signature``, ...) and its index.
        RelayError: ``batch_too_large``, ``unknown_space``; ``bad_request`` for an empty batch.
    """
    if not raw_entries:
        raise RelayError(RelayErrorCode.BAD_REQUEST, "entries must not be empty")
    if len(raw_entries) > limits.max_batch_entries:
        raise RelayError(
            RelayErrorCode.BATCH_TOO_LARGE,
            f"at most {limits.max_batch_entries} entries per batch",
        )
    checked: list[_Checked] = []
    for index, raw in enumerate(raw_entries):
        try:
            checked.append(
                _check_stateless(raw, space=principal.space, author=principal.device, limits=limits)
            )
        except (AccordError, RelayError) as exc:
            raise EntryRefused(exc, index) from None
    for attempt in range(_INTEGRITY_RETRIES):
        try:
            results, landed = await _append_locked(db, fanout, principal, checked)
        except IntegrityError:
            if attempt == _INTEGRITY_RETRIES - 1:
                raise
            continue
        if landed is not None:
            fanout.after_commit(landed)
        return results
    raise AssertionError("unreachable")  # pragma: no cover


async def _append_locked(
    db: Database, fanout: Fanout, principal: Principal, checked: Sequence[_Checked]
) -> tuple[list[AppendResult], EntriesLanded | None]:
    space = principal.space
    moment = now()
    async with db.writing() as session:
        space_row = await _lock_space(session, space)
        device_row = await session.get(Device, (space, principal.device))
        if device_row is None:
            raise EntryRefused(UnknownDeviceError("the device is not in the roster"), 0)
        position = space_row.last_position
        results: list[AppendResult] = []
        roster = None
        roster_changed = False
        for index, item in enumerate(checked):
            entry = item.entry
            try:
                if entry.seq <= device_row.head_seq:
                    results.append(await _existing(session, space, item))
                    continue
                if device_row.cut_seq is not None and entry.seq > device_row.cut_seq:
                    raise DeviceRemovedError("the device was removed; its feed is closed")
                if entry.seq > device_row.head_seq + 1:
                    raise FeedGapError(
                        f"entry {entry.seq} skips entries after {device_row.head_seq}"
                    )
                check_link(entry, device_row.head_id)
                if entry.epoch < device_row.head_epoch:
                    raise WrongEpochError("the entry goes back to an older epoch")
                position += 1
                if entry.type is EntryType.ROSTER:
                    if roster is None:
                        roster = await roster_index.load(session, space)
                    roster_index.apply(roster, entry)
                    roster_changed = True
            except AccordError as exc:
                raise EntryRefused(exc, index) from None
            _store(session, space, entry, item.raw, item.id, position=position, moment=moment)
            _advance_head(device_row, entry, item.id)
            if entry.type is EntryType.ROSTER and roster is not None:
                if roster.superseded:
                    # A removal raced with roster records of the removed device: rebuild
                    # from storage (this entry included), dropping those records.
                    await session.flush()
                    roster = await roster_index.load(session, space)
                await roster_index.sync_devices(
                    session, space_row, roster, position=position, moment=moment
                )
            results.append(
                AppendResult(
                    id=item.id, seq=entry.seq, position=position, status=AppendStatus.STORED
                )
            )
        if position == space_row.last_position:
            return results, None
        space_row.last_position = position
        if roster_changed:
            space_row.roster_version += 1
        landed = EntriesLanded(space=space, position=position, roster_changed=roster_changed)
        await session.flush()
        await fanout.in_transaction(session, landed)
    return results, landed


async def _existing(session: AsyncSession, space: bytes, item: _Checked) -> AppendResult:
    stored = (
        await session.execute(
            select(StoredEntry.entry_id, StoredEntry.position).where(
                StoredEntry.space_id == space,
                StoredEntry.device == item.entry.device,
                StoredEntry.seq == item.entry.seq,
            )
        )
    ).one_or_none()
    if stored is None:  # pragma: no cover - head_seq says it is there
        raise FeedGapError("the relay's feed head is ahead of its entries")
    if stored.entry_id != item.id:
        raise ForkError(f"a different entry is already stored at seq {item.entry.seq} of this feed")
    return AppendResult(
        id=item.id, seq=item.entry.seq, position=stored.position, status=AppendStatus.DUPLICATE
    )


async def fetch(
    db: Database,
    space: bytes,
    *,
    have: Mapping[bytes, int],
    after: int,
    limit: int,
    max_bytes: int,
) -> FetchPage:
    """Entries of ``space`` past the have-vector, in arrival order, one page.

    An entry is returned when its position is above ``after`` and its seq above
    ``have[device]`` (or its device is not in ``have``). ``cursor`` is where the next
    page starts; when ``more`` is false, every entry up to ``cursor`` was considered.

    Raises:
        RelayError: ``unknown_space``.
    """
    async with db.reading() as session:
        # Read the newest position first: entries at or below it are all committed
        # (positions are handed out under the space lock in commit order).
        last = await session.scalar(select(Space.last_position).where(Space.id == space))
        if last is None:
            raise RelayError(RelayErrorCode.UNKNOWN_SPACE, "no such space on this relay")
        conditions = [StoredEntry.space_id == space, StoredEntry.position > after]
        conditions.append(StoredEntry.position <= last)
        if have:
            conditions.append(
                or_(
                    StoredEntry.device.not_in(list(have)),
                    *(
                        and_(StoredEntry.device == device, StoredEntry.seq > seq)
                        for device, seq in have.items()
                    ),
                )
            )
        rows = (
            await session.execute(
                select(StoredEntry.position, StoredEntry.data)
                .where(*conditions)
                .order_by(StoredEntry.position)
                .limit(limit + 1)
            )
        ).all()
    entries: list[bytes] = []
    size = 0
    cursor = after
    for row in rows[:limit]:
        if entries and size + len(row.data) > max_bytes:
            return FetchPage(entries=tuple(entries), cursor=cursor, more=True)
        entries.append(row.data)
        size += len(row.data)
        cursor = row.position
    if len(rows) > limit:
        return FetchPage(entries=tuple(entries), cursor=cursor, more=True)
    return FetchPage(entries=tuple(entries), cursor=max(after, last), more=False)


async def heads(db: Database, space: bytes) -> dict[bytes, Head]:
    """The relay's head of every feed that has entries.

    Raises:
        RelayError: ``unknown_space``.
    """
    async with db.reading() as session:
        if await session.get(Space, space) is None:
            raise RelayError(RelayErrorCode.UNKNOWN_SPACE, "no such space on this relay")
        rows = (
            await session.execute(
                select(Device.device, Device.head_seq, Device.head_id).where(
                    Device.space_id == space, Device.head_seq > 0
                )
            )
        ).all()
    return {row.device: Head(seq=row.head_seq, id=row.head_id) for row in rows if row.head_id}


async def roster_devices(db: Database, space: bytes) -> list[RosterDevice]:
    """The relay's copy of the roster, in the order the devices were added.

    Raises:
        RelayError: ``unknown_space``.
    """
    async with db.reading() as session:
        if await session.get(Space, space) is None:
            raise RelayError(RelayErrorCode.UNKNOWN_SPACE, "no such space on this relay")
        rows = (
            await session.execute(
                select(Device)
                .where(Device.space_id == space)
                .order_by(Device.added_position, Device.device)
            )
        ).scalars()
        return [
            RosterDevice(
                device=row.device,
                member=row.member,
                removed=row.removed,
                added_at=row.added_at,
                removed_at=row.removed_at,
                cut_seq=row.cut_seq,
            )
            for row in rows
        ]


async def space_exists(db: Database, space: bytes) -> bool:
    async with db.reading() as session:
        return await session.get(Space, space) is not None


__all__ = [
    "AppendResult",
    "AppendStatus",
    "FetchPage",
    "Head",
    "RosterDevice",
    "append_entries",
    "create_space",
    "fetch",
    "heads",
    "roster_devices",
]
