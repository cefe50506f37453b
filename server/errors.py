"""The relay's errors and the one table that maps every error code to an HTTP status.

The relay answers every failure with ``{"error": {"code": ..., "message": ...}}``
(SPEC.md section 9.1). Codes come from two places:

* :class:`protocol.errors.ErrorCode`: bad entries, signatures, chains and roster
  records, raised by the protocol core while the relay checks what it is given;
* :class:`RelayErrorCode`: everything only a relay can say (tokens, limits, unknown
  spaces, pairing channels...).

Exception tree of this module::

    RelayError                 carries a RelayErrorCode (and maybe extra fields)
    └── RateLimitedError       adds a Retry-After

Protocol errors (``protocol.errors.AccordError``) are raised as they are and mapped by
:func:`status_of`, so a client sees the same code the protocol core would give it
locally. The middleware in :mod:`server.app` is the only place that turns either kind
into an HTTP response; the WebSocket module sends the same ``error`` object in a frame.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from protocol.errors import AccordError, ErrorCode


class RelayErrorCode(StrEnum):
    """Error codes only the relay uses (SPEC.md section 10, relay table)."""

    BAD_JSON = "bad_json"  # SPEC 9.1: the body is not a JSON object
    BAD_REQUEST = "bad_request"  # SPEC 9.1: a field is missing, of the wrong type or bad base64
    NOT_FOUND = "not_found"  # SPEC 9.1: no such path
    METHOD_NOT_ALLOWED = "method_not_allowed"  # SPEC 9.1
    UNAUTHORIZED = "unauthorized"  # SPEC 9.3: no token, an unknown or expired token
    AUTH_FAILED = "auth_failed"  # SPEC 9.3: unknown, used or expired challenge, or bad signature
    FORBIDDEN = "forbidden"  # SPEC 9.3: the token is for another space or another feed
    UNKNOWN_SPACE = "unknown_space"  # SPEC 9.2
    SPACE_EXISTS = "space_exists"  # SPEC 9.2
    BODY_TOO_LARGE = "body_too_large"  # SPEC 9.9: request body or WebSocket message
    ENTRY_TOO_LARGE = "entry_too_large"  # SPEC 9.9: an entry above the relay's entry limit
    BATCH_TOO_LARGE = "batch_too_large"  # SPEC 9.9: too many entries or envelopes at once
    RATE_LIMITED = "rate_limited"  # SPEC 9.9: too many requests from one device
    IP_RATE_LIMITED = "ip_rate_limited"  # SPEC 9.9: too many requests from one address
    TOO_MANY_WEBSOCKETS = "too_many_websockets"  # SPEC 9.9: per-device WebSocket limit
    UNKNOWN_CHANNEL = "unknown_channel"  # SPEC 9.8: no such pairing channel, or it expired
    CHANNEL_CLAIMED = "channel_claimed"  # SPEC 9.8: the channel already has two parties
    CHANNEL_FULL = "channel_full"  # SPEC 9.8: the channel holds its most messages
    MESSAGE_TOO_LARGE = "message_too_large"  # SPEC 9.8: a pairing message above the limit
    NAMEPLATES_EXHAUSTED = "nameplates_exhausted"  # SPEC 9.8: no free short nameplate
    UNAVAILABLE = "unavailable"  # SPEC 9.1: the database is unreachable or the relay stops
    INTERNAL = "internal"  # SPEC 9.1: a bug in the relay; never expected


#: HTTP status of every code the relay can send. One table, read by the middleware,
#: the WebSocket module and the docs test (tests/server/test_spec_tables.py).
STATUS_BY_CODE: dict[str, int] = {
    # protocol codes (SPEC.md section 10, protocol table)
    ErrorCode.USAGE: 400,
    ErrorCode.MALFORMED: 400,
    ErrorCode.UNSUPPORTED_VERSION: 400,
    ErrorCode.OVERSIZED: 413,
    ErrorCode.BAD_SIGNATURE: 400,
    ErrorCode.UNKNOWN_DEVICE: 403,
    ErrorCode.WRONG_SPACE: 400,
    ErrorCode.WRONG_EPOCH: 409,
    ErrorCode.BAD_PADDING: 400,
    ErrorCode.DECRYPT_FAILED: 400,
    ErrorCode.DEVICE_REMOVED: 403,
    ErrorCode.ROSTER_INVALID: 409,
    ErrorCode.VERSION_ID_MISMATCH: 400,
    ErrorCode.NOT_AUTHOR: 403,
    ErrorCode.FEED_GAP: 409,
    ErrorCode.BROKEN_CHAIN: 409,
    ErrorCode.FORK: 409,
    # relay codes
    RelayErrorCode.BAD_JSON: 400,
    RelayErrorCode.BAD_REQUEST: 400,
    RelayErrorCode.NOT_FOUND: 404,
    RelayErrorCode.METHOD_NOT_ALLOWED: 405,
    RelayErrorCode.UNAUTHORIZED: 401,
    RelayErrorCode.AUTH_FAILED: 401,
    RelayErrorCode.FORBIDDEN: 403,
    RelayErrorCode.UNKNOWN_SPACE: 404,
    RelayErrorCode.SPACE_EXISTS: 409,
    RelayErrorCode.BODY_TOO_LARGE: 413,
    RelayErrorCode.ENTRY_TOO_LARGE: 413,
    RelayErrorCode.BATCH_TOO_LARGE: 413,
    RelayErrorCode.RATE_LIMITED: 429,
    RelayErrorCode.IP_RATE_LIMITED: 429,
    RelayErrorCode.TOO_MANY_WEBSOCKETS: 429,
    RelayErrorCode.UNKNOWN_CHANNEL: 404,
    RelayErrorCode.CHANNEL_CLAIMED: 409,
    RelayErrorCode.CHANNEL_FULL: 409,
    RelayErrorCode.MESSAGE_TOO_LARGE: 413,
    RelayErrorCode.NAMEPLATES_EXHAUSTED: 503,
    RelayErrorCode.UNAVAILABLE: 503,
    RelayErrorCode.INTERNAL: 500,
}


class RelayError(Exception):
    """A failure the relay reports to its client with a stable code.

    ``extra`` holds more fields for the error object (for example ``index``, the
    position in a batch of the entry that was refused).
    """

    def __init__(self, code: RelayErrorCode, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.extra = extra

    def __str__(self) -> str:
        return f"{self.message} [{self.code.value}]"


class RateLimitedError(RelayError):
    """A rate limit was hit; ``retry_after`` is in whole seconds (at least 1)."""

    def __init__(self, code: RelayErrorCode, message: str, *, retry_after: int) -> None:
        super().__init__(code, message)
        self.retry_after = max(1, retry_after)


class EntryRefused(Exception):
    """A protocol error about one entry of a batch, with the entry's index.

    The append path raises it so the response can name the entry; the middleware
    reports the wrapped error's code with an ``index`` field.
    """

    def __init__(self, error: AccordError | RelayError, index: int) -> None:
        super().__init__(str(error))
        self.error = error
        self.index = index


# A protocol code added later and not in the table above is bad input from the client.
for _code in ErrorCode:
    STATUS_BY_CODE.setdefault(_code, 400)


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    """The wire form of an error (SPEC.md section 9.1)."""
    error: dict[str, Any] = {"code": code, "message": message}
    error.update(extra)
    return {"error": error}


def status_of(code: str) -> int:
    """The HTTP status for an error code; 500 for a code missing from the table."""
    return STATUS_BY_CODE.get(code, 500)


def describe(exc: BaseException) -> tuple[str, str, dict[str, Any]]:
    """The code, message and extra fields of a relay or protocol error.

    Raises:
        TypeError: ``exc`` is neither (the caller treats it as an internal error).
    """
    if isinstance(exc, EntryRefused):
        code, message, extra = describe(exc.error)
        return code, message, {**extra, "index": exc.index}
    if isinstance(exc, RelayError):
        return exc.code.value, exc.message, dict(exc.extra)
    if isinstance(exc, AccordError):
        return exc.code.value, exc.message, {}
    raise TypeError(f"{type(exc).__name__} is not an Accord error")
