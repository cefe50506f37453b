"""Device authentication: Ed25519 challenge-response and short-lived bearer tokens (SPEC 9.3).

1. ``issue_challenge``: a device of a space asks for 32 random bytes, valid
   ``challenge_ttl`` seconds and usable once.
2. ``issue_token``: the device signs ``"accord/auth/v1\\0" || enc({"challenge", "device",
   "space"})``. If the signature verifies and the challenge is unused and fresh, the
   challenge is deleted and a random 32-byte token is returned. Only its BLAKE2b hash
   is stored, so every relay process sharing the database accepts it and a copy of the
   database holds no usable token.
3. ``authenticate``: every later request presents the token. It is bound to one
   device of one space; it stops working at its expiry, and at once when the device
   is removed from the roster (the check reads the device row on every request).

This module is transport-free: it raises :class:`RelayError` and protocol errors, and
the HTTP and WebSocket layers map them.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from protocol import encoding
from protocol.crypto import SigContext, blake2b, random_bytes, verify_signature
from protocol.errors import BadSignatureError, DeviceRemovedError, UnknownDeviceError
from server.errors import RelayError, RelayErrorCode
from server.models import AuthChallenge, AuthToken, Device, Space
from server.store import Database, now
from server.wire import b64decode, b64encode

CHALLENGE_BYTES = 32
TOKEN_BYTES = 32
_TOKEN_PERSON = b"accord:relay-tok"


@dataclass(frozen=True, slots=True, kw_only=True)
class Principal:
    """Who a valid token speaks for."""

    space: bytes
    device: bytes
    member: bytes
    expires_at: int


def token_hash(token: bytes) -> bytes:
    """The stored form of a token (never the token itself)."""
    return blake2b(token, person=_TOKEN_PERSON)


def auth_message(*, space: bytes, device: bytes, challenge: bytes) -> bytes:
    """What a device signs to get a token (SPEC.md section 9.3)."""
    return SigContext.AUTH + encoding.encode(
        {"space": space, "device": device, "challenge": challenge}
    )


async def _device_row(session: AsyncSession, space: bytes, device: bytes) -> Device:
    if await session.get(Space, space) is None:
        raise RelayError(RelayErrorCode.UNKNOWN_SPACE, "no such space on this relay")
    row = await session.get(Device, (space, device))
    if row is None:
        raise UnknownDeviceError("the device is not in the space's roster")
    if row.removed:
        raise DeviceRemovedError("the device was removed from the space")
    return row


async def issue_challenge(
    session: AsyncSession, *, space: bytes, device: bytes, ttl: int
) -> tuple[bytes, int]:
    """A fresh challenge for ``device`` in ``space`` and its expiry time.

    Raises:
        RelayError: ``unknown_space``.
        UnknownDeviceError, DeviceRemovedError: the device may not sign in.
    """
    await _device_row(session, space, device)
    challenge = random_bytes(CHALLENGE_BYTES)
    expires_at = now() + ttl
    session.add(
        AuthChallenge(challenge=challenge, space_id=space, device=device, expires_at=expires_at)
    )
    return challenge, expires_at


async def issue_token(
    db: Database,
    *,
    space: bytes,
    device: bytes,
    challenge: bytes,
    signature: bytes,
    ttl: int,
) -> tuple[str, int]:
    """Check a signed challenge and return a new token and its expiry time.

    The challenge is used up (in its own committed transaction) before the signature is
    checked, so a challenge never serves twice, even to concurrent requests.

    Raises:
        RelayError: ``unknown_space``; ``auth_failed`` for an unknown, used or expired
            challenge, one issued to another device or space, or a bad signature.
        UnknownDeviceError, DeviceRemovedError: the device may not sign in.
    """
    async with db.writing() as session:
        await _device_row(session, space, device)
        row = await session.get(AuthChallenge, challenge)
        matches = row is not None and row.space_id == space and row.device == device
        if matches:
            result = await session.execute(
                delete(AuthChallenge).where(AuthChallenge.challenge == challenge)
            )
            matches = _rowcount(result) == 1
        fresh = row is not None and row.expires_at > now()
    if not matches:
        raise RelayError(RelayErrorCode.AUTH_FAILED, "unknown or already used challenge")
    if not fresh:
        raise RelayError(RelayErrorCode.AUTH_FAILED, "the challenge has expired")
    message = auth_message(space=space, device=device, challenge=challenge)
    try:
        verify_signature(device, message, signature)
    except BadSignatureError:
        raise RelayError(
            RelayErrorCode.AUTH_FAILED, "the challenge signature does not verify"
        ) from None
    token = random_bytes(TOKEN_BYTES)
    issued = now()
    async with db.writing() as session:
        session.add(
            AuthToken(
                token_hash=token_hash(token),
                space_id=space,
                device=device,
                created_at=issued,
                expires_at=issued + ttl,
            )
        )
    return b64encode(token), issued + ttl


def _rowcount(result: object) -> int:
    count = getattr(result, "rowcount", -1)
    return count if isinstance(count, int) else -1


def parse_bearer(header: str | None) -> str:
    """The token of an ``Authorization: Bearer <token>`` header.

    Raises:
        RelayError: ``unauthorized`` when the header is missing or not a bearer token.
    """
    if not header:
        raise RelayError(RelayErrorCode.UNAUTHORIZED, "an Authorization: Bearer token is required")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise RelayError(
            RelayErrorCode.UNAUTHORIZED, "the Authorization header is not a bearer token"
        )
    return value.strip()


async def authenticate(session: AsyncSession, token: str, *, space: bytes | None) -> Principal:
    """The principal a token speaks for, checked against ``space`` when given.

    Raises:
        RelayError: ``unauthorized`` for an unknown, malformed or expired token;
            ``forbidden`` when the token belongs to another space.
        DeviceRemovedError: the token's device was removed from the roster.
    """
    try:
        raw = b64decode(token, name="token")
    except RelayError:
        raise RelayError(RelayErrorCode.UNAUTHORIZED, "the token is not valid") from None
    if len(raw) != TOKEN_BYTES:
        raise RelayError(RelayErrorCode.UNAUTHORIZED, "the token is not valid")
    result = await session.execute(
        select(AuthToken, Device)
        .join(Device, (Device.space_id == AuthToken.space_id) & (Device.device == AuthToken.device))
        .where(AuthToken.token_hash == token_hash(raw))
    )
    found = result.first()
    if found is None:
        raise RelayError(RelayErrorCode.UNAUTHORIZED, "the token is not valid")
    stored, device = found.tuple()
    if stored.expires_at <= now():
        raise RelayError(RelayErrorCode.UNAUTHORIZED, "the token has expired")
    if space is not None and stored.space_id != space:
        raise RelayError(RelayErrorCode.FORBIDDEN, "the token belongs to another space")
    if device.removed:
        raise DeviceRemovedError("the device was removed from the space")
    return Principal(
        space=stored.space_id,
        device=stored.device,
        member=device.member,
        expires_at=stored.expires_at,
    )


async def purge_expired(session: AsyncSession) -> None:
    """Delete expired challenges and tokens (run now and then by a background task)."""
    moment = now()
    await session.execute(delete(AuthChallenge).where(AuthChallenge.expires_at <= moment))
    await session.execute(delete(AuthToken).where(AuthToken.expires_at <= moment))
