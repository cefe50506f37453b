"""Pairing messages: exact fields, self-checking construction, and decoders under fuzzing."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import encoding
from protocol.entry import SeenHead
from protocol.errors import (
    AccordError,
    MalformedError,
    OversizedError,
    ProtocolError,
    UnsupportedVersionError,
)
from protocol.pairing_codes import Purpose
from protocol.pairing_messages import (
    MAX_MESSAGE_BYTES,
    Decline,
    Done,
    Hello,
    JoinMode,
    Offer,
    Pake,
    PrivateWelcome,
    Request,
    Sealed,
    Welcome,
    check_display_name,
    decode_clear,
    decode_inner,
    encode_message,
)

PAKE_A = b"A" + bytes(32)
PAKE_B = b"B" + bytes(32)

CLEAR = [
    Pake(pake=PAKE_A),
    Hello(mode=JoinMode.QR, key=bytes(32), mac=bytes(32)),
    Hello(mode=JoinMode.CODE, pake=PAKE_B, mac=bytes(32)),
    Sealed(seq=3, box=b"\x01" * 300),
]
HEAD = SeenHead(device=bytes(32), seq=2, id=bytes(32))
PRIVATE = b"\x07" * 16
PART = PrivateWelcome(space=PRIVATE, heads=(HEAD,), envelopes=(b"p",), added=b"y")
LINKED = Welcome(
    space=bytes(16),
    relay="https://r.example",
    heads=(HEAD,),
    envelopes=(b"e",),
    added=b"x",
    private=PART,
)
INNER = [
    Offer(purpose=Purpose.PARTNER, space=bytes(16), inviter=bytes(32), member=None, name="Alex"),
    Offer(purpose=Purpose.SELF, space=bytes(16), inviter=bytes(32), member=bytes(16), name="A"),
    Offer(
        purpose=Purpose.SELF,
        space=bytes(16),
        inviter=bytes(32),
        member=bytes(16),
        name="A",
        private=PRIVATE,
    ),
    Request(device=bytes(32), name="Sam 🌱", proof=bytes(64)),
    Request(device=bytes(32), name="A", proof=bytes(64), private_proof=b"\x01" * 64),
    Welcome(
        space=bytes(16), relay="https://r.example", heads=(HEAD,), envelopes=(b"e",), added=b"x"
    ),
    LINKED,
    Decline(),
    Done(),
]
#: The fields a message may leave out (SPEC.md 11.12): absent when unused.
OPTIONAL = {"private", "private_proof"}


@pytest.mark.parametrize("message", CLEAR, ids=lambda m: m.TYPE.value)
def test_clear_messages_round_trip(message: Any) -> None:
    assert decode_clear(encode_message(message)) == message


@pytest.mark.parametrize("message", INNER, ids=lambda m: m.TYPE.value)
def test_sealed_messages_round_trip(message: Any) -> None:
    assert decode_inner(encode_message(message)) == message


@pytest.mark.parametrize("message", INNER, ids=lambda m: m.TYPE.value)
def test_inner_messages_never_travel_in_clear(message: Any) -> None:
    with pytest.raises(MalformedError):
        decode_clear(encode_message(message))


@pytest.mark.parametrize("message", CLEAR, ids=lambda m: m.TYPE.value)
def test_clear_messages_are_not_sealed_messages(message: Any) -> None:
    with pytest.raises(MalformedError):
        decode_inner(encode_message(message))


@pytest.mark.parametrize("message", CLEAR + INNER, ids=lambda m: m.TYPE.value)
def test_an_extra_or_missing_field_is_refused(message: Any) -> None:
    fields = message.to_map()
    decoder = decode_clear if message in CLEAR else decode_inner
    with pytest.raises(MalformedError):
        decoder(encoding.encode({**fields, "extra": 1}))
    for key in fields:
        if key == "type":
            continue
        smaller = {k: v for k, v in fields.items() if k != key}
        if key in OPTIONAL:  # leaving it out is another valid message, without it
            assert key not in decoder(encoding.encode(smaller)).to_map()
            continue
        with pytest.raises(MalformedError):
            decoder(encoding.encode(smaller))


@pytest.mark.parametrize("message", INNER, ids=lambda m: m.TYPE.value)
def test_an_optional_field_is_absent_never_null(message: Any) -> None:
    fields = message.to_map()
    for key in OPTIONAL:
        with pytest.raises(MalformedError):
            decode_inner(encoding.encode({**fields, key: None}))


def test_only_a_self_offer_names_a_private_space_and_never_its_own_space() -> None:
    with pytest.raises(MalformedError):
        Offer(
            purpose=Purpose.PARTNER,
            space=bytes(16),
            inviter=bytes(32),
            member=None,
            name="A",
            private=PRIVATE,
        )
    with pytest.raises(MalformedError):
        Offer(
            purpose=Purpose.SELF,
            space=PRIVATE,
            inviter=bytes(32),
            member=bytes(16),
            name="A",
            private=PRIVATE,
        )
    partner = next(m for m in INNER if isinstance(m, Offer)).to_map()
    with pytest.raises(MalformedError):
        decode_inner(encoding.encode({**partner, "private": PRIVATE}))


def test_a_welcome_private_part_has_its_own_space_and_exact_fields() -> None:
    welcome = LINKED
    with pytest.raises(MalformedError):
        Welcome(
            space=PRIVATE,
            relay="https://r.example",
            heads=(HEAD,),
            envelopes=(b"e",),
            added=b"x",
            private=PART,
        )
    fields = welcome.to_map()
    for bad in (
        {**fields["private"], "relay": "https://r.example"},
        {k: v for k, v in fields["private"].items() if k != "added"},
        [PRIVATE],
        {**fields["private"], "heads": []},
    ):
        with pytest.raises(MalformedError):
            decode_inner(encoding.encode({**fields, "private": bad}))


def test_another_version_is_refused() -> None:
    fields = Pake(pake=PAKE_A).to_map()
    with pytest.raises(UnsupportedVersionError):
        decode_clear(encoding.encode({**fields, "v": 2}))


def test_each_side_has_its_own_pake_side_byte() -> None:
    with pytest.raises(MalformedError):
        Pake(pake=PAKE_B)
    with pytest.raises(MalformedError):
        Hello(mode=JoinMode.CODE, pake=PAKE_A, mac=bytes(32))


def test_a_hello_carries_exactly_one_key() -> None:
    with pytest.raises(MalformedError):
        Hello(mode=JoinMode.QR, key=bytes(32), pake=PAKE_B, mac=bytes(32))
    with pytest.raises(MalformedError):
        Hello(mode=JoinMode.CODE, mac=bytes(32))
    fields = Hello(mode=JoinMode.QR, key=bytes(32), mac=bytes(32)).to_map()
    fields["mode"] = "code"
    with pytest.raises(MalformedError):
        decode_clear(encoding.encode(fields))


def test_offers_name_a_member_only_in_self_pairing() -> None:
    with pytest.raises(MalformedError):
        Offer(
            purpose=Purpose.PARTNER, space=bytes(16), inviter=bytes(32), member=bytes(16), name="A"
        )
    with pytest.raises(MalformedError):
        Offer(purpose=Purpose.SELF, space=bytes(16), inviter=bytes(32), member=None, name="A")


@pytest.mark.parametrize(
    "name",
    ["", " Sam", "Sam ", "Sam\nAdmin", "Sam\u202eeliF", "x" * 65, "e\u0301"],
)
def test_display_names_that_could_mislead_are_refused(name: str) -> None:
    with pytest.raises(MalformedError):
        check_display_name(name)


@pytest.mark.parametrize("name", ["Sam", "Ålex", "山田", "x" * 64, "Alex’s phone"])
def test_ordinary_display_names_are_accepted(name: str) -> None:
    assert check_display_name(name) == name


def test_welcome_heads_are_sorted_unique_and_present() -> None:
    head = SeenHead(device=bytes(32), seq=1, id=bytes(32))
    later = SeenHead(device=b"\x01" * 32, seq=1, id=bytes(32))
    for heads in ((), (later, head), (head, head)):
        with pytest.raises(MalformedError):
            Welcome(space=bytes(16), relay="http://r", heads=heads, envelopes=(), added=b"x")


def test_a_welcome_with_too_many_items_is_malformed() -> None:
    """A count above 256 does not follow 11.6.5; ``oversized`` is for byte sizes (11.11)."""
    with pytest.raises(MalformedError):
        Welcome(
            space=bytes(16),
            relay="http://r",
            heads=(SeenHead(device=bytes(32), seq=1, id=bytes(32)),),
            envelopes=(b"x",) * 257,
            added=b"x",
        )


def test_messages_above_the_limit_are_refused() -> None:
    with pytest.raises(OversizedError):
        decode_clear(b"\x00" * (MAX_MESSAGE_BYTES + 1))
    with pytest.raises(OversizedError):
        encode_message(Sealed(seq=0, box=bytes(MAX_MESSAGE_BYTES)))


@settings(max_examples=400)
@given(data=st.binary(max_size=600))
def test_decoders_refuse_random_bytes_with_typed_errors(data: bytes) -> None:
    for decoder in (decode_clear, decode_inner):
        try:
            decoder(data)
        except ProtocolError:
            pass


_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.binary(max_size=40)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=400)
@given(
    kind=st.sampled_from(
        ["pake", "hello", "sealed", "offer", "request", "welcome", "decline", "done", "x"]
    ),
    fields=st.dictionaries(
        st.sampled_from(
            [
                "v",
                "mode",
                "mac",
                "key",
                "pake",
                "seq",
                "box",
                "purpose",
                "space",
                "inviter",
                "member",
                "name",
                "device",
                "proof",
                "relay",
                "heads",
                "envelopes",
                "added",
                "private",
                "private_proof",
            ]
        ),
        _values,
        max_size=7,
    ),
)
def test_decoders_refuse_well_formed_cbor_of_the_wrong_shape(kind: str, fields: dict) -> None:  # type: ignore[type-arg]
    data = encoding.encode({**fields, "type": kind})
    for decoder in (decode_clear, decode_inner):
        try:
            message = decoder(data)
        except AccordError as error:
            assert isinstance(error, ProtocolError)
        else:
            assert encode_message(message) == data
