"""The shortcuts of the hot path give what the plain definitions give, byte for byte.

* ``encoding.decode`` checks the key order itself and re-encodes without sorting; it
  must accept and refuse exactly what SPEC.md section 2's "decode, re-encode
  deterministically, compare" accepts and refuses (``_reference_decode`` below).
* A decoded entry signs, encrypts against and hashes slices of the bytes it came
  from; they must equal encoding its fields again.
* ``content_key`` keeps the keys it derived; each must still be the one SPEC.md 4.3
  defines for its own inputs.
"""

from __future__ import annotations

import dataclasses
import pickle
from typing import Any

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import encoding
from protocol.crypto import (
    PERSONAL_BYTES,
    DeviceKey,
    Personal,
    content_key,
    forget_content_keys,
)
from protocol.entry import Entry, SeenHead, entry_id, open, seal, seal_roster
from protocol.errors import MalformedError, ProtocolError

# -- decode against the spec's reference --------------------------------------------


def _reference_check(value: object, depth: int = 0) -> None:
    """The data-model check as first written, one value at a time."""
    if depth > encoding.MAX_DEPTH:
        raise MalformedError("nesting deeper than the canonical encoding allows")
    if value is None or isinstance(value, bool | bytes | str):
        return
    if isinstance(value, int):
        if not encoding.INT_MIN <= value <= encoding.INT_MAX:
            raise MalformedError("integer outside the signed 64-bit range")
        return
    if isinstance(value, list):
        for item in value:
            _reference_check(item, depth + 1)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise MalformedError("map keys must be text strings")
            _reference_check(item, depth + 1)
        return
    raise MalformedError(f"{type(value).__name__} is not part of the canonical encoding")


def _reference_decode(data: bytes) -> object:
    """SPEC.md section 2: decode, re-encode deterministically, compare."""
    try:
        value = cbor2.loads(
            data,
            tag_hook=encoding._refuse_tag,
            allow_indefinite=False,
            allow_duplicate_keys=False,
            max_depth=encoding.MAX_DEPTH + 2,
        )
    except MalformedError:
        raise
    except (cbor2.CBORDecodeError, ValueError, TypeError, OverflowError, RecursionError) as exc:
        raise MalformedError(f"not valid CBOR: {type(exc).__name__}") from None
    _reference_check(value)
    if cbor2.dumps(value, canonical=True) != data:
        raise MalformedError("not the canonical encoding of its value")
    return value


def _outcome(decoder: Any, data: bytes) -> tuple[str, object]:
    try:
        return "value", decoder(data)
    except ProtocolError as exc:
        return type(exc).__name__, str(exc)


def _same_as_reference(data: bytes) -> None:
    if not data:
        return
    assert _outcome(encoding.decode, data) == _outcome(_reference_decode, data)


# Keys of many lengths, some not ASCII (UTF-8 of 2, 3 and 4 bytes), in any order.
map_keys = st.sampled_from(
    ["", "a", "b", "z", "aa", "ab", "é", "ü", "€", "😀", "ea", "zz"]
) | st.text(max_size=6)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**64), 2**64)
    | st.binary(max_size=40)
    | st.text(max_size=8)
    | st.floats(allow_nan=False, width=16)
)
unordered_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(map_keys, inner, max_size=5),
    max_leaves=24,
)


@settings(max_examples=400, deadline=None)
@given(unordered_values, st.booleans())
def test_decode_agrees_with_the_reference_on_encoded_values(value: object, canonical: bool) -> None:
    # Plain encoding keeps the maps' insertion order, canonical or not.
    _same_as_reference(cbor2.dumps(value, canonical=canonical))


@settings(max_examples=400, deadline=None)
@given(unordered_values, st.data())
def test_decode_agrees_with_the_reference_on_damaged_bytes(value: object, data: Any) -> None:
    encoded = bytearray(cbor2.dumps(value, canonical=True))
    for _ in range(data.draw(st.integers(1, 3))):
        at = data.draw(st.integers(0, len(encoded) - 1))
        encoded[at] = data.draw(st.integers(0, 255))
    _same_as_reference(bytes(encoded))


@pytest.mark.parametrize(
    "data",
    [
        bytes.fromhex("a2616101616202"),  # {"a": 1, "b": 2}: canonical
        bytes.fromhex("a2616201616102"),  # {"b": 1, "a": 2}: keys out of order
        bytes.fromhex("a2626161016162"),  # {"aa": 1, "b": ...}: longer key first
        bytes.fromhex("a1616118ff"),  # {"a": 255}
        bytes.fromhex("a161611817"),  # {"a": 23} in two bytes: not the shortest head
        bytes.fromhex("a26161f9000061620a"),  # a float value and keys in order
        bytes.fromhex("a26162f900006161f9"),  # out of order and a float: the float wins
        bytes.fromhex("a262c3a90161ff02"),  # not UTF-8 key
        bytes.fromhex("a262c3a90162617a02"),  # {"é": 1, "az": 2}: same length, bytewise
        bytes.fromhex("a262617a0162c3a902"),  # {"az": 1, "é": 2}
        bytes.fromhex("a2616101616101"),  # duplicate keys
    ],
)
def test_decode_agrees_with_the_reference_on_chosen_maps(data: bytes) -> None:
    _same_as_reference(data)


def test_depth_limit_is_unchanged() -> None:
    for depth in range(12, 20):
        for innermost in (b"\x00", b"\x80", b"\xa0", b"\xa1\x61\x61\x00"):
            _same_as_reference(b"\x81" * depth + innermost)
            _same_as_reference(b"\xa1\x61\x61" * depth + innermost)


# -- entries: slices of the received bytes ------------------------------------------

_KEY = DeviceKey.generate(bytes(range(32)))
_EPOCH_KEY = bytes(range(100, 132))
_SPACE = bytes(16)


def _from_fields(entry: Entry) -> Entry:
    """The same entry built in memory: it encodes its fields."""
    return dataclasses.replace(entry)


def _check_wire(entry: Entry) -> Entry:
    raw = entry.to_bytes()
    decoded = Entry.from_bytes(raw)
    again = _from_fields(decoded)
    assert decoded == entry == again
    assert decoded.to_bytes() == again.to_bytes() == raw
    assert decoded.signing_bytes() == again.signing_bytes() == entry.signing_bytes()
    assert decoded.header_bytes() == again.header_bytes() == entry.header_bytes()
    assert decoded.header_bytes() == encoding.encode(decoded.header_map())
    assert decoded.id == again.id == entry_id(raw)
    return decoded


seqs = st.sampled_from([1, 2, 23, 24, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**63 - 1])


@settings(max_examples=60, deadline=None)
@given(
    seq=seqs,
    epoch=st.sampled_from([0, 1, 23, 24, 2**40]),
    size=st.sampled_from([0, 1, 200, 255, 300, 70_000]),
    seen=st.lists(
        st.tuples(st.binary(min_size=32, max_size=32), seqs, st.binary(min_size=32, max_size=32)),
        max_size=3,
        unique_by=lambda t: t[0],
    ),
)
def test_decoded_data_entries_sign_and_seal_their_own_bytes(
    seq: int, epoch: int, size: int, seen: list[tuple[bytes, int, bytes]]
) -> None:
    heads = tuple(SeenHead(device=d, seq=s, id=i) for d, s, i in sorted(seen) if d != _KEY.public)
    entry = seal(
        device_key=_KEY,
        space=_SPACE,
        seq=seq,
        prev=None if seq == 1 else bytes([7]) * 32,
        epoch=epoch,
        epoch_key=_EPOCH_KEY,
        plaintext=bytes([5]) * size,
        seen=heads,
    )
    decoded = _check_wire(entry)
    opened = open(
        decoded,
        space=_SPACE,
        devices={_KEY.public},
        prev_id=decoded.prev,
        epoch_keys={epoch: _EPOCH_KEY},
    )
    assert opened == bytes([5]) * size


@pytest.mark.parametrize("seq", [1, 30, 2**33])
def test_decoded_roster_entries_sign_their_own_bytes(seq: int) -> None:
    entry = seal_roster(
        device_key=_KEY,
        space=_SPACE,
        seq=seq,
        prev=None if seq == 1 else bytes(32),
        epoch=3,
        record=encoding.encode({"type": "x", "n": seq}),
    )
    _check_wire(entry)


def test_a_changed_copy_does_not_keep_the_received_bytes() -> None:
    entry = Entry.from_bytes(
        seal_roster(
            device_key=_KEY, space=_SPACE, seq=1, prev=None, epoch=0, record=b"\xa0"
        ).to_bytes()
    )
    other_sig = bytes([entry.sig[0] ^ 1]) + entry.sig[1:]
    changed = dataclasses.replace(entry, sig=other_sig)
    assert changed.to_bytes() != entry.to_bytes()
    assert Entry.from_bytes(changed.to_bytes()).sig == other_sig
    moved = dataclasses.replace(entry, epoch=9)
    assert moved.signing_bytes() != entry.signing_bytes()
    assert Entry.from_bytes(moved.to_bytes()).epoch == 9


def test_pickled_entries_keep_their_bytes() -> None:
    raw = seal_roster(
        device_key=_KEY, space=_SPACE, seq=1, prev=None, epoch=0, record=b"\xa0"
    ).to_bytes()
    entry = pickle.loads(pickle.dumps(Entry.from_bytes(raw)))
    assert entry.to_bytes() == raw
    assert entry.signing_bytes() == _from_fields(entry).signing_bytes()


# -- content keys -------------------------------------------------------------------


def _content_key_by_definition(epoch_key: bytes, space: bytes, epoch: int) -> bytes:
    import nacl.bindings as sodium

    return bytes(
        sodium.crypto_generichash_blake2b_salt_personal(
            space + epoch.to_bytes(8, "big"),
            digest_size=32,
            key=epoch_key,
            person=Personal.CONTENT_KEY.ljust(PERSONAL_BYTES, b"\x00"),
        )
    )


def test_kept_content_keys_are_those_of_their_inputs() -> None:
    forget_content_keys()
    inputs = [
        (epoch_key, space, epoch)
        for epoch_key in (bytes(32), bytes([1]) * 32)
        for space in (bytes(16), bytes([2]) * 16)
        for epoch in (0, 1, 2**40)
    ]
    for _ in range(2):  # derived, then kept
        keys = [content_key(*args) for args in inputs]
        assert keys == [_content_key_by_definition(*args) for args in inputs]
        assert len(set(keys)) == len(inputs)
    forget_content_keys()
    assert content_key(*inputs[0]) == _content_key_by_definition(*inputs[0])
