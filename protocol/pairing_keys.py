"""The cryptography of pairing: transcripts, session keys, the SAS and sealed boxes.

Theory of operation (SPEC.md sections 11.5 and 11.7):

* The key agreement gives a 32-byte **root**. In QR mode it is BLAKE2b keyed with the
  invite's secret ``s`` over ``X25519(e_J, k) || th``; in code mode BLAKE2b keyed with the
  SPAKE2 key over ``th``. ``th`` is the hash of the transcript, a canonical CBOR map that
  holds both public keys (or both SPAKE2 messages) and the channel.
* From the root come the joiner's MAC, one AEAD key per direction and the six-digit SAS,
  each BLAKE2b keyed with the root over ``th`` under its own personalisation string.
* A sealed box is XChaCha20-Poly1305-IETF with the box's number in its direction as the
  nonce and the encoded ``{"type": "sealed", "seq": n}`` as associated data. Plaintexts
  are padded to a multiple of 256 bytes.

Every function is pure; the only randomness (SPAKE2's scalar) can be passed in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import nacl.bindings as sodium
import nacl.exceptions
import spake2
import spake2.ed25519_basic

from protocol import encoding
from protocol.crypto import KEY_BYTES, NONCE_BYTES, blake2b, random_bytes
from protocol.errors import (
    BadPaddingError,
    DecryptError,
    MalformedError,
    PairingFailedError,
    UnexpectedMessageError,
    UsageError,
)
from protocol.pairing_codes import X25519_KEY_BYTES, Purpose
from protocol.pairing_messages import (
    MAC_BYTES,
    MAX_PADDED_PLAINTEXT,
    PAD_BLOCK,
    PAIRING_VERSION,
    InnerMessage,
    JoinMode,
    Sealed,
    decode_inner,
    encode_message,
)

#: Digits of the short authentication string.
SAS_DIGITS = 6
#: SPAKE2 identities (SPEC.md section 11.5): the inviter is side A, the joiner side B.
SPAKE_ID_INVITER = b"accord:inviter"
SPAKE_ID_JOINER = b"accord:joiner"
SPAKE_SCALAR_BYTES = 32


class PairPersonal:
    """BLAKE2b personalisation strings of pairing (SPEC.md section 11.5)."""

    TRANSCRIPT = b"accord:pair-tx"
    QR_ROOT = b"accord:pair-qr"
    CODE_ROOT = b"accord:pair-code"
    MAC = b"accord:pair-macj"
    INVITER_TO_JOINER = b"accord:pair-i2j"
    JOINER_TO_INVITER = b"accord:pair-j2i"
    SAS = b"accord:pair-sas"


# -- the key schedule (SPEC.md section 11.5) --------------------------------------------------


def x25519_public(secret: bytes) -> bytes:
    """The X25519 public key of a 32-byte secret.

    Raises:
        UsageError: ``secret`` is not 32 bytes.
    """
    if not isinstance(secret, bytes) or len(secret) != X25519_KEY_BYTES:
        raise UsageError(f"an X25519 secret is {X25519_KEY_BYTES} bytes")
    return bytes(sodium.crypto_scalarmult_base(secret))


def x25519_shared(secret: bytes, public: bytes) -> bytes:
    """X25519 of our secret and their public key.

    Raises:
        PairingFailedError: their key is of low order (the result would be all zeros).
    """
    try:
        shared = bytes(sodium.crypto_scalarmult(secret, public))
    except (nacl.exceptions.RuntimeError, nacl.exceptions.CryptoError, ValueError):
        raise PairingFailedError("the peer's X25519 key is not usable") from None
    if not any(shared):  # pragma: no cover - libsodium refuses this case itself
        raise PairingFailedError("the peer's X25519 key is not usable")
    return shared


def qr_transcript(
    *,
    relay: str,
    channel: str,
    expires: int,
    purpose: Purpose,
    inviter_key: bytes,
    joiner_key: bytes,
) -> bytes:
    """The encoded transcript of a QR key agreement (SPEC.md section 11.5)."""
    return encoding.encode(
        {
            "v": PAIRING_VERSION,
            "mode": JoinMode.QR.value,
            "relay": relay,
            "channel": channel,
            "expires": expires,
            "purpose": purpose.value,
            "inviter_key": inviter_key,
            "joiner_key": joiner_key,
        }
    )


def code_transcript(
    *, channel: str, nameplate: str, pake_inviter: bytes, pake_joiner: bytes
) -> bytes:
    """The encoded transcript of a typed-code key agreement (SPEC.md section 11.5)."""
    return encoding.encode(
        {
            "v": PAIRING_VERSION,
            "mode": JoinMode.CODE.value,
            "channel": channel,
            "nameplate": nameplate,
            "pake_inviter": pake_inviter,
            "pake_joiner": pake_joiner,
        }
    )


def transcript_hash(transcript: bytes) -> bytes:
    return blake2b(transcript, person=PairPersonal.TRANSCRIPT)


def qr_root(*, shared: bytes, secret: bytes, transcript: bytes) -> bytes:
    """The QR session root: BLAKE2b keyed with ``s`` over the X25519 result and transcript."""
    return blake2b(shared + transcript_hash(transcript), person=PairPersonal.QR_ROOT, key=secret)


def code_root(*, spake_key: bytes, transcript: bytes) -> bytes:
    """The code session root: BLAKE2b keyed with the SPAKE2 key over the transcript."""
    return blake2b(transcript_hash(transcript), person=PairPersonal.CODE_ROOT, key=spake_key)


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionKeys:
    """Everything derived from a session root. Secret: never log it."""

    mac: bytes = field(repr=False)
    inviter_to_joiner: bytes = field(repr=False)
    joiner_to_inviter: bytes = field(repr=False)
    sas: str

    @classmethod
    def derive(cls, *, root: bytes, transcript: bytes) -> SessionKeys:
        th = transcript_hash(transcript)

        def sub(person: bytes, size: int = KEY_BYTES) -> bytes:
            return blake2b(th, person=person, key=root, size=size)

        number = int.from_bytes(sub(PairPersonal.SAS, 8), "big") % 10**SAS_DIGITS
        return cls(
            mac=sub(PairPersonal.MAC, MAC_BYTES),
            inviter_to_joiner=sub(PairPersonal.INVITER_TO_JOINER),
            joiner_to_inviter=sub(PairPersonal.JOINER_TO_INVITER),
            sas=f"{number:0{SAS_DIGITS}d}",
        )


def spake_entropy(scalar: bytes | None) -> Callable[[int], bytes]:
    """The ``entropy_f`` for SPAKE2: random, or one that yields exactly ``scalar``."""
    if scalar is None:
        return random_bytes
    if len(scalar) != SPAKE_SCALAR_BYTES:
        raise UsageError(f"a SPAKE2 scalar is {SPAKE_SCALAR_BYTES} bytes")

    def fixed(count: int) -> bytes:
        # python-spake2 draws 64 bytes and reduces them modulo the group order.
        return scalar.rjust(count, b"\x00")

    return fixed


def spake_finish(side: spake2.SPAKE2_A | spake2.SPAKE2_B, message: bytes) -> bytes:
    try:
        return bytes(side.finish(message))
    except (spake2.SPAKEError, spake2.ed25519_basic.NotOnCurve, ValueError, AssertionError):
        raise MalformedError("the SPAKE2 message is not a valid group element") from None


# -- sealed boxes (SPEC.md section 11.7) --------------------------------------------------------


def _nonce(seq: int) -> bytes:
    return seq.to_bytes(NONCE_BYTES, "big")


def seal(key: bytes, seq: int, message: InnerMessage) -> Sealed:
    """Pad and encrypt ``message`` as box number ``seq`` of one direction.

    Raises:
        OversizedError: the message is too large for one rendezvous message.
    """
    plaintext = encode_message(message)
    padded = bytes(sodium.sodium_pad(plaintext, PAD_BLOCK))
    header = Sealed(seq=seq, box=b"").header()
    box = sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(padded, header, _nonce(seq), key)
    return Sealed(seq=seq, box=bytes(box))


def open_sealed(key: bytes, sealed: Sealed, *, expected_seq: int) -> InnerMessage:
    """Decrypt, unpad and decode a sealed box.

    Raises:
        UnexpectedMessageError: ``seq`` is not the next one of its direction.
        DecryptError: the box does not open: tampered, or under another key.
        BadPaddingError: the plaintext is not padded as :func:`seal` pads.
        MalformedError, OversizedError: the plaintext is not a message that travels sealed.
    """
    if sealed.seq != expected_seq:
        raise UnexpectedMessageError(f"expected sealed message {expected_seq}, not {sealed.seq}")
    try:
        padded = bytes(
            sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(
                sealed.box, sealed.header(), _nonce(sealed.seq), key
            )
        )
    except (nacl.exceptions.CryptoError, ValueError, TypeError):
        raise DecryptError("a sealed pairing message does not open") from None
    if not 0 < len(padded) <= MAX_PADDED_PLAINTEXT or len(padded) % PAD_BLOCK:
        raise BadPaddingError("a sealed plaintext is padded to a multiple of 256 bytes")
    try:
        plaintext = bytes(sodium.sodium_unpad(padded, PAD_BLOCK))
    except (nacl.exceptions.CryptoError, ValueError):
        raise BadPaddingError("the padding of a sealed plaintext is not ISO/IEC 7816-4") from None
    if len(padded) != (len(plaintext) // PAD_BLOCK + 1) * PAD_BLOCK:
        raise BadPaddingError("a sealed plaintext is padded to more blocks than it needs")
    return decode_inner(plaintext)
