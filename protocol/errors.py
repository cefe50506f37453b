"""The one exception tree of Accord's protocol core.

Every error carries a stable ``code`` (an :class:`ErrorCode`), which is also the
``error.code`` string on the wire (SPEC.md section 10, "Error codes")::

    AccordError
    ├── UsageError                  local misuse of the API (a bug in the caller)
    └── ProtocolError               bad input from somewhere else (a peer, a relay, a file)
        ├── MalformedError          bytes that do not follow the grammar
        ├── UnsupportedVersionError a format version this code does not speak
        ├── OversizedError          larger than a documented limit
        ├── BadSignatureError       an Ed25519 signature does not verify
        ├── UnknownDeviceError      signed by a device the roster does not know
        ├── WrongSpaceError         an entry of another space
        ├── WrongEpochError         an epoch that is unknown, or older than the feed's last
        ├── BadPaddingError         padding that is not ISO/IEC 7816-4 to a bucket size
        ├── DecryptError            the AEAD tag does not verify
        ├── DeviceRemovedError      an entry by a device after its removal
        ├── RosterError             a roster record that breaks the roster rules
        ├── VersionIdMismatchError  a version whose id is not the hash of its content
        ├── NotAuthorError          a record written into another member's voice
        ├── FeedError               a feed that is not one clean chain
        │   ├── FeedGapError        a missing seq
        │   ├── BrokenChainError    ``prev`` does not name the previous entry
        │   └── ForkError           two different valid entries at one (device, seq)
        ├── ExpiredError            a pairing invite or session past its expiry
        ├── PairingFailedError      key confirmation failed: wrong code, or a man in the middle
        └── UnexpectedMessageError  a pairing message that is not legal in the current state

Local misuse and bad remote input are separate branches, so a front end can tell
"we have a bug" from "someone sent us something bad".
"""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    """Stable, machine-readable error codes (SPEC.md section 10)."""

    USAGE = "usage"  # local misuse; never sent on the wire by a correct peer
    MALFORMED = "malformed"  # SPEC 2: not canonical CBOR, wrong fields or types
    UNSUPPORTED_VERSION = "unsupported_version"  # SPEC 4.1: "v" is not 1
    OVERSIZED = "oversized"  # SPEC 4.4: above a size limit
    BAD_SIGNATURE = "bad_signature"  # SPEC 4.2
    UNKNOWN_DEVICE = "unknown_device"  # SPEC 5: not in the roster
    WRONG_SPACE = "wrong_space"  # SPEC 4.1: "space" differs from the expected one
    WRONG_EPOCH = "wrong_epoch"  # SPEC 6: epoch unknown or going backwards
    BAD_PADDING = "bad_padding"  # SPEC 4.4
    DECRYPT_FAILED = "decrypt_failed"  # SPEC 4.3
    DEVICE_REMOVED = "device_removed"  # SPEC 5.3
    ROSTER_INVALID = "roster_invalid"  # SPEC 5
    VERSION_ID_MISMATCH = "version_id_mismatch"  # SPEC 7.1
    NOT_AUTHOR = "not_author"  # SPEC 7: a write into another member's voice
    FEED_GAP = "feed_gap"  # SPEC 4.5
    BROKEN_CHAIN = "broken_chain"  # SPEC 4.5
    FORK = "fork"  # SPEC 4.5
    EXPIRED = "expired"  # SPEC 11: a pairing invite or session past its expiry
    PAIRING_FAILED = "pairing_failed"  # SPEC 11: key confirmation failed; the channel is burned
    UNEXPECTED_MESSAGE = "unexpected_message"  # SPEC 11: not legal in the pairing state


class AccordError(Exception):
    """Base of every error raised by the protocol core."""

    code: ErrorCode = ErrorCode.USAGE

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return f"{self.message} [{self.code.value}]"


class UsageError(AccordError):
    """The caller used the API wrongly (wrong key size, missing argument...)."""

    code = ErrorCode.USAGE


class ProtocolError(AccordError):
    """Input from elsewhere is bad. Never merged, always reported."""

    code = ErrorCode.MALFORMED


class MalformedError(ProtocolError):
    code = ErrorCode.MALFORMED


class UnsupportedVersionError(ProtocolError):
    code = ErrorCode.UNSUPPORTED_VERSION


class OversizedError(ProtocolError):
    code = ErrorCode.OVERSIZED


class BadSignatureError(ProtocolError):
    code = ErrorCode.BAD_SIGNATURE


class UnknownDeviceError(ProtocolError):
    code = ErrorCode.UNKNOWN_DEVICE


class WrongSpaceError(ProtocolError):
    code = ErrorCode.WRONG_SPACE


class WrongEpochError(ProtocolError):
    code = ErrorCode.WRONG_EPOCH


class BadPaddingError(ProtocolError):
    code = ErrorCode.BAD_PADDING


class DecryptError(ProtocolError):
    code = ErrorCode.DECRYPT_FAILED


class DeviceRemovedError(ProtocolError):
    code = ErrorCode.DEVICE_REMOVED


class RosterError(ProtocolError):
    code = ErrorCode.ROSTER_INVALID


class VersionIdMismatchError(ProtocolError):
    code = ErrorCode.VERSION_ID_MISMATCH


class NotAuthorError(ProtocolError):
    code = ErrorCode.NOT_AUTHOR


class FeedError(ProtocolError):
    code = ErrorCode.BROKEN_CHAIN


class FeedGapError(FeedError):
    code = ErrorCode.FEED_GAP


class BrokenChainError(FeedError):
    code = ErrorCode.BROKEN_CHAIN


class ForkError(FeedError):
    code = ErrorCode.FORK


class ExpiredError(ProtocolError):
    code = ErrorCode.EXPIRED


class PairingFailedError(ProtocolError):
    code = ErrorCode.PAIRING_FAILED


class UnexpectedMessageError(ProtocolError):
    code = ErrorCode.UNEXPECTED_MESSAGE


ERRORS_BY_CODE: dict[ErrorCode, type[AccordError]] = {
    cls.code: cls
    for cls in (
        UsageError,
        MalformedError,
        UnsupportedVersionError,
        OversizedError,
        BadSignatureError,
        UnknownDeviceError,
        WrongSpaceError,
        WrongEpochError,
        BadPaddingError,
        DecryptError,
        DeviceRemovedError,
        RosterError,
        VersionIdMismatchError,
        NotAuthorError,
        FeedGapError,
        BrokenChainError,
        ForkError,
        ExpiredError,
        PairingFailedError,
        UnexpectedMessageError,
    )
}
