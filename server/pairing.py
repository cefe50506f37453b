"""The pairing rendezvous: short-lived two-party mailboxes (SPEC.md section 9.8).

Theory of operation:

* The device that shows the code *creates* a channel and becomes side ``a``. It gets a
  random channel id (for QR codes) and, when asked, a short decimal *nameplate* (for
  typed codes), a side token, and the expiry: at most 2 minutes after creation.
* The joining device *claims* the channel, by id or by nameplate, before the code
  expires, and becomes side ``b``. A channel is claimed once: the nameplate is freed at
  that moment and every later claim gets ``channel_claimed``; nothing else changes, so
  a second claimant cannot spoil a pairing under way. The claim is one conditional
  UPDATE, so two racing claimants cannot both win. A claimed channel lives on for the
  session, :data:`SESSION_SECONDS` past the code's expiry (SPEC.md 11.1).
* Each side posts small opaque messages (``body``, at most 16 KiB by default) and
  reads the other side's, long-polling up to ``wait`` seconds. A channel holds at most
  a few messages.
* Either side *burns* the channel (DELETE) on any failure; it is then gone for both.
  Expired channels are deleted by the relay's sweeper, and treated as gone before that.
* Side tokens are stored as hashes. Bodies are stored only until the channel goes and
  are never logged.

This module does not import aiohttp.
"""

from __future__ import annotations

import asyncio
import hmac
import secrets
import time
from dataclasses import dataclass

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from protocol.crypto import blake2b, random_bytes
from server.config import Limits
from server.errors import RelayError, RelayErrorCode
from server.fanout import Fanout, PairingPosted
from server.models import PairingChannel, PairingMessage
from server.store import Database, now
from server.wire import b64decode, b64encode

CHANNEL_ID_BYTES = 16
SIDE_TOKEN_BYTES = 32
#: Nameplates are drawn at random from 1..NAMEPLATE_MAX.
NAMEPLATE_MAX = 9999
_NAMEPLATE_TRIES = 24
_TOKEN_PERSON = b"accord:pair-side"
#: A claimed channel lives this much longer than its code, for the pairing session
#: itself (SPEC.md 11.1: a session ends at the invite's expiry + 180 s at the latest).
SESSION_SECONDS = 180
#: Long-polls re-read the database at least this often, in case a wake-up was missed.
_POLL_SECONDS = 2.0


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelGrant:
    """A side's access to a channel."""

    channel: str
    side_token: str
    expires_at: int
    nameplate: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Message:
    seq: int
    body: bytes


def _hash(token: bytes) -> bytes:
    return blake2b(token, person=_TOKEN_PERSON)


def _new_token() -> tuple[str, bytes]:
    token = random_bytes(SIDE_TOKEN_BYTES)
    return b64encode(token), _hash(token)


async def create_channel(db: Database, *, ttl: int, with_nameplate: bool) -> ChannelGrant:
    """A new channel with its creator as side ``a``.

    Raises:
        RelayError: ``nameplates_exhausted`` when no free nameplate was found.
    """
    moment = now()
    for _ in range(_NAMEPLATE_TRIES):
        channel = b64encode(random_bytes(CHANNEL_ID_BYTES))
        token, token_hash = _new_token()
        nameplate = str(secrets.randbelow(NAMEPLATE_MAX) + 1) if with_nameplate else None
        try:
            async with db.writing() as session:
                session.add(
                    PairingChannel(
                        id=channel,
                        nameplate=nameplate,
                        created_at=moment,
                        expires_at=moment + ttl,
                        side_a_hash=token_hash,
                        side_b_hash=None,
                        message_count=0,
                    )
                )
        except IntegrityError:
            # A nameplate in use, possibly by an expired channel the sweeper has not
            # reached yet: clear those and draw again.
            async with db.writing() as session:
                await purge_expired(session)
            continue
        return ChannelGrant(
            channel=channel, side_token=token, expires_at=moment + ttl, nameplate=nameplate
        )
    raise RelayError(RelayErrorCode.NAMEPLATES_EXHAUSTED, "no free nameplate; try again soon")


async def claim(
    db: Database, *, channel: str | None = None, nameplate: str | None = None
) -> ChannelGrant:
    """Join a channel as side ``b``, by id or by nameplate.

    Raises:
        RelayError: ``unknown_channel`` (no such channel, or expired),
            ``channel_claimed`` (someone claimed it already).
    """
    token, token_hash = _new_token()
    moment = now()
    async with db.writing() as session:
        if nameplate is not None:
            row = (
                await session.execute(
                    select(PairingChannel).where(PairingChannel.nameplate == nameplate)
                )
            ).scalar_one_or_none()
        else:
            row = await session.get(PairingChannel, channel)
        if row is None or row.expires_at <= moment:
            raise RelayError(RelayErrorCode.UNKNOWN_CHANNEL, "no such pairing channel")
        session_end = row.expires_at + SESSION_SECONDS
        result = await session.execute(
            update(PairingChannel)
            .where(
                PairingChannel.id == row.id,
                PairingChannel.side_b_hash.is_(None),
                PairingChannel.expires_at > moment,
            )
            .values(side_b_hash=token_hash, nameplate=None, expires_at=session_end)
        )
        if getattr(result, "rowcount", 0) != 1:
            raise RelayError(RelayErrorCode.CHANNEL_CLAIMED, "the channel was already claimed")
        return ChannelGrant(channel=row.id, side_token=token, expires_at=session_end)


async def _side(session: AsyncSession, channel: str, token: str) -> tuple[PairingChannel, str]:
    row = await session.get(PairingChannel, channel)
    if row is None or row.expires_at <= now():
        raise RelayError(RelayErrorCode.UNKNOWN_CHANNEL, "no such pairing channel")
    try:
        digest = _hash(b64decode(token, name="side token"))
    except RelayError:
        raise RelayError(RelayErrorCode.UNAUTHORIZED, "not a side token of this channel") from None
    if hmac.compare_digest(digest, row.side_a_hash):
        return row, "a"
    if row.side_b_hash is not None and hmac.compare_digest(digest, row.side_b_hash):
        return row, "b"
    raise RelayError(RelayErrorCode.UNAUTHORIZED, "not a side token of this channel")


async def post_message(
    db: Database, fanout: Fanout, *, channel: str, token: str, body: bytes, limits: Limits
) -> int:
    """Post ``body`` from the token's side; returns the message's seq.

    Raises:
        RelayError: ``unknown_channel``, ``unauthorized``, ``message_too_large``,
            ``channel_full``.
    """
    if len(body) > limits.pairing_message_bytes:
        raise RelayError(
            RelayErrorCode.MESSAGE_TOO_LARGE,
            f"a pairing message is at most {limits.pairing_message_bytes} bytes",
        )
    announcement = PairingPosted(channel=channel)
    async with db.writing() as session:
        _, side = await _side(session, channel, token)
        result = await session.execute(
            update(PairingChannel)
            .where(
                PairingChannel.id == channel,
                PairingChannel.message_count < limits.pairing_messages,
            )
            .values(message_count=PairingChannel.message_count + 1)
        )
        if getattr(result, "rowcount", 0) != 1:
            raise RelayError(RelayErrorCode.CHANNEL_FULL, "the channel holds its most messages")
        seq = int(
            await session.scalar(
                select(PairingChannel.message_count).where(PairingChannel.id == channel)
            )
            or 0
        )
        session.add(
            PairingMessage(channel_id=channel, seq=seq, side=side, body=body, created_at=now())
        )
        await session.flush()
        await fanout.in_transaction(session, announcement)
    fanout.after_commit(announcement)
    return seq


async def read_messages(
    db: Database, fanout: Fanout, *, channel: str, token: str, after: int, wait: float
) -> list[Message]:
    """The other side's messages with a seq above ``after``, waiting up to ``wait`` seconds.

    Raises:
        RelayError: ``unknown_channel`` (also when the channel is burned while waiting),
            ``unauthorized``.
    """
    deadline = time.monotonic() + wait
    async with fanout.hub.pairing_waiter(channel) as woken:
        while True:
            woken.clear()
            async with db.reading() as session:
                _, side = await _side(session, channel, token)
                rows = (
                    await session.execute(
                        select(PairingMessage.seq, PairingMessage.body)
                        .where(
                            PairingMessage.channel_id == channel,
                            PairingMessage.seq > after,
                            PairingMessage.side != side,
                        )
                        .order_by(PairingMessage.seq)
                    )
                ).all()
            if rows:
                return [Message(seq=row.seq, body=row.body) for row in rows]
            remaining = deadline - time.monotonic()
            if remaining <= 0 or fanout.hub.stopping:
                return []
            try:
                await asyncio.wait_for(woken.wait(), timeout=min(remaining, _POLL_SECONDS))
            except TimeoutError:
                pass


async def burn(db: Database, fanout: Fanout, *, channel: str, token: str) -> None:
    """Delete a channel and its messages, from either side.

    Raises:
        RelayError: ``unknown_channel``, ``unauthorized``.
    """
    announcement = PairingPosted(channel=channel)
    async with db.writing() as session:
        await _side(session, channel, token)
        await session.execute(delete(PairingMessage).where(PairingMessage.channel_id == channel))
        await session.execute(delete(PairingChannel).where(PairingChannel.id == channel))
        await fanout.in_transaction(session, announcement)
    fanout.after_commit(announcement)


async def purge_expired(session: AsyncSession) -> None:
    """Delete every expired channel and its messages."""
    moment = now()
    expired = select(PairingChannel.id).where(PairingChannel.expires_at <= moment)
    await session.execute(delete(PairingMessage).where(PairingMessage.channel_id.in_(expired)))
    await session.execute(delete(PairingChannel).where(PairingChannel.expires_at <= moment))
