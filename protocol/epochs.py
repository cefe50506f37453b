"""Key epochs: epoch keys, the key envelopes that carry them, and the epoch rule.

Theory of operation (SPEC.md section 6):

* A space's content is encrypted under an *epoch key*: 32 random bytes. Epoch 0's key
  is made by the founder; every later epoch ``n`` is announced by a roster record
  ``{"op": "epoch", "epoch": n, "key_id": key_id(K_n)}`` (SPEC 5.2), written by the
  device that made the key.
* That device hands the key to every active device in a signed *key envelope*: the key
  sealed (``crypto_box_seal``) to the recipient's X25519 key, and the whole envelope
  signed by the sender with the ``accord/key-envelope/v1`` context. The relay stores
  and forwards envelopes; it cannot open them, and it cannot forge one.
* :func:`unwrap_epoch_key` checks, in this order: the signature, that the sender is a
  device the caller trusts (an active device of the roster), the space, that the box
  opens for this device, and that the key inside has the envelope's key id (and the
  roster's, when given). Each failure has its own error.
* The epoch rule (:func:`check_entry_epoch`, SPEC 6.1) says which epoch an entry may
  use: one that is known, never older than its feed's previous entry, and never older
  than a rotation in its causal past (:func:`epoch_floors`).

History written before a removal keeps no forward secrecy: a removed device keeps the
keys it held. It never receives a later epoch's key, so it cannot read later entries.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import nacl.bindings as sodium
import nacl.exceptions

from protocol import encoding
from protocol.crypto import (
    KEY_BYTES,
    SIGNATURE_BYTES,
    SPACE_ID_BYTES,
    DeviceKey,
    SigContext,
    check_device_id,
    key_id,
    random_bytes,
    verify_signature,
    x25519_public_of,
)
from protocol.entry import Entry
from protocol.errors import (
    DecryptError,
    MalformedError,
    UnknownDeviceError,
    UnsupportedVersionError,
    UsageError,
    WrongEpochError,
    WrongSpaceError,
)
from protocol.feeds import causal_order_ids, entry_references, index_by_id
from protocol.roster_records import KEY_ID_BYTES

#: ``v`` of a key envelope (SPEC.md 6.2).
ENVELOPE_VERSION = 1
#: Overhead of a sealed box: the ephemeral public key and the MAC.
SEAL_OVERHEAD: int = sodium.crypto_box_SEALBYTES
#: Size of the ``box`` of an envelope: a sealed 32-byte epoch key.
BOX_BYTES = KEY_BYTES + SEAL_OVERHEAD
#: Largest encoded envelope; a well-formed one is about 260 bytes.
MAX_ENVELOPE_BYTES = 1024

_FIELDS = {"v", "space", "epoch", "key_id", "to", "from", "box", "sig"}


def new_epoch_key() -> bytes:
    """A fresh random epoch key."""
    return random_bytes(KEY_BYTES)


def _check_bytes(value: object, size: int, name: str) -> None:
    if not isinstance(value, bytes) or len(value) != size:
        raise MalformedError(f"{name} must be {size} bytes")


@dataclass(frozen=True, slots=True, kw_only=True)
class KeyEnvelope:
    """One epoch key sealed to one device and signed by another (SPEC.md 6.2).

    On the wire ``recipient`` is the field ``to`` and ``sender`` the field ``from``.
    Building one checks the shape only; :func:`unwrap_epoch_key` checks the rest.
    """

    space: bytes
    epoch: int
    key_id: bytes
    recipient: bytes
    sender: bytes
    box: bytes
    sig: bytes = field(default=b"", repr=False)
    v: int = ENVELOPE_VERSION

    def __post_init__(self) -> None:
        if self.v != ENVELOPE_VERSION or isinstance(self.v, bool):
            raise UnsupportedVersionError(f"key envelope version {self.v} is not supported")
        _check_bytes(self.space, SPACE_ID_BYTES, "a space id")
        if (
            not isinstance(self.epoch, int)
            or isinstance(self.epoch, bool)
            or not 0 <= self.epoch <= encoding.INT_MAX
        ):
            raise MalformedError("epoch must be an unsigned integer")
        _check_bytes(self.key_id, KEY_ID_BYTES, "a key id")
        check_device_id(self.recipient)
        check_device_id(self.sender)
        _check_bytes(self.box, BOX_BYTES, "the box")
        if not isinstance(self.sig, bytes) or len(self.sig) not in (0, SIGNATURE_BYTES):
            raise MalformedError(f"a signature is {SIGNATURE_BYTES} bytes")

    def unsigned_map(self) -> dict[str, Any]:
        return {
            "v": self.v,
            "space": self.space,
            "epoch": self.epoch,
            "key_id": self.key_id,
            "to": self.recipient,
            "from": self.sender,
            "box": self.box,
        }

    def signing_bytes(self) -> bytes:
        """What the sender signs: the context and the envelope without ``sig``."""
        return SigContext.KEY_ENVELOPE + encoding.encode(self.unsigned_map())

    def to_bytes(self) -> bytes:
        """The canonical encoding.

        Raises:
            UsageError: the envelope is not signed.
        """
        if not self.sig:
            raise UsageError("an unsigned envelope has no wire form")
        return encoding.encode({**self.unsigned_map(), "sig": self.sig})

    @classmethod
    def from_bytes(cls, data: bytes) -> KeyEnvelope:
        """Parse an encoded envelope (shape only).

        Raises:
            OversizedError: above :data:`MAX_ENVELOPE_BYTES`.
            MalformedError: not the canonical encoding of an envelope.
            UnsupportedVersionError: a ``v`` other than 1.
        """
        fields = encoding.decode_map(data, max_size=MAX_ENVELOPE_BYTES)
        return cls.from_map(fields)

    @classmethod
    def from_map(cls, fields: Mapping[str, Any]) -> KeyEnvelope:
        """Build an envelope from its decoded map (see :meth:`from_bytes`)."""
        version = fields.get("v")
        if not isinstance(version, int) or isinstance(version, bool):
            raise MalformedError("a key envelope has an integer v")
        if version != ENVELOPE_VERSION:
            raise UnsupportedVersionError(f"key envelope version {version} is not supported")
        if set(fields) != _FIELDS:
            raise MalformedError("envelope fields are not exactly those of SPEC section 6.2")
        sig = fields["sig"]
        if not isinstance(sig, bytes) or len(sig) != SIGNATURE_BYTES:
            raise MalformedError(f"a signature is {SIGNATURE_BYTES} bytes")
        return cls(
            v=version,
            space=fields["space"],
            epoch=fields["epoch"],
            key_id=fields["key_id"],
            recipient=fields["to"],
            sender=fields["from"],
            box=fields["box"],
            sig=sig,
        )


def seal_to(recipient: bytes, message: bytes, *, ephemeral_secret: bytes | None = None) -> bytes:
    """``crypto_box_seal`` of ``message`` to a device's X25519 key.

    With ``ephemeral_secret`` (32 bytes; known-answer tests only) the same construction
    is made from libsodium's parts: ``epk || crypto_box_easy(message, nonce, pk, esk)``
    where ``nonce = BLAKE2b-192(epk || pk)``, which ``crypto_box_seal_open`` opens.

    Raises:
        MalformedError: ``recipient`` is not a valid Ed25519 public key.
        UsageError: ``ephemeral_secret`` has the wrong size.
    """
    recipient_x = x25519_public_of(recipient)
    if ephemeral_secret is None:
        return bytes(sodium.crypto_box_seal(message, recipient_x))
    if len(ephemeral_secret) != sodium.crypto_box_SECRETKEYBYTES:
        raise UsageError(f"an ephemeral secret is {sodium.crypto_box_SECRETKEYBYTES} bytes")
    ephemeral_public = bytes(sodium.crypto_scalarmult_base(ephemeral_secret))
    nonce = bytes(
        sodium.crypto_generichash_blake2b_salt_personal(
            ephemeral_public + recipient_x, digest_size=sodium.crypto_box_NONCEBYTES
        )
    )
    boxed = sodium.crypto_box_easy(message, nonce, recipient_x, ephemeral_secret)
    return ephemeral_public + bytes(boxed)


def wrap_epoch_key(
    *,
    from_key: DeviceKey,
    to: bytes,
    space: bytes,
    epoch: int,
    epoch_key: bytes,
    ephemeral_secret: bytes | None = None,
) -> KeyEnvelope:
    """Seal ``epoch_key`` to device ``to`` and sign the envelope with ``from_key``.

    ``ephemeral_secret`` makes the box deterministic (known-answer tests only).

    Raises:
        UsageError: ``epoch_key`` is not 32 bytes.
        MalformedError: ``to`` is not a valid device key, or another field is out of shape.
    """
    if len(epoch_key) != KEY_BYTES:
        raise UsageError(f"an epoch key is {KEY_BYTES} bytes")
    unsigned = KeyEnvelope(
        space=space,
        epoch=epoch,
        key_id=key_id(epoch_key),
        recipient=to,
        sender=from_key.public,
        box=seal_to(to, epoch_key, ephemeral_secret=ephemeral_secret),
    )
    return KeyEnvelope(
        space=unsigned.space,
        epoch=unsigned.epoch,
        key_id=unsigned.key_id,
        recipient=unsigned.recipient,
        sender=unsigned.sender,
        box=unsigned.box,
        sig=from_key.sign(unsigned.signing_bytes()),
    )


def verify_envelope(envelope: KeyEnvelope, *, trusted_senders: Collection[bytes]) -> None:
    """Check an envelope's signature and sender; what a relay can check.

    Raises:
        BadSignatureError: the signature does not verify.
        UnknownDeviceError: the sender is not in ``trusted_senders``.
    """
    verify_signature(envelope.sender, envelope.signing_bytes(), envelope.sig)
    if envelope.sender not in trusted_senders:
        raise UnknownDeviceError("the envelope's sender is not an active device")


def unwrap_epoch_key(
    envelope: KeyEnvelope,
    *,
    device_key: DeviceKey,
    trusted_senders: Collection[bytes],
    space: bytes | None = None,
    announced_key_id: bytes | None = None,
) -> bytes:
    """Check an envelope and open it; return the epoch key.

    ``trusted_senders`` are the roster's active devices. ``space``, when given, must be
    the envelope's; ``announced_key_id``, when given, is the key id the roster's
    ``epoch`` record announced for this epoch.

    Raises:
        BadSignatureError: the signature does not verify.
        UnknownDeviceError: the sender is not trusted.
        WrongSpaceError: the envelope is for another space.
        DecryptError: the envelope is addressed to another device, or the box does not
            open with this device's key.
        WrongEpochError: the key inside is not the one the envelope (or the roster)
            names for this epoch.
    """
    verify_envelope(envelope, trusted_senders=trusted_senders)
    if space is not None and envelope.space != space:
        raise WrongSpaceError("the envelope belongs to another space")
    if envelope.recipient != device_key.public:
        raise DecryptError("the envelope is addressed to another device")
    try:
        epoch_key = bytes(
            sodium.crypto_box_seal_open(
                envelope.box, device_key.x25519_public, device_key.x25519_secret
            )
        )
    except (nacl.exceptions.CryptoError, ValueError, TypeError):
        raise DecryptError("the box does not open with this device's key") from None
    if len(epoch_key) != KEY_BYTES or key_id(epoch_key) != envelope.key_id:
        raise WrongEpochError("the key inside is not the key the envelope names")
    if announced_key_id is not None and envelope.key_id != announced_key_id:
        raise WrongEpochError("the key is not the one the roster announced for this epoch")
    return epoch_key


# -- the epoch rule (SPEC.md 6.1) ----------------------------------------------------


def epoch_floors(entries: Iterable[Entry], rotations: Mapping[bytes, int]) -> dict[bytes, int]:
    """For each rankable entry, the highest epoch rotated to in its causal past.

    ``rotations`` maps the entry id of each accepted ``epoch`` roster record to the
    epoch it starts (:attr:`protocol.roster.Roster.rotations`). The causal past of an
    entry is everything its ``prev`` and ``seen`` reach, the entry itself excluded. The
    recursion is the one of :func:`protocol.feeds.causal_ranks`.
    """
    reach: dict[bytes, int] = {}
    floors: dict[bytes, int] = defaultdict(int)
    by_id = index_by_id(entries)
    for eid in causal_order_ids(by_id):
        entry = by_id[eid]
        floor = max((reach[ref] for ref, _, _ in entry_references(entry)), default=0)
        floors[eid] = floor
        reach[eid] = max(floor, rotations.get(eid, 0))
    return dict(floors)


def check_entry_epoch(
    entry: Entry, *, known_epochs: Collection[int], floor: int, prev_epoch: int
) -> None:
    """Check the epoch an entry was written in (SPEC.md 6.1).

    ``known_epochs`` holds 0 and every accepted rotation; ``floor`` is the entry's
    :func:`epoch_floors` value; ``prev_epoch`` the epoch of its feed's previous entry
    (0 for seq 1).

    Raises:
        WrongEpochError: the epoch is unknown, older than the feed's previous entry, or
            older than a rotation in the entry's causal past.
    """
    if entry.epoch not in known_epochs:
        raise WrongEpochError(f"epoch {entry.epoch} is not known")
    if entry.epoch < prev_epoch:
        raise WrongEpochError("the feed goes back to an older epoch")
    if entry.epoch < floor:
        raise WrongEpochError(f"the author had already seen the rotation to epoch {floor}")
