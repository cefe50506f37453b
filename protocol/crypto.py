"""Crypto helpers: identities, hashes and key derivations (SPEC.md section 3).

Every primitive comes from libsodium through PyNaCl. These are pure functions:
where randomness is needed it is an optional parameter, so known-answer tests
need no patching. Sizes come from the library's constants.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import nacl.bindings as sodium
import nacl.exceptions
import nacl.signing
import nacl.utils

from protocol.errors import BadSignatureError, MalformedError, UsageError

PUBLIC_KEY_BYTES: int = sodium.crypto_sign_PUBLICKEYBYTES
SEED_BYTES: int = sodium.crypto_sign_SEEDBYTES
SIGNATURE_BYTES: int = sodium.crypto_sign_BYTES
HASH_BYTES = 32  # BLAKE2b-256 for ids and chain links
KEY_BYTES: int = sodium.crypto_aead_xchacha20poly1305_ietf_KEYBYTES
NONCE_BYTES: int = sodium.crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
AEAD_TAG_BYTES: int = sodium.crypto_aead_xchacha20poly1305_ietf_ABYTES
SPACE_ID_BYTES = 16
MEMBER_ID_BYTES = 16
PERSONAL_BYTES: int = sodium.crypto_generichash_PERSONALBYTES


class Personal:
    """BLAKE2b personalisation strings (SPEC.md section 3.2).

    Each is ASCII, at most 16 bytes, right-padded with zero bytes to 16.
    """

    ENTRY_ID = b"accord:entry-id"
    CONTENT_KEY = b"accord:content"
    MEMBER_ID = b"accord:member-id"
    FINGERPRINT = b"accord:fingerpr"
    SAFETY_NUMBER = b"accord:safety-no"
    VERSION_ID = b"accord:version"
    KEY_ID = b"accord:key-id"


class SigContext:
    """Prefixes of every Ed25519-signed message (SPEC.md section 3.3)."""

    ENTRY = b"accord/entry/v1\x00"
    JOIN = b"accord/join/v1\x00"
    KEY_ENVELOPE = b"accord/key-envelope/v1\x00"
    AUTH = b"accord/auth/v1\x00"
    CREATE_SPACE = b"accord/create-space/v1\x00"


def blake2b(data: bytes, *, person: bytes, size: int = HASH_BYTES, key: bytes = b"") -> bytes:
    """BLAKE2b of ``data`` with a personalisation string and an optional key.

    Raises:
        UsageError: ``person`` is longer than 16 bytes.
    """
    if len(person) > PERSONAL_BYTES:
        raise UsageError("personalisation strings are at most 16 bytes")
    padded = person.ljust(PERSONAL_BYTES, b"\x00")
    return bytes(
        sodium.crypto_generichash_blake2b_salt_personal(
            data, digest_size=size, key=key, person=padded
        )
    )


def random_bytes(size: int) -> bytes:
    """``size`` bytes from libsodium's CSPRNG."""
    return bytes(nacl.utils.random(size))


@dataclass(frozen=True, slots=True)
class DeviceKey:
    """A device's Ed25519 key pair; the X25519 keys are derived from it."""

    seed: bytes

    def __post_init__(self) -> None:
        if len(self.seed) != SEED_BYTES:
            raise UsageError(f"a device seed is {SEED_BYTES} bytes")

    @classmethod
    def generate(cls, seed: bytes | None = None) -> DeviceKey:
        """A new device key, from ``seed`` when given (tests), else random."""
        return cls(seed if seed is not None else random_bytes(SEED_BYTES))

    @property
    def _signing(self) -> nacl.signing.SigningKey:
        return nacl.signing.SigningKey(self.seed)

    @property
    def public(self) -> bytes:
        """The Ed25519 public key: the device id everywhere in Accord."""
        return bytes(self._signing.verify_key)

    def sign(self, message: bytes) -> bytes:
        """A detached Ed25519 signature of ``message``."""
        return bytes(self._signing.sign(message).signature)

    @property
    def x25519_secret(self) -> bytes:
        """The X25519 secret key derived from the Ed25519 key (libsodium's conversion)."""
        sk = sodium.crypto_sign_seed_keypair(self.seed)[1]
        return bytes(sodium.crypto_sign_ed25519_sk_to_curve25519(sk))

    @property
    def x25519_public(self) -> bytes:
        return x25519_public_of(self.public)

    def __repr__(self) -> str:  # never print the seed
        return f"DeviceKey(public={self.public.hex()[:16]}...)"


def x25519_public_of(device: bytes) -> bytes:
    """The X25519 public key of an Ed25519 device key.

    Raises:
        MalformedError: ``device`` is not a valid Ed25519 public key.
    """
    check_device_id(device)
    try:
        return bytes(sodium.crypto_sign_ed25519_pk_to_curve25519(device))
    except (nacl.exceptions.CryptoError, ValueError, TypeError):
        raise MalformedError("not a valid Ed25519 public key") from None


def check_device_id(device: object) -> bytes:
    """Check that ``device`` has the shape of a device public key.

    Raises:
        MalformedError: it is not 32 bytes.
    """
    if not isinstance(device, bytes) or len(device) != PUBLIC_KEY_BYTES:
        raise MalformedError(f"a device id is {PUBLIC_KEY_BYTES} bytes")
    return device


def verify_signature(device: bytes, message: bytes, signature: bytes) -> None:
    """Verify a detached Ed25519 signature by ``device``.

    Raises:
        BadSignatureError: the signature does not verify (or the key is not a valid point).
    """
    if len(signature) != SIGNATURE_BYTES or len(device) != PUBLIC_KEY_BYTES:
        raise BadSignatureError("signature or key has the wrong length")
    if not isinstance(device, bytes):
        raise UsageError("a device key is bytes")
    try:
        # What nacl.signing.VerifyKey.verify does, without building a key object.
        sodium.crypto_sign_open(signature + message, device)
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.CryptoError, ValueError):
        raise BadSignatureError("the signature does not verify") from None


def member_id_of(first_device: bytes) -> bytes:
    """A member's id: BLAKE2b-128 of their first device's public key."""
    check_device_id(first_device)
    return blake2b(first_device, person=Personal.MEMBER_ID, size=MEMBER_ID_BYTES)


def fingerprint(device: bytes) -> str:
    """A short human-comparable fingerprint of a device key: 8 groups of 4 hex digits."""
    check_device_id(device)
    digest = blake2b(device, person=Personal.FINGERPRINT, size=16).hex()
    return " ".join(digest[i : i + 4] for i in range(0, 32, 4))


def safety_number(keys_a: list[bytes], keys_b: list[bytes]) -> str:
    """A 60-digit safety number over two members' device keys (SPEC.md section 3.5).

    The same for both sides: the two halves are sorted before hashing.
    """
    halves = []
    for keys in (keys_a, keys_b):
        for key in keys:
            check_device_id(key)
        halves.append(b"".join(sorted(keys)))
    digits = []
    for half in sorted(halves):
        digest = blake2b(half, person=Personal.SAFETY_NUMBER, size=30)
        for i in range(0, 30, 5):
            chunk = int.from_bytes(digest[i : i + 5], "big") % 100000
            digits.append(f"{chunk:05d}")
    return " ".join(digits)


def content_key(epoch_key: bytes, space: bytes, epoch: int) -> bytes:
    """The AEAD key of one space and epoch (SPEC.md section 4.3).

    Every entry of an epoch uses the same key, so the last few derived are kept
    (keyed by all three inputs); :func:`forget_content_keys` drops them.
    """
    if len(epoch_key) != KEY_BYTES:
        raise UsageError(f"an epoch key is {KEY_BYTES} bytes")
    return _derive_content_key(epoch_key, space, epoch)


@functools.lru_cache(maxsize=64)
def _derive_content_key(epoch_key: bytes, space: bytes, epoch: int) -> bytes:
    return blake2b(space + epoch.to_bytes(8, "big"), person=Personal.CONTENT_KEY, key=epoch_key)


def forget_content_keys() -> None:
    """Drop the content keys :func:`content_key` keeps (e.g. when a profile is wiped)."""
    _derive_content_key.cache_clear()


def key_id(epoch_key: bytes) -> bytes:
    """A public, non-secret 8-byte name of an epoch key, for envelopes (SPEC.md 6)."""
    return blake2b(b"", person=Personal.KEY_ID, size=8, key=epoch_key)
