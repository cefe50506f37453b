"""The keystore: this device's secrets, encrypted at rest with a passphrase.

Theory of operation:

* The keystore holds the device seed, the member id, the display name, a random
  *store key* (which encrypts the document snapshots in the local store), and for
  every space this device is in: its kind, a local label, and its epoch keys.
* On disk it is one file of canonical CBOR (``keystore.accord``)::

      {"format": "accord-keystore", "v": 1, "protected": true,
       "kdf": {"alg": "argon2id13", "salt": bytes(16), "ops": uint, "mem": uint},
       "box": secretbox(nonce || ciphertext of the inner map)}

  The key of the secretbox is Argon2id (libsodium ``crypto_pwhash``) of the
  passphrase with the salt and limits written beside it. With ``protected`` false
  (the ``no_passphrase`` mode, for tests and demos) there is no ``kdf`` and the
  inner map is stored in clear under ``"plain"``: :attr:`Keystore.is_protected` is
  then False and front ends say so plainly.
* Every change rewrites the whole file atomically: write a temporary file in the
  same directory, fsync it, rename it over the old one, fsync the directory. A crash
  leaves either the old or the new keystore, never a mix.
* Limits: :data:`MODERATE` (libsodium's moderate Argon2id limits, about a second and
  256 MiB) is the default. :data:`FAST_FOR_TESTS` (the minimum limits) exists so test
  suites run quickly; it protects almost nothing and must not be used for real data.

Secrets never appear in ``repr`` or in error messages.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import nacl.exceptions
import nacl.pwhash.argon2id as argon2id
import nacl.secret

from client_lib.errors import KeystoreCorruptError, NoEpochKeyError, WrongPassphrase
from protocol import encoding
from protocol.crypto import KEY_BYTES, MEMBER_ID_BYTES, SPACE_ID_BYTES, DeviceKey, random_bytes
from protocol.errors import AccordError

FILE_FORMAT = "accord-keystore"
FILE_VERSION = 1
KDF_ALG = "argon2id13"
MAX_KEYSTORE_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class KdfLimits:
    """Argon2id work limits: ``ops`` passes over ``mem`` bytes of memory."""

    ops: int
    mem: int

    def __post_init__(self) -> None:
        if self.ops < argon2id.OPSLIMIT_MIN or self.mem < argon2id.MEMLIMIT_MIN:
            raise ValueError("Argon2id limits below libsodium's minimum")


#: The default: libsodium's moderate limits.
MODERATE = KdfLimits(ops=argon2id.OPSLIMIT_MODERATE, mem=argon2id.MEMLIMIT_MODERATE)
#: libsodium's interactive limits: quicker, for low-memory devices.
INTERACTIVE = KdfLimits(ops=argon2id.OPSLIMIT_INTERACTIVE, mem=argon2id.MEMLIMIT_INTERACTIVE)
#: The minimum limits. Test suites only: this is nearly no protection at all.
FAST_FOR_TESTS = KdfLimits(ops=argon2id.OPSLIMIT_MIN, mem=argon2id.MEMLIMIT_MIN)


class SpaceKind(StrEnum):
    """A relationship space, or one member's private space (journal, own check-ins)."""

    SHARED = "shared"
    PRIVATE = "private"


@dataclass(slots=True, kw_only=True)
class SpaceKeys:
    """What this device knows privately about one space."""

    space: bytes
    kind: SpaceKind
    label: str
    epoch_keys: dict[int, bytes] = field(default_factory=dict, repr=False)

    def to_map(self) -> dict[str, Any]:
        return {
            "space": self.space,
            "kind": self.kind.value,
            "label": self.label,
            "epochs": [[epoch, key] for epoch, key in sorted(self.epoch_keys.items())],
        }

    @classmethod
    def from_map(cls, fields: dict[str, Any]) -> SpaceKeys:
        space = fields["space"]
        if not isinstance(space, bytes) or len(space) != SPACE_ID_BYTES:
            raise KeystoreCorruptError("the keystore holds a malformed space id")
        keys: dict[int, bytes] = {}
        for epoch, key in fields["epochs"]:
            if not isinstance(epoch, int) or not isinstance(key, bytes) or len(key) != KEY_BYTES:
                raise KeystoreCorruptError("the keystore holds a malformed epoch key")
            keys[epoch] = key
        return cls(
            space=space, kind=SpaceKind(fields["kind"]), label=str(fields["label"]), epoch_keys=keys
        )


def _derive(passphrase: str, salt: bytes, limits: KdfLimits) -> bytes:
    return bytes(
        argon2id.kdf(
            nacl.secret.SecretBox.KEY_SIZE,
            passphrase.encode("utf-8"),
            salt,
            opslimit=limits.ops,
            memlimit=limits.mem,
        )
    )


def _write_atomically(path: Path, data: bytes) -> None:
    """Replace ``path`` by ``data`` so that a crash leaves the old or the new file."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class Keystore:
    """This device's secrets. Build with :meth:`create` or :meth:`open`; every setter saves."""

    def __init__(
        self,
        *,
        path: Path,
        content: dict[str, Any],
        box_key: bytes | None,
        salt: bytes | None,
        limits: KdfLimits | None,
    ) -> None:
        self._path = path
        self._box_key = box_key
        self._salt = salt
        self._limits = limits
        try:
            self._device_key = DeviceKey(content["device_seed"])
            self._member_id: bytes = content["member_id"]
            self._display_name: str = content["display_name"]
            self._store_key: bytes = content["store_key"]
            self._spaces = {keys.space: keys for keys in map(SpaceKeys.from_map, content["spaces"])}
        except (KeyError, TypeError, ValueError, AccordError):
            raise KeystoreCorruptError(
                "the keystore's content is not what this version writes"
            ) from None
        if len(self._member_id) != MEMBER_ID_BYTES or len(self._store_key) != KEY_BYTES:
            raise KeystoreCorruptError("the keystore holds a malformed member id or store key")

    # -- creating and opening ----------------------------------------------------------

    @classmethod
    def create(
        cls,
        path: Path,
        *,
        device_key: DeviceKey,
        member_id: bytes,
        display_name: str,
        passphrase: str | None = None,
        no_passphrase: bool = False,
        limits: KdfLimits = MODERATE,
    ) -> Keystore:
        """Create a new keystore file at ``path``.

        Exactly one of ``passphrase`` (non-empty) and ``no_passphrase=True`` is given.

        Raises:
            ValueError: both or neither of a passphrase and ``no_passphrase`` were given.
            FileExistsError: ``path`` already exists.
        """
        if no_passphrase == bool(passphrase):
            raise ValueError("give either a non-empty passphrase or no_passphrase=True")
        if path.exists():
            raise FileExistsError(f"{path} already exists")
        content = {
            "device_seed": device_key.seed,
            "member_id": member_id,
            "display_name": display_name,
            "store_key": random_bytes(KEY_BYTES),
            "spaces": [],
        }
        if passphrase:
            salt = random_bytes(argon2id.SALTBYTES)
            store = cls(
                path=path,
                content=content,
                box_key=_derive(passphrase, salt, limits),
                salt=salt,
                limits=limits,
            )
        else:
            store = cls(path=path, content=content, box_key=None, salt=None, limits=None)
        store.save()
        return store

    @classmethod
    def open(cls, path: Path, *, passphrase: str | None = None) -> Keystore:
        """Open the keystore at ``path``.

        ``passphrase`` is ignored for an unprotected keystore.

        Raises:
            FileNotFoundError: there is no file at ``path``.
            WrongPassphrase: the keystore is protected and the passphrase (or its
                absence) does not open it.
            KeystoreCorruptError: the file is damaged or not a keystore.
        """
        data = path.read_bytes()
        try:
            outer = encoding.decode_map(data, max_size=MAX_KEYSTORE_BYTES)
        except AccordError:
            raise KeystoreCorruptError(f"{path.name} is not a keystore file") from None
        if outer.get("format") != FILE_FORMAT or outer.get("v") != FILE_VERSION:
            raise KeystoreCorruptError(f"{path.name} is not a keystore this version can read")
        if not outer.get("protected"):
            inner = outer.get("plain")
            content = _decode_inner(inner)
            return cls(path=path, content=content, box_key=None, salt=None, limits=None)
        kdf = outer.get("kdf")
        box = outer.get("box")
        if not isinstance(kdf, dict) or kdf.get("alg") != KDF_ALG or not isinstance(box, bytes):
            raise KeystoreCorruptError("the keystore's key derivation settings are unreadable")
        try:
            salt = kdf["salt"]
            limits = KdfLimits(ops=kdf["ops"], mem=kdf["mem"])
        except (KeyError, TypeError, ValueError):
            raise KeystoreCorruptError(
                "the keystore's key derivation settings are unreadable"
            ) from None
        if not passphrase:
            raise WrongPassphrase("this keystore is protected by a passphrase")
        box_key = _derive(passphrase, salt, limits)
        try:
            inner = nacl.secret.SecretBox(box_key).decrypt(box)
        except nacl.exceptions.CryptoError:
            raise WrongPassphrase("the passphrase does not open this keystore") from None
        content = _decode_inner(bytes(inner))
        return cls(path=path, content=content, box_key=box_key, salt=salt, limits=limits)

    # -- saving ------------------------------------------------------------------------

    def _content(self) -> dict[str, Any]:
        return {
            "device_seed": self._device_key.seed,
            "member_id": self._member_id,
            "display_name": self._display_name,
            "store_key": self._store_key,
            "spaces": [keys.to_map() for _, keys in sorted(self._spaces.items())],
        }

    def save(self) -> None:
        """Write the keystore to disk atomically (every setter calls this)."""
        inner = encoding.encode(self._content())
        outer: dict[str, Any]
        if self._box_key is None:
            outer = {"format": FILE_FORMAT, "v": FILE_VERSION, "protected": False, "plain": inner}
        else:
            assert self._salt is not None and self._limits is not None
            box = bytes(nacl.secret.SecretBox(self._box_key).encrypt(inner))
            outer = {
                "format": FILE_FORMAT,
                "v": FILE_VERSION,
                "protected": True,
                "kdf": {
                    "alg": KDF_ALG,
                    "salt": self._salt,
                    "ops": self._limits.ops,
                    "mem": self._limits.mem,
                },
                "box": box,
            }
        _write_atomically(self._path, encoding.encode(outer))

    def change_passphrase(
        self,
        new_passphrase: str | None,
        *,
        no_passphrase: bool = False,
        limits: KdfLimits = MODERATE,
    ) -> None:
        """Re-encrypt under a new passphrase (or, with ``no_passphrase``, store unprotected).

        Raises:
            ValueError: both or neither of a passphrase and ``no_passphrase`` were given.
        """
        if no_passphrase == bool(new_passphrase):
            raise ValueError("give either a non-empty passphrase or no_passphrase=True")
        if new_passphrase:
            self._salt = random_bytes(argon2id.SALTBYTES)
            self._limits = limits
            self._box_key = _derive(new_passphrase, self._salt, limits)
        else:
            self._salt = self._limits = self._box_key = None
        self.save()

    # -- what it holds -----------------------------------------------------------------

    @property
    def path(self) -> Path:
        return self._path

    @property
    def is_protected(self) -> bool:
        """False in ``no_passphrase`` mode: front ends show this as a warning."""
        return self._box_key is not None

    @property
    def device_key(self) -> DeviceKey:
        return self._device_key

    @property
    def member_id(self) -> bytes:
        return self._member_id

    def set_member_id(self, member_id: bytes) -> None:
        """Set the member this device belongs to (self pairing joins an existing member)."""
        if len(member_id) != MEMBER_ID_BYTES:
            raise ValueError(f"a member id is {MEMBER_ID_BYTES} bytes")
        self._member_id = member_id
        self.save()

    @property
    def display_name(self) -> str:
        return self._display_name

    def set_display_name(self, name: str) -> None:
        self._display_name = name
        self.save()

    @property
    def store_key(self) -> bytes:
        """The key that encrypts this device's document snapshots at rest."""
        return self._store_key

    def spaces(self) -> list[SpaceKeys]:
        """Every space this device is in, by space id."""
        return [keys for _, keys in sorted(self._spaces.items())]

    def has_space(self, space: bytes) -> bool:
        return space in self._spaces

    def space(self, space: bytes) -> SpaceKeys:
        """The keys of one space.

        Raises:
            NoEpochKeyError: this device holds nothing for that space.
        """
        keys = self._spaces.get(space)
        if keys is None:
            raise NoEpochKeyError("this device holds no keys for that space")
        return keys

    def add_space(self, space: bytes, *, kind: SpaceKind, label: str) -> SpaceKeys:
        """Record a space this device joined or founded (idempotent for the same id)."""
        if len(space) != SPACE_ID_BYTES:
            raise ValueError(f"a space id is {SPACE_ID_BYTES} bytes")
        keys = self._spaces.get(space)
        if keys is None:
            keys = SpaceKeys(space=space, kind=kind, label=label)
            self._spaces[space] = keys
            self.save()
        return keys

    def set_label(self, space: bytes, label: str) -> None:
        self.space(space).label = label
        self.save()

    def add_epoch_key(self, space: bytes, epoch: int, key: bytes) -> bool:
        """Keep the key of one epoch of a space; returns False when it was already known.

        Raises:
            NoEpochKeyError: the space is not in the keystore.
            ValueError: the key has the wrong size, or differs from a key already kept
                for that epoch (an epoch never changes its key).
        """
        if len(key) != KEY_BYTES:
            raise ValueError(f"an epoch key is {KEY_BYTES} bytes")
        keys = self.space(space)
        known = keys.epoch_keys.get(epoch)
        if known is not None:
            if known != key:
                raise ValueError("a different key is already kept for that epoch")
            return False
        keys.epoch_keys[epoch] = key
        self.save()
        return True

    def replace_epoch_key(self, space: bytes, epoch: int, key: bytes) -> None:
        """Replace the key of an epoch: only when this device's own rotation lost to a
        concurrent one (SPEC.md 6.3) and the roster announced the other key.

        Raises:
            NoEpochKeyError: the space is not in the keystore.
            ValueError: the key has the wrong size.
        """
        if len(key) != KEY_BYTES:
            raise ValueError(f"an epoch key is {KEY_BYTES} bytes")
        self.space(space).epoch_keys[epoch] = key
        self.save()

    def epoch_keys(self, space: bytes) -> dict[int, bytes]:
        """A copy of the epoch keys of a space (empty if the space is unknown)."""
        keys = self._spaces.get(space)
        return dict(keys.epoch_keys) if keys else {}

    def remove_space(self, space: bytes) -> None:
        """Forget a space and its keys (leaving a space quietly)."""
        if self._spaces.pop(space, None) is not None:
            self.save()

    def __repr__(self) -> str:
        return f"Keystore(path={self._path!s}, protected={self.is_protected})"


def _decode_inner(inner: object) -> dict[str, Any]:
    if not isinstance(inner, bytes):
        raise KeystoreCorruptError("the keystore's content is missing")
    try:
        return encoding.decode_map(inner, max_size=MAX_KEYSTORE_BYTES)
    except AccordError:
        raise KeystoreCorruptError("the keystore's content is damaged") from None
