"""JSON wire helpers shared by the HTTP routes and the WebSocket module (SPEC.md 9.1).

Binary values travel as base64url without padding. These helpers read one field of a
decoded JSON object and check its type, raising :class:`RelayError` with code
``bad_request`` (naming the field) for anything else.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from typing import Any

from protocol.crypto import PUBLIC_KEY_BYTES, SPACE_ID_BYTES
from server.errors import RelayError, RelayErrorCode

_B64URL = re.compile(r"^[A-Za-z0-9_-]*$")


def b64encode(data: bytes) -> str:
    """base64url without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64decode(text: str, *, name: str) -> bytes:
    """Decode strict base64url without padding.

    Raises:
        RelayError: ``bad_request`` for padding, other alphabets or a bad length.
    """
    if not isinstance(text, str) or not _B64URL.match(text) or len(text) % 4 == 1:
        raise bad_request(f"{name} is not base64url without padding")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise bad_request(f"{name} is not base64url without padding") from None
    if b64encode(data) != text:  # non-zero trailing bits: not the one encoding of the bytes
        raise bad_request(f"{name} is not canonical base64url")
    return data


def bad_request(message: str) -> RelayError:
    return RelayError(RelayErrorCode.BAD_REQUEST, message)


def parse_json_object(raw: bytes | str) -> dict[str, Any]:
    """Decode a JSON object.

    Raises:
        RelayError: ``bad_json`` when it is not JSON, or not an object.
    """
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        raise RelayError(RelayErrorCode.BAD_JSON, "the body is not valid JSON") from None
    if not isinstance(value, dict):
        raise RelayError(RelayErrorCode.BAD_JSON, "the body must be a JSON object")
    return value


def get_bytes(
    body: Mapping[str, Any], name: str, *, size: int | None = None, required: bool = True
) -> bytes:
    """A base64url field, of exactly ``size`` bytes when given.

    Raises:
        RelayError: ``bad_request`` when it is missing, not a string, or the wrong size.
    """
    if name not in body:
        if required:
            raise bad_request(f"{name} is required")
        return b""
    data = b64decode(body[name], name=name)
    if size is not None and len(data) != size:
        raise bad_request(f"{name} must be {size} bytes")
    return data


def get_space(body: Mapping[str, Any], name: str = "space") -> bytes:
    return get_bytes(body, name, size=SPACE_ID_BYTES)


def get_device(body: Mapping[str, Any], name: str = "device") -> bytes:
    return get_bytes(body, name, size=PUBLIC_KEY_BYTES)


def get_int(
    body: Mapping[str, Any],
    name: str,
    *,
    default: int | None = None,
    minimum: int = 0,
    maximum: int = 2**63 - 1,
) -> int:
    """An integer field within [minimum, maximum].

    Raises:
        RelayError: ``bad_request`` when it is missing (with no default), not an
            integer, or out of range.
    """
    if name not in body:
        if default is None:
            raise bad_request(f"{name} is required")
        return default
    value = body[name]
    if not isinstance(value, int) or isinstance(value, bool):
        raise bad_request(f"{name} must be an integer")
    if not minimum <= value <= maximum:
        raise bad_request(f"{name} must be between {minimum} and {maximum}")
    return value


def get_bool(body: Mapping[str, Any], name: str, *, default: bool) -> bool:
    value = body.get(name, default)
    if not isinstance(value, bool):
        raise bad_request(f"{name} must be true or false")
    return value


def get_list(body: Mapping[str, Any], name: str) -> list[Any]:
    value = body.get(name)
    if not isinstance(value, list):
        raise bad_request(f"{name} must be an array")
    return value


def get_blob_list(body: Mapping[str, Any], name: str, *, max_items: int) -> list[bytes]:
    """An array of at most ``max_items`` base64url strings.

    Raises:
        RelayError: ``batch_too_large`` for too many items (checked first),
            ``bad_request`` when it is not an array of base64url strings.
    """
    items = get_list(body, name)
    if len(items) > max_items:
        raise RelayError(RelayErrorCode.BATCH_TOO_LARGE, f"{name} holds at most {max_items} items")
    return [b64decode(item, name=f"{name}[{index}]") for index, item in enumerate(items)]


def get_path_bytes(value: str, *, name: str, size: int) -> bytes:
    """A base64url path parameter of exactly ``size`` bytes.

    Raises:
        RelayError: ``bad_request`` when it is not.
    """
    data = b64decode(value, name=name)
    if len(data) != size:
        raise bad_request(f"{name} must be {size} bytes")
    return data


def parse_query_int(raw: str | None, *, name: str, default: int, minimum: int, maximum: int) -> int:
    """An integer query parameter.

    Raises:
        RelayError: ``bad_request`` when it is not a decimal integer within the range.
    """
    if raw is None or raw == "":
        return default
    if not raw.isascii() or not raw.lstrip("-").isdigit() or len(raw) > 20:
        raise bad_request(f"{name} must be an integer")
    value = int(raw)
    if not minimum <= value <= maximum:
        raise bad_request(f"{name} must be between {minimum} and {maximum}")
    return value
