"""The QR invite URI and the typed code: round trips, strictness, and fuzzing."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pairing_helpers import NOW, make_invite

from protocol.errors import (
    AccordError,
    ExpiredError,
    MalformedError,
    UnsupportedVersionError,
    UsageError,
)
from protocol.pairing_codes import (
    WORDS,
    InviteUri,
    Purpose,
    TypedCode,
    b64decode,
    b64encode,
    parse_code,
    parse_invite_uri,
)


def test_the_word_list_has_256_plain_distinct_words() -> None:
    assert len(WORDS) == 256
    assert len(set(WORDS)) == 256
    assert list(WORDS) == sorted(WORDS)
    assert all(word.isascii() and word.isalpha() and word.islower() for word in WORDS)
    assert all(3 <= len(word) <= 7 for word in WORDS)
    assert len({word[:3] for word in WORDS}) == 256  # three letters name a word


def test_a_code_spells_its_secret_one_word_per_byte() -> None:
    code = TypedCode.from_secret(nameplate="42", secret=bytes([0, 1, 254, 255]))
    assert str(code) == f"42-{WORDS[0]}-{WORDS[1]}-{WORDS[254]}-{WORDS[255]}"
    assert code.secret == bytes([0, 1, 254, 255])
    assert code.password == str(code).encode("ascii")


@settings(max_examples=200)
@given(
    secret=st.binary(min_size=4, max_size=4),
    nameplate=st.from_regex(r"0|[1-9][0-9]{0,7}", fullmatch=True),
)
def test_every_code_reads_back_as_itself(secret: bytes, nameplate: str) -> None:
    code = TypedCode.from_secret(nameplate=nameplate, secret=secret)
    assert parse_code(str(code)) == code
    assert parse_code("  " + str(code).upper().replace("-", " ") + " ") == code


def test_leading_zeros_of_a_typed_nameplate_are_dropped() -> None:
    code = TypedCode.from_secret(nameplate="42", secret=bytes(4))
    assert parse_code("0042 " + " ".join(code.words)) == code
    with pytest.raises(MalformedError):
        TypedCode(nameplate="042", words=code.words)


def test_a_misspelt_word_gets_a_suggestion() -> None:
    with pytest.raises(MalformedError, match="did you mean 'acorn'"):
        parse_code("42-acorm-apple-river-zinc")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "42",
        "42-acorn-apple-river",
        "42-acorn-apple-river-zinc-zinc",
        "x-acorn-apple-river-zinc",
        "123456789-acorn-apple-river-zinc",
        "42_acorn_apple_river_zinc",
        "42-acorn-apple-river-zïnc",
    ],
)
def test_bad_codes_are_refused(text: str) -> None:
    with pytest.raises(MalformedError):
        parse_code(text)


def test_a_code_secret_must_be_four_bytes() -> None:
    with pytest.raises(UsageError):
        TypedCode.from_secret(nameplate="1", secret=b"abc")


@settings(max_examples=300)
@given(text=st.text(max_size=80))
def test_parse_code_never_fails_untyped(text: str) -> None:
    try:
        parse_code(text)
    except AccordError as error:
        assert isinstance(error, MalformedError)


# -- URI ---------------------------------------------------------------------------------------


def test_an_invite_uri_round_trips() -> None:
    invite = make_invite(Purpose.SELF)
    uri = invite.uri.to_uri()
    assert uri.startswith("accord://pair/1?r=http%3A%2F%2F127.0.0.1%3A8787&c=")
    assert parse_invite_uri(uri, now=NOW) == invite.uri


@settings(max_examples=150)
@given(
    relay=st.sampled_from(
        [
            "http://127.0.0.1:1",
            "https://relay.example.org",
            "https://r.example/a b/ü?"[:24],
            "https://[::1]:8443/accord",
        ]
    ),
    channel=st.from_regex(r"[A-Za-z0-9_-]{1,64}", fullmatch=True),
    key=st.binary(min_size=32, max_size=32),
    secret=st.binary(min_size=32, max_size=32),
    expires=st.integers(min_value=NOW + 1, max_value=10**12 - 1),
    purpose=st.sampled_from(list(Purpose)),
)
def test_every_invite_round_trips(
    relay: str, channel: str, key: bytes, secret: bytes, expires: int, purpose: Purpose
) -> None:
    try:
        invite = InviteUri(
            relay=relay, channel=channel, key=key, secret=secret, expires=expires, purpose=purpose
        )
    except MalformedError:
        assert " " in relay or "?" in relay or not relay.isascii()
        return
    assert parse_invite_uri(invite.to_uri(), now=NOW) == invite


def test_the_parser_refuses_another_version() -> None:
    uri = make_invite().uri.to_uri().replace("pair/1?", "pair/17?")
    with pytest.raises(UnsupportedVersionError):
        parse_invite_uri(uri, now=NOW)


def test_the_parser_refuses_an_expired_invite() -> None:
    invite = make_invite()
    uri = invite.uri.to_uri()
    parse_invite_uri(uri, now=invite.expires - 1)
    with pytest.raises(ExpiredError):
        parse_invite_uri(uri, now=invite.expires)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda u: u.upper(),
        lambda u: u + "&",
        lambda u: u.replace("?", "?&"),
        lambda u: u.replace("&c=", "&c=%20"),
        lambda u: u.replace("&k=", "&k=A"),
        lambda u: u.replace("m=partner", "m=Partner"),
        lambda u: u.replace("http%3A", "javascript%3A"),
        lambda u: u.replace("accord://pair/1", "accord://pair/1/"),
        lambda u: " " + u,
        lambda u: u + "\n",
        lambda u: u.replace("&x=", "&x=-"),
    ],
)
def test_the_parser_refuses_any_other_spelling(mutate) -> None:  # type: ignore[no-untyped-def]
    uri = make_invite().uri.to_uri()
    with pytest.raises(MalformedError):
        parse_invite_uri(mutate(uri), now=NOW)


@settings(max_examples=300)
@given(text=st.text(max_size=300))
def test_parse_invite_uri_never_fails_untyped(text: str) -> None:
    try:
        parse_invite_uri("accord://pair/1?" + text, now=NOW)
    except (MalformedError, ExpiredError, UnsupportedVersionError):
        pass


@settings(max_examples=300)
@given(text=st.text(alphabet=st.characters(max_codepoint=127), max_size=64))
def test_b64decode_accepts_only_canonical_text(text: str) -> None:
    try:
        data = b64decode(text, size=len(text) * 3 // 4, name="x")
    except MalformedError:
        return
    assert b64encode(data) == text


def test_secrets_stay_out_of_reprs() -> None:
    invite = make_invite()
    for text in (repr(invite), repr(invite.uri), repr(invite.code)):
        assert invite.secret.hex() not in text
        assert repr(invite.secret) not in text
    assert str(invite.code).split("-")[1] not in repr(invite.code)
