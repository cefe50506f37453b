"""Canonical encoding: the one byte-exact form of everything hashed or signed.

Accord uses deterministic CBOR (RFC 8949 section 4.2.1, "core deterministic
encoding") restricted to a small data model (SPEC.md section 2):

* unsigned and negative integers in the signed 64-bit range,
* byte strings, UTF-8 text strings,
* arrays, and maps whose keys are text strings,
* ``true``, ``false`` and ``null``.

Floats, tags, ``undefined``, other simple values and indefinite lengths are not
part of the model. A decoder accepts only bytes that re-encode to themselves, so
there is exactly one encoding of every value and a hash of the bytes is a hash of
the value.
"""

from __future__ import annotations

from typing import Any

import cbor2

from protocol.errors import MalformedError, OversizedError, UsageError

#: Values of the restricted data model. Kept as ``Any`` because the model is
#: recursive; :func:`check_value` enforces it.
CanonicalValue = Any

INT_MIN = -(2**63)
INT_MAX = 2**63 - 1
MAX_DEPTH = 16
#: No canonical document may be larger than this (SPEC.md section 2).
MAX_ENCODED_SIZE = 2 * 1024 * 1024


def check_value(value: CanonicalValue, depth: int = 0) -> None:
    """Check that ``value`` lies in the data model.

    Raises:
        UsageError: ``value`` holds something that has no canonical encoding.
    """
    if depth > MAX_DEPTH:
        raise UsageError("value nests too deeply for the canonical encoding")
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, int):
        if not INT_MIN <= value <= INT_MAX:
            raise UsageError("integer outside the signed 64-bit range")
        return
    if isinstance(value, bytes | str):
        return
    if isinstance(value, list | tuple):
        for item in value:
            check_value(item, depth + 1)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise UsageError("map keys must be text strings")
            check_value(item, depth + 1)
        return
    raise UsageError(f"{type(value).__name__} has no canonical encoding")


def encode(value: CanonicalValue) -> bytes:
    """Encode ``value`` in Accord's canonical CBOR.

    Raises:
        UsageError: ``value`` is outside the data model.
    """
    check_value(value)
    return bytes(cbor2.dumps(value, canonical=True))


def _refuse_tag(decoder: object, tag: object) -> object:
    raise MalformedError("CBOR tags are not part of the canonical encoding")


#: Types cbor2 decodes that need no check beyond their type (``bool`` before ``int``).
_PLAIN_TYPES = frozenset({type(None), bool, bytes, str})


def _check_decoded(value: object, depth: int = 0) -> bool:
    """Check that a decoded ``value`` lies in the data model; returns whether every map
    in it has its keys in canonical order (SPEC.md section 2).

    Raises:
        MalformedError: something outside the model, or nesting too deep.
    """
    if depth > MAX_DEPTH:
        raise MalformedError("nesting deeper than the canonical encoding allows")
    if value is None or isinstance(value, bool | bytes | str):
        return True
    if isinstance(value, int):
        if not INT_MIN <= value <= INT_MAX:
            raise MalformedError("integer outside the signed 64-bit range")
        return True
    if isinstance(value, list):
        return _check_items(value, depth)
    if isinstance(value, dict):
        return _check_map(value, depth)
    raise MalformedError(f"{type(value).__name__} is not part of the canonical encoding")


def _check_items(items: list[Any], depth: int) -> bool:
    # Scalars are checked here rather than by a call each: most children are scalars.
    in_order = True
    shallow = depth < MAX_DEPTH
    for item in items:
        kind = type(item)
        if shallow and (kind in _PLAIN_TYPES or (kind is int and INT_MIN <= item <= INT_MAX)):
            continue
        in_order = _check_decoded(item, depth + 1) and in_order
    return in_order


def _check_map(fields: dict[Any, Any], depth: int) -> bool:
    in_order = True
    shallow = depth < MAX_DEPTH
    previous_size, previous = -1, ""
    for key, item in fields.items():
        if not isinstance(key, str):
            raise MalformedError("map keys must be text strings")
        # Canonical order: shorter encoded key first, then bytewise. UTF-8 keeps the
        # order of code points, so keys of one length compare as Python strings do.
        size = len(key) if key.isascii() else len(key.encode())
        if size < previous_size or (size == previous_size and key <= previous):
            in_order = False
        previous_size, previous = size, key
        kind = type(item)
        if shallow and (kind in _PLAIN_TYPES or (kind is int and INT_MIN <= item <= INT_MAX)):
            continue
        in_order = _check_decoded(item, depth + 1) and in_order
    return in_order


def decode(data: bytes, *, max_size: int = MAX_ENCODED_SIZE) -> CanonicalValue:
    """Decode canonical CBOR, refusing every other encoding of the same value.

    Raises:
        OversizedError: ``data`` is longer than ``max_size``.
        MalformedError: ``data`` is not exactly one canonical CBOR value of the model.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise MalformedError("expected bytes")
    data = bytes(data)
    if len(data) > max_size:
        raise OversizedError(f"{len(data)} bytes is above the limit of {max_size}")
    if not data:
        raise MalformedError("empty input")
    try:
        value = cbor2.loads(
            data,
            tag_hook=_refuse_tag,
            allow_indefinite=False,
            allow_duplicate_keys=False,
            max_depth=MAX_DEPTH + 2,
        )
    except MalformedError:
        raise
    except (cbor2.CBORDecodeError, ValueError, TypeError, OverflowError, RecursionError) as exc:
        raise MalformedError(f"not valid CBOR: {type(exc).__name__}") from None
    # Every map's keys are in canonical order, so re-encoding in the decoded order
    # (cbor2 keeps it, and always writes the shortest heads and definite lengths) gives
    # the canonical encoding without sorting again.
    if not _check_decoded(value):
        raise MalformedError("not the canonical encoding of its value")
    try:
        again = cbor2.dumps(value)
    except (cbor2.CBOREncodeError, ValueError, TypeError) as exc:  # pragma: no cover - defensive
        raise MalformedError(f"cannot re-encode: {type(exc).__name__}") from None
    if again != data:
        raise MalformedError("not the canonical encoding of its value")
    return value


def decode_map(data: bytes, *, max_size: int = MAX_ENCODED_SIZE) -> dict[str, CanonicalValue]:
    """Decode canonical CBOR that must be a map.

    Raises:
        OversizedError, MalformedError: as :func:`decode`, or when the value is not a map.
    """
    value = decode(data, max_size=max_size)
    if not isinstance(value, dict):
        raise MalformedError("expected a map")
    return value
