"""What a person carries from one device to the other: the QR invite and the typed code.

Theory of operation (SPEC.md sections 11.2 and 11.3):

* The device already in the space makes an invite. Its QR code holds an ``accord://pair/1``
  URI with the relay, the rendezvous channel, an ephemeral X25519 public key, a 32-byte
  secret, the expiry and the purpose (partner or self). :func:`parse_invite_uri` accepts
  exactly the form :meth:`InviteUri.to_uri` writes, and nothing else.
* The typed fallback is ``<nameplate>-<word>-<word>-<word>-<word>``: the relay's short
  decimal nameplate of the channel, then four words from :data:`WORDS`, a fixed list of 256
  words, so the words carry 32 bits. The code is a SPAKE2 password, never a key.

Nothing here does I/O; expiry is checked against a ``now`` the caller passes in.
"""

from __future__ import annotations

import base64
import binascii
import re
import string
from dataclasses import dataclass, field
from enum import StrEnum
from urllib.parse import quote, unquote, urlsplit

from protocol.errors import ExpiredError, MalformedError, UnsupportedVersionError, UsageError

#: URI scheme, host and version of a QR invite (SPEC.md section 11.2).
URI_PREFIX = "accord://pair/"
URI_VERSION = 1
#: Longest invite URI a parser reads, so a hostile QR code cannot make it do much work.
MAX_URI_LENGTH = 1024
#: Longest relay URL an invite or welcome may name.
MAX_RELAY_URL_LENGTH = 256
#: How long an invite lives (DESIGN.md section 8: two minutes).
INVITE_LIFETIME = 120
#: Bytes of the QR secret ``s`` and of an X25519 key.
SECRET_BYTES = 32
X25519_KEY_BYTES = 32
#: Number of words in a typed code, and the bytes of randomness they carry.
CODE_WORDS = 4
CODE_SECRET_BYTES = CODE_WORDS

_CHANNEL_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
_NAMEPLATE_RE = re.compile(r"0|[1-9][0-9]{0,7}")
_EXPIRY_RE = re.compile(r"[1-9][0-9]{0,11}")
_B64URL_ALPHABET = frozenset(string.ascii_letters + string.digits + "-_")
_QUERY_VALUE_ALPHABET = frozenset(string.ascii_letters + string.digits + "-_.~%")


class Purpose(StrEnum):
    """What a pairing does: the ``m`` parameter of the QR invite (SPEC.md section 11.1)."""

    PARTNER = "partner"  # a new member joins the space with their first device
    SELF = "self"  # another device of the inviting member


#: The 256 words of typed codes (SPEC.md section 11.3): plain, neutral nouns, sorted,
#: each 3 to 7 lowercase letters, no two sharing their first three letters. A word's
#: index in this tuple is the byte it stands for.
WORDS: tuple[str, ...] = tuple(
    """
    acorn acrobat adobe album alley almond amber anchor apple apron arch atlas attic
    autumn badger bagel baker bamboo banjo barley basket beaver beetle berry birch
    biscuit blossom bonsai bottle bridge brook bucket buffalo button cabin cactus camel
    canoe carrot castle cedar cello chalk cheese chimney cider cinema circle citrus
    cloud cobalt cocoa coffee comet copper coral cotton crayon cricket crystal cymbal
    dahlia daisy delta denim desert diamond dolphin domino donkey drum dune eagle easel
    echo ember emerald engine fabric falcon feather fern fiddle field fig flannel flute
    forest fossil garden gazelle gecko ginger glacier globe gondola goose grape guitar
    harbor hazel helmet heron hockey icicle igloo iris island ivory jacket jasmine jelly
    jigsaw juniper kayak kettle kite kiwi koala ladder lagoon lantern lemon lentil
    lettuce lilac lime linen lizard llama lobby locket magnet mango maple marble meadow
    meteor mint mitten mosaic museum napkin nectar nickel noodle nutmeg oak oasis oboe
    ocean olive onion opal orange orbit orchid otter owl paddle panda paper parrot pasta
    peanut pebble pecan pelican pencil pepper piano pickle pigeon pine planet plum
    pocket pollen pond poppy potato pretzel prism pumpkin puzzle quartz quilt rabbit
    radish raft raisin ranch raven ribbon river robin rocket saffron sage salad sandal
    saucer scarf shell shovel silver sketch sled snail sofa sparrow spinach spoon spruce
    squash stamp stone straw summit sunset swan table teapot tennis thistle tiger timber
    toast tomato topaz tower tractor trolley trumpet tuba tulip tunnel turtle valley
    vanilla violin waffle wagon walnut water whale wheat willow window wombat yacht yarn
    yogurt zebra zinc zipper
    """.split()
)
WORD_INDEX: dict[str, int] = {word: index for index, word in enumerate(WORDS)}
_WORD_BY_PREFIX: dict[str, str] = {word[:3]: word for word in WORDS}


# -- base64url without padding (SPEC.md section 1) ------------------------------------------


def b64encode(data: bytes) -> str:
    """``data`` as base64url without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64decode(text: str, *, size: int, name: str) -> bytes:
    """Decode base64url without padding, refusing every non-canonical spelling.

    Raises:
        MalformedError: not base64url, padded, of the wrong length, or not canonical.
    """
    if not isinstance(text, str) or not text or not set(text) <= _B64URL_ALPHABET:
        raise MalformedError(f"{name} is not base64url without padding")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise MalformedError(f"{name} is not base64url without padding") from None
    if len(data) != size:
        raise MalformedError(f"{name} must be {size} bytes")
    if b64encode(data) != text:
        raise MalformedError(f"{name} is not the canonical base64url of its bytes")
    return data


# -- field checks shared by the invite and the messages -------------------------------------


def check_relay_url(url: object) -> str:
    """Check a relay's base URL: ``http`` or ``https``, a host, no credentials or fragment.

    Raises:
        MalformedError: anything else.
    """
    if not isinstance(url, str) or not 0 < len(url) <= MAX_RELAY_URL_LENGTH:
        raise MalformedError(f"a relay URL is 1 to {MAX_RELAY_URL_LENGTH} characters")
    if not url.isascii() or any(ch in url for ch in " \t\r\n\x00\x7f"):
        raise MalformedError("a relay URL is printable ASCII")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise MalformedError("the relay URL does not parse") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise MalformedError("a relay URL is http:// or https:// with a host")
    if parts.username is not None or parts.password is not None or parts.fragment:
        raise MalformedError("a relay URL carries no credentials and no fragment")
    if parts.query or (port is not None and not 0 < port < 65536):
        raise MalformedError("a relay URL has no query and a valid port")
    return url


def check_channel(channel: object) -> str:
    """Check a rendezvous channel id: 1 to 64 characters of the base64url alphabet.

    Raises:
        MalformedError: anything else.
    """
    if not isinstance(channel, str) or not _CHANNEL_RE.fullmatch(channel):
        raise MalformedError("a channel id is 1 to 64 characters of A-Z a-z 0-9 - _")
    return channel


def check_nameplate(nameplate: object) -> str:
    """Check a channel nameplate: 1 to 8 decimal digits without leading zeros.

    Raises:
        MalformedError: anything else.
    """
    if not isinstance(nameplate, str) or not _NAMEPLATE_RE.fullmatch(nameplate):
        raise MalformedError("a nameplate is 1 to 8 decimal digits, no leading zero")
    return nameplate


# -- the typed code (SPEC.md section 11.3) --------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class TypedCode:
    """``<nameplate>-<word>-<word>-<word>-<word>``: the SPAKE2 password of a code pairing."""

    nameplate: str
    words: tuple[str, ...] = field(repr=False)

    def __post_init__(self) -> None:
        check_nameplate(self.nameplate)
        if len(self.words) != CODE_WORDS or any(word not in WORD_INDEX for word in self.words):
            raise MalformedError(f"a code has {CODE_WORDS} words from the word list")

    @classmethod
    def from_secret(cls, *, nameplate: str, secret: bytes) -> TypedCode:
        """The code whose words spell ``secret``, one word per byte.

        Raises:
            UsageError: ``secret`` is not :data:`CODE_SECRET_BYTES` bytes.
            MalformedError: ``nameplate`` is not a nameplate.
        """
        if not isinstance(secret, bytes) or len(secret) != CODE_SECRET_BYTES:
            raise UsageError(f"a code secret is {CODE_SECRET_BYTES} bytes")
        return cls(nameplate=nameplate, words=tuple(WORDS[byte] for byte in secret))

    @property
    def secret(self) -> bytes:
        """The bytes the words stand for."""
        return bytes(WORD_INDEX[word] for word in self.words)

    @property
    def password(self) -> bytes:
        """The exact SPAKE2 password: the code's text in ASCII (SPEC.md section 11.5)."""
        return str(self).encode("ascii")

    def __str__(self) -> str:
        return "-".join((self.nameplate, *self.words))


def parse_code(text: str) -> TypedCode:
    """Read a code as a person typed it.

    Case, surrounding blanks, hyphens or blanks between the parts, and leading zeros of
    the nameplate do not matter; the words must be exactly words of the list.

    Raises:
        MalformedError: not a nameplate followed by four words of the list. The message
            names the first unknown word and, when its first three letters match a word
            of the list, suggests that word.
    """
    if not isinstance(text, str) or len(text) > 128:
        raise MalformedError("a code is a nameplate and four words")
    parts = [part for part in re.split(r"[\s-]+", text.strip().lower()) if part]
    if len(parts) != 1 + CODE_WORDS:
        raise MalformedError("a code is a nameplate and four words, like 42-apple-river-...")
    nameplate, *words = parts
    if nameplate.isdigit() and nameplate.isascii():
        nameplate = nameplate.lstrip("0") or "0"
    check_nameplate(nameplate)
    for word in words:
        if word not in WORD_INDEX:
            guess = _WORD_BY_PREFIX.get(word[:3])
            hint = f" (did you mean {guess!r}?)" if guess else ""
            raise MalformedError(f"{word!r} is not a code word{hint}")
    return TypedCode(nameplate=nameplate, words=tuple(words))


# -- the QR invite (SPEC.md section 11.2) ---------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class InviteUri:
    """The contents of an invite's QR code. Holds the secret ``s``: never log it."""

    relay: str
    channel: str
    key: bytes
    secret: bytes = field(repr=False)
    expires: int
    purpose: Purpose

    def __post_init__(self) -> None:
        check_relay_url(self.relay)
        check_channel(self.channel)
        if not isinstance(self.key, bytes) or len(self.key) != X25519_KEY_BYTES:
            raise MalformedError(f"the invite key is {X25519_KEY_BYTES} bytes")
        if not isinstance(self.secret, bytes) or len(self.secret) != SECRET_BYTES:
            raise MalformedError(f"the invite secret is {SECRET_BYTES} bytes")
        if not isinstance(self.expires, int) or isinstance(self.expires, bool):
            raise MalformedError("the expiry is an integer")
        if not _EXPIRY_RE.fullmatch(str(self.expires)):
            raise MalformedError("the expiry is a positive number of at most 12 digits")
        if not isinstance(self.purpose, Purpose):
            raise MalformedError("the purpose is partner or self")

    def to_uri(self) -> str:
        """The one canonical URI of this invite; parameters in the order r, c, k, s, x, m."""
        return (
            f"{URI_PREFIX}{URI_VERSION}?r={quote(self.relay, safe='')}&c={self.channel}"
            f"&k={b64encode(self.key)}&s={b64encode(self.secret)}"
            f"&x={self.expires}&m={self.purpose.value}"
        )

    def check_expiry(self, now: int) -> None:
        """Raises ExpiredError when ``now`` is at or past the expiry."""
        if now >= self.expires:
            raise ExpiredError("the invite has expired; ask for a new code")


_URI_KEYS = ("r", "c", "k", "s", "x", "m")


def parse_invite_uri(text: str, *, now: int) -> InviteUri:
    """Parse a QR invite, accepting only the canonical form, and check its expiry.

    Raises:
        UnsupportedVersionError: an ``accord://pair/`` URI of another version.
        MalformedError: anything that is not exactly an invite of version 1 as
            :meth:`InviteUri.to_uri` writes it.
        ExpiredError: ``now`` is at or past the invite's expiry.
    """
    if not isinstance(text, str):
        raise MalformedError("an invite is text")
    if len(text) > MAX_URI_LENGTH or not text.isascii():
        raise MalformedError(f"an invite is at most {MAX_URI_LENGTH} ASCII characters")
    if not text.startswith(URI_PREFIX):
        raise MalformedError("not an accord://pair/ invite")
    version, sep, query = text[len(URI_PREFIX) :].partition("?")
    if not version.isdigit():
        raise MalformedError("the invite has no version number")
    if version != str(URI_VERSION):
        raise UnsupportedVersionError(f"invite version {version} is not supported")
    if not sep:
        raise MalformedError("the invite has no parameters")
    values: dict[str, str] = {}
    for pair in query.split("&"):
        name, eq, value = pair.partition("=")
        if not eq or name not in _URI_KEYS or name in values:
            raise MalformedError("invite parameters are exactly r, c, k, s, x, m, once each")
        if not value or not set(value) <= _QUERY_VALUE_ALPHABET:
            raise MalformedError(f"invite parameter {name} is empty or badly escaped")
        values[name] = value
    if tuple(values) != _URI_KEYS:
        raise MalformedError("invite parameters are exactly r, c, k, s, x, m, in this order")
    if not _EXPIRY_RE.fullmatch(values["x"]):
        raise MalformedError("the expiry is a positive number of at most 12 digits")
    try:
        purpose = Purpose(values["m"])
    except ValueError:
        raise MalformedError("the purpose is partner or self") from None
    try:
        relay = unquote(values["r"], errors="strict")
    except UnicodeDecodeError:
        raise MalformedError("the relay URL is not UTF-8") from None
    invite = InviteUri(
        relay=relay,
        channel=values["c"],
        key=b64decode(values["k"], size=X25519_KEY_BYTES, name="the invite key"),
        secret=b64decode(values["s"], size=SECRET_BYTES, name="the invite secret"),
        expires=int(values["x"]),
        purpose=purpose,
    )
    if invite.to_uri() != text:
        raise MalformedError("the invite is not in its canonical form")
    invite.check_expiry(now)
    return invite
