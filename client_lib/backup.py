"""Encrypted backups of one profile (``accord export`` / ``accord import``).

A backup holds the profile's files: the keystore (still sealed by its own passphrase,
if it has one), a consistent copy of the local store, and the front end's settings.
The whole is sealed again under the backup's own passphrase: Argon2id
(``nacl.pwhash.argon2id``) derives a key for ``nacl.secret.SecretBox``.

File format (canonical CBOR map)::

    {"format": "accord-backup", "v": 1,
     "kdf": {"alg": "argon2id13", "salt": bytes16, "ops": int, "mem": int},
     "box": secretbox(enc({"files": {name: bytes}}))}

Errors: :class:`BackupError` for an unreadable file, :class:`WrongPassphrase` for a
passphrase that does not open it, :class:`ProfileExistsError` when restoring over an
existing profile. Nothing is written unless the whole backup opened.
"""

from __future__ import annotations

import sqlite3
import tempfile
from pathlib import Path

import nacl.exceptions
import nacl.pwhash
import nacl.secret
import nacl.utils
from nacl.pwhash import argon2id

from client_lib.errors import ClientError, KeystoreCorruptError, ProfileExistsError, WrongPassphrase
from client_lib.paths import ProfilePaths, create_profile_dir, profile_paths
from protocol import encoding
from protocol.errors import AccordError

FORMAT = "accord-backup"
VERSION = 1
KDF_ALG = "argon2id13"
#: Files of a profile that a backup carries, besides the store.
PLAIN_FILES = ("keystore.accord", "cli.json")
STORE_FILE = "store.sqlite3"
MAX_BACKUP_BYTES = 1024 * 1024 * 1024


class BackupError(KeystoreCorruptError):
    """The file is not a backup this version can read."""


def _derive(passphrase: str, salt: bytes, ops: int, mem: int) -> bytes:
    return bytes(
        argon2id.kdf(
            nacl.secret.SecretBox.KEY_SIZE,
            passphrase.encode("utf-8"),
            salt,
            opslimit=ops,
            memlimit=mem,
        )
    )


def _copy_store(path: Path) -> bytes:
    """A consistent copy of a SQLite store, even while it is in WAL mode."""
    if not path.exists():
        return b""
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "copy.sqlite3"
        source = sqlite3.connect(path)
        try:
            dest = sqlite3.connect(target)
            try:
                source.backup(dest)
            finally:
                dest.close()
        finally:
            source.close()
        return target.read_bytes()


def export_profile(
    paths: ProfilePaths,
    target: Path,
    *,
    passphrase: str,
    ops: int = argon2id.OPSLIMIT_MODERATE,
    mem: int = argon2id.MEMLIMIT_MODERATE,
) -> int:
    """Write an encrypted backup of a profile to ``target``; returns its size in bytes.

    Raises:
        ValueError: an empty passphrase.
        OSError: the file cannot be written.
    """
    if not passphrase:
        raise ValueError("a backup needs a passphrase")
    files: dict[str, bytes] = {}
    for name in PLAIN_FILES:
        path = paths.directory / name
        if path.exists():
            files[name] = path.read_bytes()
    files[STORE_FILE] = _copy_store(paths.store)
    salt = nacl.utils.random(argon2id.SALTBYTES)
    key = _derive(passphrase, salt, ops, mem)
    box = nacl.secret.SecretBox(key).encrypt(encoding.encode({"files": files}))
    data = encoding.encode(
        {
            "format": FORMAT,
            "v": VERSION,
            "kdf": {"alg": KDF_ALG, "salt": bytes(salt), "ops": ops, "mem": mem},
            "box": bytes(box),
        }
    )
    partial = target.with_name(target.name + ".partial")
    partial.write_bytes(data)
    partial.replace(target)
    return len(data)


def read_backup(source: Path, *, passphrase: str) -> dict[str, bytes]:
    """Open a backup and return its files.

    Raises:
        BackupError: not a backup, or damaged.
        WrongPassphrase: the passphrase does not open it.
    """
    try:
        outer = encoding.decode_map(source.read_bytes(), max_size=MAX_BACKUP_BYTES)
    except (AccordError, OSError):
        raise BackupError(f"{source.name} is not an Accord backup") from None
    kdf = outer.get("kdf")
    box = outer.get("box")
    if outer.get("format") != FORMAT or outer.get("v") != VERSION:
        raise BackupError(f"{source.name} is not a backup this version can read")
    if not isinstance(kdf, dict) or kdf.get("alg") != KDF_ALG or not isinstance(box, bytes):
        raise BackupError("the backup's settings are unreadable")
    salt, ops, mem = kdf.get("salt"), kdf.get("ops"), kdf.get("mem")
    if not isinstance(salt, bytes) or not isinstance(ops, int) or not isinstance(mem, int):
        raise BackupError("the backup's settings are unreadable")
    if not (argon2id.OPSLIMIT_MIN <= ops <= argon2id.OPSLIMIT_MAX) or not (
        argon2id.MEMLIMIT_MIN <= mem <= argon2id.MEMLIMIT_MAX
    ):
        raise BackupError("the backup's settings are out of range")
    try:
        inner = nacl.secret.SecretBox(_derive(passphrase, salt, ops, mem)).decrypt(box)
    except (nacl.exceptions.CryptoError, ValueError):
        raise WrongPassphrase("that passphrase does not open this backup") from None
    try:
        content = encoding.decode_map(bytes(inner), max_size=MAX_BACKUP_BYTES)
    except AccordError:
        raise BackupError("the backup's content is damaged") from None
    files = content.get("files")
    if not isinstance(files, dict) or not all(isinstance(v, bytes) for v in files.values()):
        raise BackupError("the backup's content is damaged")
    allowed = {*PLAIN_FILES, STORE_FILE}
    if not set(files) <= allowed or "keystore.accord" not in files:
        raise BackupError("the backup holds unexpected files")
    return dict(files)


def import_profile(
    source: Path, profile: str, *, passphrase: str, base: Path | None = None
) -> ProfilePaths:
    """Restore a backup into a new profile.

    Raises:
        BackupError, WrongPassphrase: see :func:`read_backup`.
        ProfileExistsError: the profile exists already (nothing is overwritten).
    """
    files = read_backup(source, passphrase=passphrase)
    if profile_paths(profile, base=base).exists():
        raise ProfileExistsError(f"the profile {profile!r} exists already")
    paths = create_profile_dir(profile, base=base)
    for name, data in files.items():
        if data or name != STORE_FILE:
            (paths.directory / name).write_bytes(data)
    return paths


__all__ = ["BackupError", "ClientError", "export_profile", "import_profile", "read_backup"]
