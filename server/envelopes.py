"""Key envelopes on the relay: store them for their recipient, hand them out (SPEC.md 9.6).

The relay cannot open an envelope. It parses the canonical map only to index it by
recipient (``to``) and epoch, and checks what it can: the shape, the space, that the
sender (``from``) is the device whose token uploads it, the sender's signature, and
that the recipient is an active device of the space's roster. Re-sending an envelope
already stored stores nothing new.

This module does not import aiohttp.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from protocol.crypto import blake2b
from protocol.epochs import KeyEnvelope, verify_envelope
from protocol.errors import AccordError, DeviceRemovedError, UnknownDeviceError, WrongSpaceError
from server.auth import Principal
from server.config import Limits
from server.errors import EntryRefused, RelayError, RelayErrorCode
from server.models import Device
from server.models import KeyEnvelope as StoredEnvelope
from server.store import Database, now

_PERSON = b"accord:envelope"


@dataclass(frozen=True, slots=True, kw_only=True)
class PutResult:
    stored: int
    duplicate: int


def _checked(raw: bytes, principal: Principal) -> KeyEnvelope:
    envelope = KeyEnvelope.from_bytes(raw)
    if envelope.space != principal.space:
        raise WrongSpaceError("the envelope belongs to another space")
    if envelope.sender != principal.device:
        raise RelayError(RelayErrorCode.FORBIDDEN, "a device uploads only envelopes it signed")
    verify_envelope(envelope, trusted_senders=(principal.device,))
    return envelope


async def put_envelopes(
    db: Database, principal: Principal, raw_envelopes: Sequence[bytes], limits: Limits
) -> PutResult:
    """Store a batch of envelopes signed by the principal's device, all or nothing.

    Raises:
        EntryRefused: wraps the error of the first refused envelope and its index
            (``malformed``, ``wrong_space``, ``bad_signature``, ``forbidden``,
            ``unknown_device`` or ``device_removed`` for the recipient).
        RelayError: ``batch_too_large``; ``bad_request`` for an empty batch.
    """
    if not raw_envelopes:
        raise RelayError(RelayErrorCode.BAD_REQUEST, "envelopes must not be empty")
    if len(raw_envelopes) > limits.max_envelopes:
        raise RelayError(
            RelayErrorCode.BATCH_TOO_LARGE, f"at most {limits.max_envelopes} envelopes at once"
        )
    checked: list[tuple[KeyEnvelope, bytes]] = []
    for index, raw in enumerate(raw_envelopes):
        try:
            checked.append((_checked(raw, principal), raw))
        except (AccordError, RelayError) as exc:
            raise EntryRefused(exc, index) from None
    for attempt in range(2):
        try:
            return await _store(db, principal, checked)
        except IntegrityError:  # a concurrent upload of the same envelope
            if attempt == 1:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


async def _store(
    db: Database, principal: Principal, checked: Sequence[tuple[KeyEnvelope, bytes]]
) -> PutResult:
    stored = duplicate = 0
    moment = now()
    async with db.writing() as session:
        recipients = {
            row.device: row
            for row in (
                await session.execute(
                    select(Device).where(
                        Device.space_id == principal.space,
                        Device.device.in_({envelope.recipient for envelope, _ in checked}),
                    )
                )
            ).scalars()
        }
        seen: set[tuple[bytes, int, bytes]] = set()
        for index, (envelope, raw) in enumerate(checked):
            row = recipients.get(envelope.recipient)
            if row is None:
                raise EntryRefused(UnknownDeviceError("the recipient is not in the roster"), index)
            if row.removed:
                raise EntryRefused(DeviceRemovedError("the recipient was removed"), index)
            digest = blake2b(raw, person=_PERSON)
            key = (envelope.recipient, envelope.epoch, digest)
            exists = key in seen or (
                await session.scalar(
                    select(StoredEnvelope.id).where(
                        StoredEnvelope.space_id == principal.space,
                        StoredEnvelope.recipient == envelope.recipient,
                        StoredEnvelope.epoch == envelope.epoch,
                        StoredEnvelope.envelope_hash == digest,
                    )
                )
                is not None
            )
            if exists:
                duplicate += 1
                continue
            seen.add(key)
            session.add(
                StoredEnvelope(
                    space_id=principal.space,
                    recipient=envelope.recipient,
                    sender=envelope.sender,
                    epoch=envelope.epoch,
                    envelope_hash=digest,
                    created_at=moment,
                    data=raw,
                )
            )
            stored += 1
    return PutResult(stored=stored, duplicate=duplicate)


async def envelopes_for(db: Database, principal: Principal, *, epoch: int | None) -> list[bytes]:
    """The envelopes addressed to the principal's device, oldest epoch first."""
    query = select(StoredEnvelope.data).where(
        StoredEnvelope.space_id == principal.space,
        StoredEnvelope.recipient == principal.device,
    )
    if epoch is not None:
        query = query.where(StoredEnvelope.epoch == epoch)
    async with db.reading() as session:
        rows = await session.execute(query.order_by(StoredEnvelope.epoch, StoredEnvelope.id))
        return list(rows.scalars())
