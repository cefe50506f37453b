"""Fan-out: telling every open WebSocket of a space that entries landed, on any process.

Theory of operation:

* An append commits its entries with arrival positions, then *announces* the space and
  its newest position (never a body). On SQLite (one process) the announcement goes
  straight to this process's :class:`Hub`. On PostgreSQL it is a ``NOTIFY`` sent inside
  the append's transaction, so it is delivered when, and only when, the entries are
  committed; every relay process LISTENs and hands it to its own hub, including the
  process that appended.
* The hub keeps, per space with subscribers, the last position it delivered. When told
  about a space it reads the newer entries from the database once and queues them for
  each subscriber (skipping the subscriber's own entries and those it already had).
  Announcements may arrive late, twice or out of order: the hub reads by position.
* A roster change in the announcement makes the hub re-read the device rows of that
  space and close the subscription of every removed device at once.
* Pairing messages are announced the same way, to wake long-polls on any process.
* After the LISTEN connection is lost and restored, every subscribed space is re-read,
  so nothing is missed while it was down.

This module never imports aiohttp: a :class:`Subscriber` is a queue the WebSocket
module drains.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from server.metrics import RelayMetrics
from server.models import Device, Space, StoredEntry
from server.store import Database

logger = logging.getLogger("accord.relay.fanout")

CHANNEL = "accord_fanout"
#: A subscriber this many pushes behind is closed; the client catches up by fetching.
MAX_QUEUED_PUSHES = 512
#: WebSocket close codes the hub asks for (SPEC.md section 9.7).
CLOSE_DEVICE_REMOVED = 4403
CLOSE_TOO_SLOW = 4008
_DELIVERY_BATCH = 256


@dataclass(frozen=True, slots=True, kw_only=True)
class EntriesLanded:
    """Entries up to ``position`` are committed in ``space``."""

    space: bytes
    position: int
    roster_changed: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class PairingPosted:
    """A pairing channel got a message (or was burned)."""

    channel: str


Announcement = EntriesLanded | PairingPosted


def encode_announcement(item: Announcement) -> str:
    if isinstance(item, EntriesLanded):
        return f"e|{item.space.hex()}|{item.position}|{int(item.roster_changed)}"
    return f"p|{item.channel}"


def decode_announcement(payload: str) -> Announcement | None:
    """The announcement in a NOTIFY payload, or None when it is not one of ours."""
    parts = payload.split("|")
    try:
        if parts[0] == "e" and len(parts) == 4:
            return EntriesLanded(
                space=bytes.fromhex(parts[1]),
                position=int(parts[2]),
                roster_changed=parts[3] == "1",
            )
        if parts[0] == "p" and len(parts) == 2:
            return PairingPosted(channel=parts[1])
    except ValueError:
        return None
    return None


@dataclass(frozen=True, slots=True, kw_only=True)
class Push:
    """One item for a subscriber: entries to send, or a request to close."""

    entries: tuple[bytes, ...] = ()
    cursor: int = 0
    close_code: int | None = None
    close_reason: str = ""


@dataclass(eq=False, slots=True, kw_only=True)
class Subscriber:
    """One open WebSocket's view of a space."""

    space: bytes
    device: bytes
    cursor: int
    queue: asyncio.Queue[Push] = field(default_factory=asyncio.Queue)
    closing: bool = False

    def request_close(self, code: int, reason: str) -> None:
        """Drop what is queued and ask the WebSocket to close with ``code``."""
        if self.closing:
            return
        self.closing = True
        while not self.queue.empty():
            self.queue.get_nowait()
        self.queue.put_nowait(Push(close_code=code, close_reason=reason))


class Hub:
    """This process's subscribers and the delivery of announced entries to them."""

    def __init__(self, db: Database, metrics: RelayMetrics) -> None:
        self._db = db
        self._metrics = metrics
        self._subscribers: dict[bytes, set[Subscriber]] = defaultdict(set)
        self._delivered: dict[bytes, int] = {}
        self._dirty: dict[bytes, bool] = {}
        self._roster_dirty: set[bytes] = set()
        self._tasks: dict[bytes, asyncio.Task[None]] = {}
        self._pairing_waiters: dict[str, set[asyncio.Event]] = defaultdict(set)
        #: Set when the relay stops: long-polls answer at once instead of waiting.
        self.stopping = False

    # -- subscriptions ---------------------------------------------------------------

    async def subscribe(self, space: bytes, device: bytes) -> Subscriber:
        """Start receiving the entries of ``space`` that land from now on."""
        async with self._db.reading() as session:
            position = await _last_position(session, space)
        subscriber = Subscriber(space=space, device=device, cursor=position)
        self._subscribers[space].add(subscriber)
        self._delivered.setdefault(space, position)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        group = self._subscribers.get(subscriber.space)
        if group is None:
            return
        group.discard(subscriber)
        if not group:
            del self._subscribers[subscriber.space]
            self._delivered.pop(subscriber.space, None)

    def count(self, space: bytes, device: bytes) -> int:
        """Open subscriptions of one device in one space, on this process."""
        return sum(1 for sub in self._subscribers.get(space, ()) if sub.device == device)

    def stop_waiting(self) -> None:
        """Answer every pairing long-poll now and refuse to wait from here on."""
        self.stopping = True
        for group in list(self._pairing_waiters.values()):
            for event in group:
                event.set()

    # -- announcements ---------------------------------------------------------------

    def announce(self, item: Announcement) -> None:
        """Handle an announcement from this process or from the database."""
        if isinstance(item, PairingPosted):
            for event in self._pairing_waiters.get(item.channel, ()):
                event.set()
            return
        if item.space not in self._subscribers:
            return
        if item.roster_changed:
            self._roster_dirty.add(item.space)
        self._dirty[item.space] = True
        task = self._tasks.get(item.space)
        if task is None or task.done():
            self._tasks[item.space] = asyncio.get_running_loop().create_task(
                self._deliver(item.space)
            )

    def resync(self) -> None:
        """Re-read every subscribed space and wake every long-poll (after a lost LISTEN)."""
        for space in list(self._subscribers):
            self.announce(EntriesLanded(space=space, position=0, roster_changed=True))
        for channel in list(self._pairing_waiters):
            self.announce(PairingPosted(channel=channel))

    async def _deliver(self, space: bytes) -> None:
        try:
            while self._dirty.pop(space, False):
                if space in self._roster_dirty:
                    self._roster_dirty.discard(space)
                    await self._close_removed(space)
                while space in self._subscribers:
                    got = await self._deliver_batch(space)
                    if got < _DELIVERY_BATCH:
                        break
        except Exception:
            # A database hiccup must not kill the hub; the next announcement retries.
            logger.exception("fan-out delivery failed", extra={"event": "fanout_error"})
            self._dirty[space] = True
        finally:
            self._tasks.pop(space, None)

    async def _deliver_batch(self, space: bytes) -> int:
        after = self._delivered.get(space)
        if after is None:
            return 0
        async with self._db.reading() as session:
            rows = (
                await session.execute(
                    select(StoredEntry.position, StoredEntry.device, StoredEntry.data)
                    .where(StoredEntry.space_id == space, StoredEntry.position > after)
                    .order_by(StoredEntry.position)
                    .limit(_DELIVERY_BATCH)
                )
            ).all()
        if not rows:
            return 0
        last = rows[-1].position
        if space in self._delivered:
            self._delivered[space] = max(self._delivered[space], last)
        for subscriber in list(self._subscribers.get(space, ())):
            if subscriber.closing:
                continue
            fresh = tuple(
                row.data
                for row in rows
                if row.position > subscriber.cursor and row.device != subscriber.device
            )
            subscriber.cursor = max(subscriber.cursor, last)
            if not fresh:
                continue
            if subscriber.queue.qsize() >= MAX_QUEUED_PUSHES:
                subscriber.request_close(CLOSE_TOO_SLOW, "too far behind; fetch and reconnect")
                continue
            subscriber.queue.put_nowait(Push(entries=fresh, cursor=last))
        return len(rows)

    async def _close_removed(self, space: bytes) -> None:
        async with self._db.reading() as session:
            removed = set(
                (
                    await session.execute(
                        select(Device.device).where(Device.space_id == space, Device.removed)
                    )
                ).scalars()
            )
        for subscriber in list(self._subscribers.get(space, ())):
            if subscriber.device in removed:
                subscriber.request_close(CLOSE_DEVICE_REMOVED, "device_removed")

    # -- pairing long-polls ----------------------------------------------------------

    @contextlib.asynccontextmanager
    async def pairing_waiter(self, channel: str) -> AsyncIterator[asyncio.Event]:
        """An event set when ``channel`` is announced, registered for the block."""
        event = asyncio.Event()
        self._pairing_waiters[channel].add(event)
        try:
            yield event
        finally:
            group = self._pairing_waiters.get(channel)
            if group is not None:
                group.discard(event)
                if not group:
                    del self._pairing_waiters[channel]

    async def stop(self) -> None:
        for task in list(self._tasks.values()):
            task.cancel()
        for task in list(self._tasks.values()):
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def _last_position(session: AsyncSession, space: bytes) -> int:
    value = await session.scalar(select(Space.last_position).where(Space.id == space))
    return int(value or 0)


class Fanout:
    """How announcements travel: straight to the hub (SQLite) or through NOTIFY (PostgreSQL)."""

    def __init__(self, db: Database, hub: Hub, metrics: RelayMetrics) -> None:
        self._db = db
        self.hub = hub
        self._metrics = metrics
        self._listener: asyncio.Task[None] | None = None
        self._connection: asyncpg.Connection | None = None
        self._listening = asyncio.Event()

    @property
    def uses_notify(self) -> bool:
        return self._db.is_postgres

    async def in_transaction(self, session: AsyncSession, item: Announcement) -> None:
        """Queue ``item`` inside a write transaction (PostgreSQL: delivered at commit)."""
        if self.uses_notify:
            await session.execute(
                text("SELECT pg_notify(:channel, :payload)"),
                {"channel": CHANNEL, "payload": encode_announcement(item)},
            )

    def after_commit(self, item: Announcement) -> None:
        """Deliver ``item`` after its transaction committed (SQLite: to this hub)."""
        if not self.uses_notify:
            self.hub.announce(item)

    # -- the LISTEN connection (PostgreSQL) ------------------------------------------

    async def start(self) -> None:
        if not self.uses_notify:
            return
        self._listener = asyncio.get_running_loop().create_task(self._listen_forever())
        # Wait briefly for the first LISTEN, so a relay that answers /healthz also fans out.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._listening.wait(), timeout=10)

    async def stop(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
        await self.hub.stop()

    def _on_notify(self, connection: object, pid: int, channel: str, payload: str) -> None:
        item = decode_announcement(payload)
        if item is not None:
            self._metrics.fanout_notifications.inc()
            self.hub.announce(item)

    async def _listen_forever(self) -> None:
        dsn = (
            make_url(self._db.url)
            .set(drivername="postgresql")
            .render_as_string(hide_password=False)
        )
        delay = 0.5
        first = True
        while True:
            lost = asyncio.Event()
            connection: asyncpg.Connection | None = None
            try:
                connection = await asyncpg.connect(dsn)
                connection.add_termination_listener(lambda _conn, lost=lost: lost.set())
                await connection.add_listener(CHANNEL, self._on_notify)
                self._listening.set()
                if not first:
                    logger.warning("fan-out listener reconnected", extra={"event": "fanout"})
                    self.hub.resync()
                first = False
                delay = 0.5
                while not lost.is_set():
                    # asyncpg reports a dead socket only when it is used.
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(lost.wait(), timeout=15)
                    if not lost.is_set():
                        await connection.execute("SELECT 1")
            except asyncio.CancelledError:
                if connection is not None:
                    with contextlib.suppress(Exception):
                        await connection.close(timeout=2)
                raise
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                logger.warning(
                    "fan-out listener lost; retrying",
                    extra={"event": "fanout", "error_type": type(exc).__name__},
                )
            if connection is not None:
                with contextlib.suppress(Exception):
                    connection.terminate()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)
