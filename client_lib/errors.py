"""Errors of the client library that are not protocol errors.

Bad input from elsewhere (a relay, a partner's device, a file) is reported with the
protocol's own tree (:mod:`protocol.errors`); a replica never raises those from
``ingest``: it turns them into events. What is raised here concerns this device::

    ClientError
    ├── ProfileError
    │   ├── ProfileExistsError        a profile of that name is already there
    │   └── NoSuchProfileError        no profile of that name
    ├── KeystoreError
    │   ├── WrongPassphrase           the passphrase does not open the keystore
    │   ├── KeystoreCorruptError      the keystore file is damaged or not a keystore
    │   └── NoEpochKeyError           this device holds no key for a space's epoch
    ├── StoreError
    │   ├── StoreCorruptError         the local database cannot be read
    │   └── SchemaVersionError        the local database is from another schema version
    ├── NoSuchSpaceError              this device is not in that space
    ├── NoSuchRecordError             no item, repair or step with that id
    └── NotAllowedError               an action only someone else may take
                                      (resume another's pause, close another's repair)

Each error carries a stable :class:`ClientErrorCode` so a front end can choose calm
wording without matching on message text.
"""

from __future__ import annotations

from enum import StrEnum


class ClientErrorCode(StrEnum):
    """Stable codes of local errors (never sent on the wire)."""

    PROFILE_EXISTS = "profile_exists"
    NO_SUCH_PROFILE = "no_such_profile"
    WRONG_PASSPHRASE = "wrong_passphrase"  # noqa: S105 - an error code, not a secret
    KEYSTORE_CORRUPT = "keystore_corrupt"
    NO_EPOCH_KEY = "no_epoch_key"
    STORE_CORRUPT = "store_corrupt"
    SCHEMA_VERSION = "schema_version"
    NO_SUCH_SPACE = "no_such_space"
    NO_SUCH_RECORD = "no_such_record"
    NOT_ALLOWED = "not_allowed"


class ClientError(Exception):
    """Base of every local error of the client library."""

    code: ClientErrorCode = ClientErrorCode.STORE_CORRUPT

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return f"{self.message} [{self.code.value}]"


class ProfileError(ClientError):
    code = ClientErrorCode.NO_SUCH_PROFILE


class ProfileExistsError(ProfileError):
    code = ClientErrorCode.PROFILE_EXISTS


class NoSuchProfileError(ProfileError):
    code = ClientErrorCode.NO_SUCH_PROFILE


class KeystoreError(ClientError):
    code = ClientErrorCode.KEYSTORE_CORRUPT


class WrongPassphrase(KeystoreError):
    """The passphrase does not open this keystore. Nothing was changed."""

    code = ClientErrorCode.WRONG_PASSPHRASE


class KeystoreCorruptError(KeystoreError):
    code = ClientErrorCode.KEYSTORE_CORRUPT


class NoEpochKeyError(KeystoreError):
    code = ClientErrorCode.NO_EPOCH_KEY


class StoreError(ClientError):
    code = ClientErrorCode.STORE_CORRUPT


class StoreCorruptError(StoreError):
    code = ClientErrorCode.STORE_CORRUPT


class SchemaVersionError(StoreError):
    code = ClientErrorCode.SCHEMA_VERSION


class NoSuchSpaceError(ClientError):
    code = ClientErrorCode.NO_SUCH_SPACE


class NoSuchRecordError(ClientError):
    code = ClientErrorCode.NO_SUCH_RECORD


class NotAllowedError(ClientError):
    code = ClientErrorCode.NOT_ALLOWED
