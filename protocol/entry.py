"""The entry envelope: one signed, chained, encrypted record of a device's feed.

Theory of operation (SPEC.md section 4):

* An entry is a canonical CBOR map. Its *header* is every field but ``body`` and
  ``sig``; the header is the AEAD's associated data, so the relay cannot move a
  ciphertext to another space, seq, epoch or device.
* ``seal`` pads the plaintext to a size bucket (ISO/IEC 7816-4 padding, libsodium's
  ``sodium_pad``), encrypts it with XChaCha20-Poly1305-IETF under the space's
  content key for the epoch, and signs the whole entry with the device key.
* ``open`` checks the space, the device, the signature, the chain link and the
  epoch, and only then decrypts and unpads. Each failure has its own exception.
* Roster entries (``type`` = ``"roster"``) carry a canonical CBOR roster record in
  clear, so the relay can keep its copy of the device keys. They hold no secrets.
* The entry id is BLAKE2b-256 over the whole encoded entry, signature included.
* A decoded entry keeps the bytes it came from. They are canonical (the decoder takes
  nothing else), so its id, its signed bytes and its header are those bytes or slices
  of them, never a second encoding; an entry built in memory is encoded instead.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, NamedTuple

import nacl.bindings as sodium
import nacl.exceptions

from protocol import encoding
from protocol.crypto import (
    AEAD_TAG_BYTES,
    HASH_BYTES,
    NONCE_BYTES,
    SIGNATURE_BYTES,
    SPACE_ID_BYTES,
    DeviceKey,
    Personal,
    SigContext,
    blake2b,
    check_device_id,
    content_key,
    random_bytes,
    verify_signature,
)
from protocol.errors import (
    BadPaddingError,
    BrokenChainError,
    DecryptError,
    MalformedError,
    OversizedError,
    UnknownDeviceError,
    UnsupportedVersionError,
    UsageError,
    WrongEpochError,
    WrongSpaceError,
)

FORMAT_VERSION = 1
MIN_BUCKET = 256
#: Largest padded plaintext, and so the largest ciphertext less the AEAD tag.
MAX_BUCKET = 1024 * 1024
#: Largest plaintext ``seal`` accepts: padding needs at least one byte.
MAX_PLAINTEXT = MAX_BUCKET - 1
#: Largest roster record body.
MAX_ROSTER_BODY = 4096
#: Largest ``seen`` list: one head per other device in the space.
MAX_SEEN = 256
#: Largest encoded entry: the biggest body plus a generous header allowance.
MAX_ENTRY_BYTES = MAX_BUCKET + AEAD_TAG_BYTES + 64 * 1024


class EntryType(StrEnum):
    """The ``type`` field of an entry (SPEC.md section 4.1)."""

    DATA = "data"  # encrypted payload of document updates (SPEC 7)
    ROSTER = "roster"  # clear roster record (SPEC 5)


@dataclass(frozen=True, slots=True, kw_only=True)
class SeenHead:
    """The author's view of another device's feed head when it wrote the entry."""

    device: bytes
    seq: int
    id: bytes

    def __post_init__(self) -> None:
        check_device_id(self.device)
        _check_uint(self.seq, "seen seq", minimum=1)
        _check_hash(self.id, "seen id")

    def to_wire(self) -> list[Any]:
        return [self.device, self.seq, self.id]


class _Wire(NamedTuple):
    """The bytes an entry was decoded from, and where three of its pairs end in them."""

    data: bytes
    seq_end: int
    sig_end: int
    body_end: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Entry:
    """One entry of a device's feed. Builds validate shape, not signatures."""

    type: EntryType
    space: bytes
    device: bytes
    seq: int
    prev: bytes | None
    epoch: int
    seen: tuple[SeenHead, ...] = ()
    nonce: bytes | None = None
    body: bytes = b""
    sig: bytes = field(default=b"", repr=False)
    v: int = FORMAT_VERSION
    #: The bytes the entry was decoded from (see :meth:`from_bytes`), else None. Not part
    #: of the entry's value: copies made with ``dataclasses.replace`` do not carry it.
    _wire: _Wire | None = field(default=None, init=False, repr=False, compare=False)
    #: The id, once computed for a decoded entry (its bytes never change).
    _id: bytes | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.v != FORMAT_VERSION:
            raise UnsupportedVersionError(f"entry format version {self.v} is not supported")
        if not isinstance(self.type, EntryType):
            raise MalformedError("unknown entry type")
        if not isinstance(self.space, bytes) or len(self.space) != SPACE_ID_BYTES:
            raise MalformedError(f"a space id is {SPACE_ID_BYTES} bytes")
        check_device_id(self.device)
        _check_uint(self.seq, "seq", minimum=1)
        _check_uint(self.epoch, "epoch", minimum=0)
        if self.seq == 1:
            if self.prev is not None:
                raise MalformedError("the first entry of a feed has no prev")
        else:
            _check_hash(self.prev, "prev")
        if len(self.seen) > MAX_SEEN:
            raise OversizedError(f"more than {MAX_SEEN} seen heads")
        devices = [head.device for head in self.seen]
        if devices != sorted(set(devices)):
            raise MalformedError("seen heads must be sorted by device, without repeats")
        if self.device in devices:
            raise MalformedError("seen heads must not name the author's own feed")
        if not isinstance(self.body, bytes):
            raise MalformedError("body must be bytes")
        if self.type is EntryType.DATA:
            if not isinstance(self.nonce, bytes) or len(self.nonce) != NONCE_BYTES:
                raise MalformedError(f"a data entry has a {NONCE_BYTES}-byte nonce")
            if len(self.body) > MAX_BUCKET + AEAD_TAG_BYTES:
                raise OversizedError("ciphertext larger than the largest bucket")
            if len(self.body) < MIN_BUCKET + AEAD_TAG_BYTES:
                raise BadPaddingError("ciphertext smaller than the smallest bucket")
        else:
            if self.nonce is not None:
                raise MalformedError("a roster entry has no nonce")
            if len(self.body) > MAX_ROSTER_BODY:
                raise OversizedError("roster record too large")
        if not isinstance(self.sig, bytes) or len(self.sig) not in (0, SIGNATURE_BYTES):
            raise MalformedError(f"a signature is {SIGNATURE_BYTES} bytes")

    # -- encoding -----------------------------------------------------------------

    def header_map(self) -> dict[str, Any]:
        """The header: every field but ``body`` and ``sig`` (the AEAD's associated data)."""
        header: dict[str, Any] = {
            "v": self.v,
            "type": self.type.value,
            "space": self.space,
            "device": self.device,
            "seq": self.seq,
            "prev": self.prev,
            "epoch": self.epoch,
            "seen": [head.to_wire() for head in self.seen],
        }
        if self.nonce is not None:
            header["nonce"] = self.nonce
        return header

    def header_bytes(self) -> bytes:
        """The canonical encoding of :meth:`header_map`."""
        wire = self._wire
        if wire is not None:
            view = memoryview(wire.data)
            return b"".join(
                (_map_head(self._field_count() - 2), view[1 : wire.seq_end], view[wire.body_end :])
            )
        return encoding.encode(self.header_map())

    def signing_bytes(self) -> bytes:
        """What the device signs: the context prefix and the entry without ``sig``."""
        wire = self._wire
        if wire is not None:
            view = memoryview(wire.data)
            return b"".join(
                (
                    SigContext.ENTRY,
                    _map_head(self._field_count() - 1),
                    view[1 : wire.seq_end],
                    view[wire.sig_end :],
                )
            )
        unsigned = self.header_map()
        unsigned["body"] = self.body
        return SigContext.ENTRY + encoding.encode(unsigned)

    def to_bytes(self) -> bytes:
        """The canonical encoding of the signed entry.

        Raises:
            UsageError: the entry is not signed yet.
        """
        if self._wire is not None:
            return self._wire.data
        if not self.sig:
            raise UsageError("an unsigned entry has no wire form")
        full = self.header_map()
        full["body"] = self.body
        full["sig"] = self.sig
        return encoding.encode(full)

    def _field_count(self) -> int:
        return 11 if self.nonce is not None else 10

    def _cut(self, data: bytes) -> _Wire | None:
        """Where ``seq``, ``sig`` and ``body`` end in ``data``, this entry's canonical
        encoding (:func:`encoding.decode` takes no other form).

        A canonical map is its head and then its pairs in key order, each pair encoded
        on its own. In that order (SPEC.md 2) an entry's keys are ``v``, ``seq``,
        ``sig``, ``body``, then every other header field; so the signed map and the
        header are the received pairs without ``sig`` (and ``body``) under a new map
        head: byte for byte what encoding those fields again gives.
        """
        # The map head, then "v": 1, then "seq" and its value.
        seq_end = 1 + len(_V_PAIR) + len(_SEQ_KEY) + _head_size(self.seq)
        sig_end = seq_end + len(_SIG_KEY) + _head_size(SIGNATURE_BYTES) + SIGNATURE_BYTES
        body_end = sig_end + len(_BODY_KEY) + _head_size(len(self.body)) + len(self.body)
        # A cheap confirmation of the layout that decoding already guarantees.
        if not (
            data[0] == _MAP_TYPE | self._field_count()
            and data.startswith(_V_PAIR_SEQ_KEY, 1)
            and data.startswith(_SIG_KEY, seq_end)
            and data.startswith(_BODY_KEY, sig_end)
            and data.startswith(_PREV_KEY, body_end)
        ):  # pragma: no cover - unreachable for canonical input
            return None
        return _Wire(data, seq_end, sig_end, body_end)

    @property
    def id(self) -> bytes:
        """BLAKE2b-256 of the encoded entry: what the next entry's ``prev`` names."""
        if self._id is not None:
            return self._id
        found = entry_id(self.to_bytes())
        if self._wire is not None:  # an entry built in memory may still be signed later
            object.__setattr__(self, "_id", found)
        return found

    @classmethod
    def from_bytes(cls, data: bytes) -> Entry:
        """Parse an encoded entry. Checks the shape only, never the signature.

        Raises:
            OversizedError: more than :data:`MAX_ENTRY_BYTES`, or a body over its limit.
            MalformedError: not the canonical encoding of an entry.
            UnsupportedVersionError: a ``v`` other than 1.
        """
        fields = encoding.decode_map(data, max_size=MAX_ENTRY_BYTES)
        entry = cls.from_map(fields)
        # The bytes are the entry's canonical encoding (decode refuses any other form):
        # keep them for its signature, header and id instead of encoding it again.
        object.__setattr__(entry, "_wire", entry._cut(bytes(data)))
        return entry

    @classmethod
    def from_map(cls, fields: Mapping[str, Any]) -> Entry:
        """Build an entry from its decoded map (see :meth:`from_bytes`)."""
        version = fields.get("v")
        if not isinstance(version, int) or isinstance(version, bool):
            raise MalformedError("entry has no integer v")
        if version != FORMAT_VERSION:
            raise UnsupportedVersionError(f"entry format version {version} is not supported")
        expected = _DATA_FIELDS if fields.get("type") == EntryType.DATA.value else _ROSTER_FIELDS
        if fields.keys() != expected:
            raise MalformedError("entry fields are not exactly those of SPEC section 4.1")
        try:
            entry_type = EntryType(fields["type"])
        except ValueError:
            raise MalformedError("unknown entry type") from None
        seen_raw = fields["seen"]
        if not isinstance(seen_raw, list):
            raise MalformedError("seen must be an array")
        if len(seen_raw) > MAX_SEEN:
            raise OversizedError(f"more than {MAX_SEEN} seen heads")
        seen = []
        for item in seen_raw:
            if not isinstance(item, list) or len(item) != 3:
                raise MalformedError("a seen head is [device, seq, id]")
            seen.append(SeenHead(device=item[0], seq=item[1], id=item[2]))
        sig = fields["sig"]
        if not isinstance(sig, bytes) or len(sig) != SIGNATURE_BYTES:
            raise MalformedError(f"a signature is {SIGNATURE_BYTES} bytes")
        return cls(
            v=version,
            type=entry_type,
            space=fields["space"],
            device=fields["device"],
            seq=fields["seq"],
            prev=fields["prev"],
            epoch=fields["epoch"],
            seen=tuple(seen),
            nonce=fields.get("nonce"),
            body=fields["body"],
            sig=sig,
        )


#: The fields of a roster entry and of a data entry (SPEC.md 4.1).
_ROSTER_FIELDS = frozenset(
    {"v", "type", "space", "device", "seq", "prev", "epoch", "seen", "body", "sig"}
)
_DATA_FIELDS = _ROSTER_FIELDS | {"nonce"}

# Encoded keys of an entry's map that come first in canonical order (SPEC.md 2, 4.1).
_V_PAIR = b"\x61v\x01"  # "v": 1
_SEQ_KEY = b"\x63seq"
_V_PAIR_SEQ_KEY = _V_PAIR + _SEQ_KEY
_SIG_KEY = b"\x63sig"
_BODY_KEY = b"\x64body"
_PREV_KEY = b"\x64prev"
#: CBOR major type 5 (map) in the first byte of a head.
_MAP_TYPE = 0xA0


def _map_head(count: int) -> bytes:
    """The one-byte head of a map of ``count`` pairs (fewer than 24)."""
    return bytes((_MAP_TYPE | count,))


def _head_size(argument: int) -> int:
    """Bytes in the shortest CBOR head (type and argument) for ``argument`` >= 0."""
    if argument < 24:
        return 1
    if argument <= 0xFF:
        return 2
    if argument <= 0xFFFF:
        return 3
    if argument <= 0xFFFF_FFFF:
        return 5
    return 9


def entry_id(encoded: bytes) -> bytes:
    """The id of an encoded entry (SPEC.md section 4.2)."""
    return blake2b(encoded, person=Personal.ENTRY_ID)


def _check_uint(value: object, name: str, *, minimum: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise MalformedError(f"{name} must be an integer >= {minimum}")
    if value > encoding.INT_MAX:
        raise MalformedError(f"{name} is too large")


def _check_hash(value: object, name: str) -> None:
    if not isinstance(value, bytes) or len(value) != HASH_BYTES:
        raise MalformedError(f"{name} must be a {HASH_BYTES}-byte hash")


# -- padding (SPEC.md section 4.4) --------------------------------------------------


def bucket_size(plaintext_length: int) -> int:
    """The padded size for a plaintext: the smallest power of two, at least 256,
    that is larger than the plaintext.

    Raises:
        OversizedError: the plaintext is longer than :data:`MAX_PLAINTEXT`.
    """
    if plaintext_length > MAX_PLAINTEXT:
        raise OversizedError(f"a plaintext is at most {MAX_PLAINTEXT} bytes")
    size = MIN_BUCKET
    while size <= plaintext_length:
        size *= 2
    return size


def pad(plaintext: bytes) -> bytes:
    """ISO/IEC 7816-4 padding to the plaintext's bucket (libsodium ``sodium_pad``)."""
    return bytes(sodium.sodium_pad(plaintext, bucket_size(len(plaintext))))


def unpad(padded: bytes) -> bytes:
    """Undo :func:`pad`, refusing any padding ``pad`` would not have produced.

    Raises:
        BadPaddingError: wrong bucket size, missing 0x80 marker, or a larger bucket
            than the plaintext needs.
    """
    size = len(padded)
    if size < MIN_BUCKET or size > MAX_BUCKET or size & (size - 1):
        raise BadPaddingError("padded length is not a bucket size")
    try:
        plaintext = bytes(sodium.sodium_unpad(padded, size))
    except (nacl.exceptions.CryptoError, ValueError):
        raise BadPaddingError("padding is not ISO/IEC 7816-4") from None
    if bucket_size(len(plaintext)) != size:
        raise BadPaddingError("plaintext padded to a larger bucket than it needs")
    return plaintext


# -- seal and open -------------------------------------------------------------------


def _sign(unsigned: Entry, device_key: DeviceKey) -> Entry:
    if unsigned.device != device_key.public:
        raise UsageError("the entry's device is not the signing key")
    sig = device_key.sign(unsigned.signing_bytes())
    return Entry(
        type=unsigned.type,
        space=unsigned.space,
        device=unsigned.device,
        seq=unsigned.seq,
        prev=unsigned.prev,
        epoch=unsigned.epoch,
        seen=unsigned.seen,
        nonce=unsigned.nonce,
        body=unsigned.body,
        sig=sig,
    )


def seal(
    *,
    device_key: DeviceKey,
    space: bytes,
    seq: int,
    prev: bytes | None,
    epoch: int,
    epoch_key: bytes,
    plaintext: bytes,
    seen: tuple[SeenHead, ...] = (),
    nonce: bytes | None = None,
) -> Entry:
    """Pad, encrypt, chain and sign a data entry.

    ``nonce`` is random unless given (known-answer tests only).

    Raises:
        OversizedError: ``plaintext`` is longer than :data:`MAX_PLAINTEXT`.
        UsageError: wrong key or nonce size.
    """
    if nonce is None:
        nonce = random_bytes(NONCE_BYTES)
    if len(nonce) != NONCE_BYTES:
        raise UsageError(f"a nonce is {NONCE_BYTES} bytes")
    padded = pad(plaintext)
    header_only = Entry(
        type=EntryType.DATA,
        space=space,
        device=device_key.public,
        seq=seq,
        prev=prev,
        epoch=epoch,
        seen=seen,
        nonce=nonce,
        body=b"\x00" * (len(padded) + AEAD_TAG_BYTES),
    )
    ciphertext = bytes(
        sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(
            padded, header_only.header_bytes(), nonce, content_key(epoch_key, space, epoch)
        )
    )
    unsigned = Entry(
        type=EntryType.DATA,
        space=space,
        device=device_key.public,
        seq=seq,
        prev=prev,
        epoch=epoch,
        seen=seen,
        nonce=nonce,
        body=ciphertext,
    )
    return _sign(unsigned, device_key)


def seal_roster(
    *,
    device_key: DeviceKey,
    space: bytes,
    seq: int,
    prev: bytes | None,
    epoch: int,
    record: bytes,
    seen: tuple[SeenHead, ...] = (),
) -> Entry:
    """Chain and sign a roster entry; ``record`` is a canonical roster record (SPEC 5).

    Raises:
        OversizedError: the record is above :data:`MAX_ROSTER_BODY`.
    """
    unsigned = Entry(
        type=EntryType.ROSTER,
        space=space,
        device=device_key.public,
        seq=seq,
        prev=prev,
        epoch=epoch,
        seen=seen,
        body=record,
    )
    return _sign(unsigned, device_key)


def verify_entry(entry: Entry, *, space: bytes, devices: Collection[bytes]) -> None:
    """Check an entry's space, author and signature (no chain, no decryption).

    Raises:
        WrongSpaceError: the entry belongs to another space.
        UnknownDeviceError: its author is not in ``devices``.
        BadSignatureError: the signature does not verify.
    """
    if entry.space != space:
        raise WrongSpaceError("the entry belongs to another space")
    if entry.device not in devices:
        raise UnknownDeviceError("the entry's device is not in the roster")
    verify_signature(entry.device, entry.signing_bytes(), entry.sig)


def check_link(entry: Entry, prev_id: bytes | None) -> None:
    """Check that ``entry`` follows the entry whose id is ``prev_id``.

    ``prev_id`` is None for the first entry of a feed.

    Raises:
        BrokenChainError: ``prev`` does not name the previous entry.
    """
    if entry.prev != prev_id:
        raise BrokenChainError(f"entry {entry.seq} does not follow the feed's previous entry")


def decrypt(entry: Entry, epoch_key: bytes) -> bytes:
    """Decrypt and unpad a data entry's body. No signature check: use :func:`open`.

    Raises:
        UsageError: ``entry`` is a roster entry.
        DecryptError: the AEAD tag does not verify under this key and header.
        BadPaddingError: the plaintext is not padded to its bucket.
    """
    if entry.type is not EntryType.DATA or entry.nonce is None:
        raise UsageError("only data entries are encrypted")
    try:
        padded = sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(
            entry.body,
            entry.header_bytes(),
            entry.nonce,
            content_key(epoch_key, entry.space, entry.epoch),
        )
    except (nacl.exceptions.CryptoError, ValueError):
        raise DecryptError("the ciphertext does not decrypt under this epoch key") from None
    return unpad(bytes(padded))


def open(
    entry: Entry,
    *,
    space: bytes,
    devices: Collection[bytes],
    prev_id: bytes | None,
    epoch_keys: Mapping[int, bytes],
    min_epoch: int = 0,
) -> bytes:
    """Verify a data entry fully, then decrypt and unpad it.

    ``prev_id`` is the id of the feed's previous entry (None for seq 1);
    ``min_epoch`` is the epoch of the feed's previous entry, since epochs never go back.

    Raises:
        WrongSpaceError, UnknownDeviceError, BadSignatureError: see :func:`verify_entry`.
        BrokenChainError: see :func:`check_link`.
        WrongEpochError: the epoch is older than ``min_epoch`` or its key is unknown.
        DecryptError, BadPaddingError: see :func:`decrypt`.
    """
    verify_entry(entry, space=space, devices=devices)
    check_link(entry, prev_id)
    if entry.type is not EntryType.DATA:
        raise UsageError("open() is for data entries; roster entries are read in clear")
    if entry.epoch < min_epoch:
        raise WrongEpochError("the entry goes back to an older epoch")
    epoch_key = epoch_keys.get(entry.epoch)
    if epoch_key is None:
        raise WrongEpochError(f"no key is known for epoch {entry.epoch}")
    return decrypt(entry, epoch_key)
