"""The offline-first sync engine: one replica, one relay (DESIGN.md section 6).

Theory of operation. Every local write is already in the replica's feed and outbox
(see :mod:`client_lib.local_writes`), so the app works offline; this module only moves
bytes when the relay can be reached:

1. **Push** the outbox in batches (appends are idempotent, so a retry after a cut
   connection never duplicates an entry), then the key envelopes made here. A space
   the relay does not know yet is registered with its founding roster entry first.
2. **Pull** the key envelopes addressed to this device, then every entry the
   have-vector lacks, page by page, into :meth:`Replica.ingest_many`. Each entry is
   verified there; a bad one becomes a typed event and never stops other feeds.
3. **Check** the relay's feed heads against what it showed before (rollback) and
   the entries' ``seen`` claims against what we hold (withholding).
4. With :meth:`SyncEngine.run`, stay **live** on the WebSocket: pushed entries are
   ingested as they land, local writes are pushed as they are made
   (:meth:`SyncEngine.poke`), and a lost connection is retried with exponential
   backoff and full jitter.

A one-shot :meth:`SyncEngine.sync` serves scripts and the CLI.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import aiohttp

from client_lib.events import Problem, ReplicaEvent, Waiting
from client_lib.relay_client import RelayCallError, RelayClient, RelayUnreachable
from client_lib.replica import Replica
from protocol.crypto import DeviceKey
from protocol.entry import Entry, EntryType

logger = logging.getLogger(__name__)

#: Entries per append call: at most the relay's default batch limit (SPEC.md 9.9).
PUSH_BATCH = 64
#: Backoff between reconnects, in seconds.
BACKOFF_FIRST = 0.5
BACKOFF_MAX = 30.0
#: Refusals that mean this device may not use the space at all.
ACCESS_CODES = frozenset(
    {
        "unauthorized",
        "forbidden",
        "auth_failed",
        "device_removed",
        "unknown_device",
        "unknown_space",
    }
)
#: Key of the relay URL in the store's per-space sync state.
RELAY_URL_KEY = "relay_url"

Progress = Callable[[int, int], None]
EventSink = Callable[[ReplicaEvent], None]


@dataclass(slots=True)
class SyncReport:
    """What one sync did."""

    pushed: int = 0
    received: int = 0
    envelopes_sent: int = 0
    envelopes_received: int = 0
    events: list[ReplicaEvent] = field(default_factory=list)
    #: The relay's refusal of some of this device's entries (its code), if any; they stay
    #: in the outbox, and the pull still ran.
    push_refused: RelayCallError | None = None

    @property
    def problems(self) -> list[Problem]:
        return [event for event in self.events if isinstance(event, Problem)]

    def add(self, other: SyncReport) -> None:
        self.pushed += other.pushed
        self.received += other.received
        self.envelopes_sent += other.envelopes_sent
        self.envelopes_received += other.envelopes_received
        self.events.extend(other.events)
        self.push_refused = self.push_refused or other.push_refused


def backoff_delays(
    first: float = BACKOFF_FIRST, maximum: float = BACKOFF_MAX, rng: random.Random | None = None
) -> Iterable[float]:
    """Exponential backoff with full jitter: each delay is uniform in [0, min(max, first*2^n)]."""
    pick = rng or random.Random()
    ceiling = first
    while True:
        yield pick.uniform(0, ceiling)
        ceiling = min(maximum, ceiling * 2)


def relay_url_of(replica: Replica) -> str | None:
    """The relay this replica syncs with, as recorded in its local store."""
    raw = replica.get_sync_state(RELAY_URL_KEY)
    return raw.decode("utf-8") if raw else None


def set_relay_url(replica: Replica, url: str) -> None:
    """Record the relay this replica syncs with."""
    replica.set_sync_state(RELAY_URL_KEY, url.rstrip("/").encode("utf-8"))


async def register_space(client: RelayClient, replica: Replica) -> bool:
    """Create the space on the relay with its founding entry, when that entry is this
    device's seq 1 (the relay does not know the space yet). False when it is not.

    Raises:
        RelayCallError: the relay refused it (other than "it exists already").
        RelayUnreachable: the relay cannot be reached.
    """
    founding = replica.feed_entries(replica.device)[:1]
    if not founding:
        return False
    entry = Entry.from_bytes(founding[0])
    if entry.seq != 1 or entry.type is not EntryType.ROSTER:
        return False
    try:
        await client.create_space(founding[0])
    except RelayCallError as error:
        if error.code != "space_exists":
            raise
    return True


class SyncEngine:
    """Syncs one replica with one relay. Not shared between event loops."""

    def __init__(
        self,
        replica: Replica,
        *,
        device_key: DeviceKey,
        relay_url: str | None = None,
        session: aiohttp.ClientSession | None = None,
        on_event: EventSink | None = None,
        progress: Progress | None = None,
    ) -> None:
        url = relay_url or relay_url_of(replica)
        if not url:
            raise ValueError("no relay is set for this space")
        self.replica = replica
        self.client = RelayClient(url, device_key=device_key, space=replica.space, session=session)
        self.on_event = on_event
        self.progress = progress
        self._poked = asyncio.Event()
        self.connected = False

    async def close(self) -> None:
        await self.client.close()

    async def __aenter__(self) -> SyncEngine:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def poke(self) -> None:
        """Tell a running :meth:`run` that there are local writes to push."""
        self._poked.set()

    def _emit(self, events: Iterable[ReplicaEvent], report: SyncReport) -> None:
        for event in events:
            report.events.append(event)
            if self.on_event is not None:
                self.on_event(event)

    # -- one-shot ----------------------------------------------------------------------

    async def sync(self) -> SyncReport:
        """Push, pull and check once.

        Raises:
            RelayUnreachable: the relay cannot be reached (nothing local is lost).
            RelayCallError: the relay refused this device (e.g. it was removed).
        """
        report = SyncReport()
        try:
            report.add(await self.push())
        except RelayCallError as error:
            if error.code in ACCESS_CODES or error.status in (0, 500, 503):
                raise
            # One refused entry must not stop this device from receiving: keep it in the
            # outbox, say so, and pull all the same.
            report.push_refused = error
        report.add(await self.pull())
        if report.push_refused is not None and report.push_refused.code == "fork":
            report.add(await self._fetch_own_fork())
        report.add(await self.check())
        return report

    async def push(self) -> SyncReport:
        """Upload the outbox and the key envelopes made here."""
        report = SyncReport()
        pending = self.replica.pending_outbox()
        for start in range(0, len(pending), PUSH_BATCH):
            batch = pending[start : start + PUSH_BATCH]
            try:
                results = await self.client.append([item.raw for item in batch])
            except RelayCallError as error:
                if error.code != "unknown_space":
                    raise
                if not await register_space(self.client, self.replica):
                    raise
                results = await self.client.append([item.raw for item in batch])
            acknowledged = [result.id for result in results]
            self.replica.mark_acknowledged(acknowledged)
            report.pushed += sum(1 for result in results if result.status == "stored")
        envelopes = self.replica.pending_envelopes()
        if envelopes:
            await self.client.put_envelopes([item.data for item in envelopes])
            self.replica.mark_envelopes_delivered(
                (item.recipient, item.epoch) for item in envelopes
            )
            report.envelopes_sent = len(envelopes)
        return report

    async def pull(self) -> SyncReport:
        """Download key envelopes for this device, then every entry we lack."""
        report = SyncReport()
        for data in await self.client.get_envelopes():
            self._emit(self.replica.accept_key_envelope(data), report)
            report.envelopes_received += 1
        have = self.replica.have_vector()
        received: list[bytes] = []
        async for page in self.client.fetch_all(have):
            received.extend(page.entries)
            if self.progress is not None:
                self.progress(len(received), len(received) + (1 if page.more else 0))
        if received:
            self._emit(self.replica.ingest_many(received, progress=self.progress), report)
        report.received = len(received)
        return report

    async def _fetch_own_fork(self) -> SyncReport:
        """The relay holds another entry at one of our unsent seqs (this device was
        restored from an old copy, or its key copied): fetch the relay's version so the
        replica can report the fork with its proof."""
        report = SyncReport()
        pending = self.replica.pending_outbox()
        if not pending:
            return report
        have = self.replica.have_vector()
        have[self.replica.device] = min(item.seq for item in pending) - 1
        theirs: list[bytes] = []
        async for page in self.client.fetch_all(have):
            theirs.extend(
                raw for raw in page.entries if Entry.from_bytes(raw).device == self.replica.device
            )
        if theirs:
            self._emit(self.replica.ingest_many(theirs), report)
        return report

    async def check(self) -> SyncReport:
        """Compare the relay's heads with what it showed before; look for withholding;
        send again this device's own entries the relay no longer holds."""
        report = SyncReport()
        heads = await self.client.heads()
        reported = {device: head.seq for device, head in heads.items()}
        for device in self.replica.have_vector():
            reported.setdefault(device, 0)
        self._emit(self.replica.note_relay_heads(reported), report)
        self._emit(self.replica.withholding(), report)
        own = self.replica.have_vector().get(self.replica.device, 0)
        relay_seq = reported.get(self.replica.device, 0)
        if relay_seq < own:
            report.pushed += await self._restore_own_feed(relay_seq)
        return report

    async def _restore_own_feed(self, relay_seq: int) -> int:
        """The relay holds less of this device's feed than this device wrote (it lost
        entries, or was rolled back to an older copy): send them again, in order.
        Appends are idempotent. Returns how many the relay stored; a refusal (the relay
        holds another entry there: a fork, reported by the pull) stops it quietly."""
        mine = self.replica.feed_entries(self.replica.device, after_seq=relay_seq)
        stored = 0
        for start in range(0, len(mine), PUSH_BATCH):
            try:
                results = await self.client.append(mine[start : start + PUSH_BATCH])
            except RelayCallError as error:
                if error.code in ACCESS_CODES:
                    raise
                return stored
            self.replica.mark_acknowledged([result.id for result in results])
            stored += sum(1 for result in results if result.status == "stored")
        return stored

    # -- live --------------------------------------------------------------------------

    async def run(
        self,
        stop: asyncio.Event | None = None,
        *,
        rng: random.Random | None = None,
    ) -> SyncReport:
        """Stay in sync until ``stop`` is set: sync, then follow the WebSocket.

        Tolerates the relay going away at any moment: reconnects with backoff and
        jitter. Returns everything that happened. Raises only for a refusal that
        retrying cannot cure (this device removed, or unknown to the relay).
        """
        stop = stop or asyncio.Event()
        total = SyncReport()
        delays = iter(backoff_delays(rng=rng))
        while not stop.is_set():
            try:
                total.add(await self.sync())
                delays = iter(backoff_delays(rng=rng))  # a good sync resets the backoff
                await self._follow(stop, total)
            except RelayUnreachable as error:
                self.connected = False
                logger.info("relay unreachable, will retry", extra={"event": "sync_retry"})
                logger.debug("%s", error)
            except RelayCallError as error:
                self.connected = False
                if error.code in {"device_removed", "unknown_device", "forbidden"}:
                    raise
                logger.info("relay refused a call: %s", error.code)
            if stop.is_set():
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=next(delays))
        self.connected = False
        return total

    async def _follow(self, stop: asyncio.Event, total: SyncReport) -> None:
        async with self.client.websocket() as live:
            self.connected = True
            # Entries that landed between the last sync and this socket's subscription
            # would otherwise wait for the next push to reveal the gap: fetch them now.
            # Anything fetched here and also pushed is simply recognised as held.
            total.add(await self.pull())
            pushes = live.pushes().__aiter__()
            next_push: asyncio.Task[list[bytes]] | None = None
            stopper = asyncio.ensure_future(stop.wait())
            try:
                while not stop.is_set():
                    if next_push is None:
                        next_push = asyncio.ensure_future(pushes.__anext__())
                    poked = asyncio.ensure_future(self._poked.wait())
                    done, _ = await asyncio.wait(
                        {next_push, poked, stopper}, return_when=asyncio.FIRST_COMPLETED
                    )
                    if poked not in done:
                        poked.cancel()
                    if stopper in done:
                        return
                    if poked in done:
                        self._poked.clear()
                        total.add(await self.push())
                    if next_push in done:
                        try:
                            raws = next_push.result()
                        except StopAsyncIteration:
                            raise RelayUnreachable("the live connection closed") from None
                        next_push = None
                        report = SyncReport(received=len(raws))
                        events = self.replica.ingest_many(raws)
                        self._emit(events, report)
                        total.add(report)
                        if any(isinstance(event, Waiting) for event in events):
                            total.add(await self.pull())  # a gap: fetch what we missed
            finally:
                stopper.cancel()
                if next_push is not None:
                    next_push.cancel()
                    with contextlib.suppress(BaseException):
                        await next_push
