"""The messages two devices exchange through the relay's rendezvous while pairing.

Every message is a canonical CBOR map (SPEC.md section 2) with a ``type`` field
(SPEC.md section 11.6). Three travel as they are, and the relay can read them:

* ``pake``: the inviter's SPAKE2 message, posted as soon as the channel exists;
* ``hello``: the joiner's key-agreement message and its key confirmation;
* ``sealed``: an AEAD box holding one of the other messages.

The other five only ever travel inside a ``sealed`` box: ``offer``, ``request``,
``welcome``, ``decline`` and ``done``.

Each message is a frozen, keyword-only dataclass that checks itself when it is built,
so a decoded message is a valid one. ``from_map`` accepts exactly the fields of the
spec's table, no more and no fewer; the fields the table marks optional (the member's
private space in self pairing, SPEC.md 11.6.3 to 11.6.5) are absent, never null, when
they are not used.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar

from protocol import encoding
from protocol.crypto import MEMBER_ID_BYTES, PUBLIC_KEY_BYTES, SIGNATURE_BYTES, SPACE_ID_BYTES
from protocol.entry import SeenHead
from protocol.errors import MalformedError, OversizedError, UnsupportedVersionError
from protocol.pairing_codes import X25519_KEY_BYTES, Purpose, check_relay_url

#: Version of the pairing messages; the ``v`` of ``pake`` and ``hello``.
PAIRING_VERSION = 1
#: A SPAKE2 message: one side byte (``A`` or ``B``) and a 32-byte group element.
PAKE_MESSAGE_BYTES = 33
PAKE_SIDE_INVITER = b"A"
PAKE_SIDE_JOINER = b"B"
#: The joiner's key-confirmation MAC.
MAC_BYTES = 32
#: Largest encoded rendezvous message; the relay refuses bigger ones (SPEC.md 9.8).
MAX_MESSAGE_BYTES = 16 * 1024
#: Sealed plaintexts are padded to a multiple of this many bytes.
PAD_BLOCK = 256
#: Largest padded plaintext: the biggest multiple of PAD_BLOCK that still fits, with the
#: AEAD tag and the ``sealed`` map around it, in MAX_MESSAGE_BYTES.
MAX_PADDED_PLAINTEXT = MAX_MESSAGE_BYTES - PAD_BLOCK
#: Longest display name, in characters.
MAX_NAME_CHARS = 64
#: Most feed heads or key envelopes one welcome carries.
MAX_WELCOME_ITEMS = 256


class MessageType(StrEnum):
    """The ``type`` of every pairing message (SPEC.md section 11.6)."""

    PAKE = "pake"  # 11.6.1: inviter -> joiner, in clear, first
    HELLO = "hello"  # 11.6.2: joiner -> inviter, in clear
    SEALED = "sealed"  # 11.7: either direction, an AEAD box
    OFFER = "offer"  # 11.6.3: inviter -> joiner, sealed
    REQUEST = "request"  # 11.6.4: joiner -> inviter, sealed
    WELCOME = "welcome"  # 11.6.5: inviter -> joiner, sealed, after approval
    DECLINE = "decline"  # 11.6.6: inviter -> joiner, sealed, instead of a welcome
    DONE = "done"  # 11.6.7: joiner -> inviter, sealed, last


class JoinMode(StrEnum):
    """How the joiner got the invite: the ``mode`` of a ``hello`` (SPEC.md 11.6.2)."""

    QR = "qr"  # scanned the QR code: X25519 with the invite key, keyed by the secret s
    CODE = "code"  # typed the code: SPAKE2 with the code as password


def check_display_name(name: object) -> str:
    """Check a display name: 1 to 64 characters of NFC text, no control or format
    characters, no line breaks, no blanks at either end.

    Raises:
        MalformedError: anything else.
    """
    if not isinstance(name, str) or not 0 < len(name) <= MAX_NAME_CHARS:
        raise MalformedError(f"a display name is 1 to {MAX_NAME_CHARS} characters")
    if name != name.strip() or not unicodedata.is_normalized("NFC", name):
        raise MalformedError("a display name is NFC text without blanks at either end")
    for char in name:
        if unicodedata.category(char) in {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}:
            raise MalformedError("a display name has no control or format characters")
    return name


def _bytes(value: object, size: int, name: str) -> bytes:
    if not isinstance(value, bytes) or len(value) != size:
        raise MalformedError(f"{name} must be {size} bytes")
    return value


def _check_keys(
    fields: dict[str, Any], expected: set[str], kind: MessageType, *, optional: str | None = None
) -> None:
    """The fields must be exactly ``expected``, plus ``optional`` when it is present.

    An optional field that is not used is absent: present with null is malformed.
    """
    if optional is not None and optional in fields:
        if fields[optional] is None:
            raise MalformedError(f"{optional} is left out when unused, never null")
        expected = expected | {optional}
    if set(fields) != expected:
        raise MalformedError(f"a {kind.value} message has exactly the fields of SPEC 11.6")


def _check_version(fields: dict[str, Any], kind: MessageType) -> None:
    version = fields.get("v")
    if not isinstance(version, int) or isinstance(version, bool):
        raise MalformedError(f"a {kind.value} message has an integer v")
    if version != PAIRING_VERSION:
        raise UnsupportedVersionError(f"pairing message version {version} is not supported")


# -- messages in clear ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Pake:
    """The inviter's SPAKE2 message (side A)."""

    TYPE: ClassVar[MessageType] = MessageType.PAKE
    pake: bytes

    def __post_init__(self) -> None:
        _bytes(self.pake, PAKE_MESSAGE_BYTES, "a SPAKE2 message")
        if self.pake[:1] != PAKE_SIDE_INVITER:
            raise MalformedError("the inviter's SPAKE2 message is side A")

    def to_map(self) -> dict[str, Any]:
        return {"type": self.TYPE.value, "v": PAIRING_VERSION, "pake": self.pake}

    @classmethod
    def from_map(cls, fields: dict[str, Any]) -> Pake:
        _check_version(fields, cls.TYPE)
        _check_keys(fields, {"type", "v", "pake"}, cls.TYPE)
        return cls(pake=fields["pake"])


@dataclass(frozen=True, slots=True, kw_only=True)
class Hello:
    """The joiner's key agreement and proof that it knows the invite's secret or code.

    ``key`` (QR mode) is the joiner's ephemeral X25519 public key; ``pake`` (code mode)
    is its SPAKE2 message (side B). Exactly one of the two is present.
    """

    TYPE: ClassVar[MessageType] = MessageType.HELLO
    mode: JoinMode
    mac: bytes
    key: bytes | None = None
    pake: bytes | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.mode, JoinMode):
            raise MalformedError("a hello's mode is qr or code")
        _bytes(self.mac, MAC_BYTES, "the key-confirmation MAC")
        if self.mode is JoinMode.QR:
            _bytes(self.key, X25519_KEY_BYTES, "the joiner's X25519 key")
            if self.pake is not None:
                raise MalformedError("a QR hello carries no SPAKE2 message")
        else:
            _bytes(self.pake, PAKE_MESSAGE_BYTES, "a SPAKE2 message")
            if self.key is not None:
                raise MalformedError("a code hello carries no X25519 key")
            if self.pake is not None and self.pake[:1] != PAKE_SIDE_JOINER:
                raise MalformedError("the joiner's SPAKE2 message is side B")

    def to_map(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": self.TYPE.value,
            "v": PAIRING_VERSION,
            "mode": self.mode.value,
            "mac": self.mac,
        }
        if self.mode is JoinMode.QR:
            body["key"] = self.key
        else:
            body["pake"] = self.pake
        return body

    @classmethod
    def from_map(cls, fields: dict[str, Any]) -> Hello:
        _check_version(fields, cls.TYPE)
        try:
            mode = JoinMode(str(fields.get("mode")))
        except ValueError:
            raise MalformedError("a hello's mode is qr or code") from None
        extra = "key" if mode is JoinMode.QR else "pake"
        _check_keys(fields, {"type", "v", "mode", "mac", extra}, cls.TYPE)
        return cls(mode=mode, mac=fields["mac"], key=fields.get("key"), pake=fields.get("pake"))


@dataclass(frozen=True, slots=True, kw_only=True)
class Sealed:
    """An AEAD box: message number ``seq`` of its direction (SPEC.md section 11.7)."""

    TYPE: ClassVar[MessageType] = MessageType.SEALED
    seq: int
    box: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.seq, int) or isinstance(self.seq, bool) or not 0 <= self.seq < 16:
            raise MalformedError("a sealed message's seq is 0 to 15")
        if not isinstance(self.box, bytes):
            raise MalformedError("a sealed message's box is bytes")

    def header(self) -> bytes:
        """The AEAD's associated data: the encoded map without ``box``."""
        return encoding.encode({"type": self.TYPE.value, "seq": self.seq})

    def to_map(self) -> dict[str, Any]:
        return {"type": self.TYPE.value, "seq": self.seq, "box": self.box}

    @classmethod
    def from_map(cls, fields: dict[str, Any]) -> Sealed:
        _check_keys(fields, {"type", "seq", "box"}, cls.TYPE)
        return cls(seq=fields["seq"], box=fields["box"])


# -- messages inside sealed boxes ---------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Offer:
    """What the joiner needs to know before it asks to join.

    ``member`` is the member the new device will belong to in self pairing (the
    inviter's member id); in partner pairing it is None, since the new member's id is
    derived from the joiner's own device key. ``private`` is that member's private space
    (SPEC.md 7.2), offered in self pairing only, when the inviting device is in it.
    """

    TYPE: ClassVar[MessageType] = MessageType.OFFER
    purpose: Purpose
    space: bytes
    inviter: bytes
    member: bytes | None
    name: str
    private: bytes | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.purpose, Purpose):
            raise MalformedError("an offer's purpose is partner or self")
        _bytes(self.space, SPACE_ID_BYTES, "a space id")
        _bytes(self.inviter, PUBLIC_KEY_BYTES, "the inviter's device key")
        if self.purpose is Purpose.SELF:
            _bytes(self.member, MEMBER_ID_BYTES, "the member of a self pairing")
        elif self.member is not None:
            raise MalformedError("a partner offer names no member")
        check_display_name(self.name)
        if self.private is not None:
            if self.purpose is not Purpose.SELF:
                raise MalformedError("only a self offer carries a private space")
            _bytes(self.private, SPACE_ID_BYTES, "a private space id")
            if self.private == self.space:
                raise MalformedError("the private space is another space than the offered one")

    def to_map(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": self.TYPE.value,
            "purpose": self.purpose.value,
            "space": self.space,
            "inviter": self.inviter,
            "member": self.member,
            "name": self.name,
        }
        if self.private is not None:
            body["private"] = self.private
        return body

    @classmethod
    def from_map(cls, fields: dict[str, Any]) -> Offer:
        expected = {"type", "purpose", "space", "inviter", "member", "name"}
        _check_keys(fields, expected, cls.TYPE, optional="private")
        try:
            purpose = Purpose(fields["purpose"])
        except ValueError:
            raise MalformedError("an offer's purpose is partner or self") from None
        return cls(
            purpose=purpose,
            space=fields["space"],
            inviter=fields["inviter"],
            member=fields["member"],
            name=fields["name"],
            private=fields.get("private"),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Request:
    """The joiner's device key, display name and join proof (SPEC.md section 5).

    ``private_proof`` is a second join proof, bound to the offer's private space, when
    the offer carried one and the joiner takes it up (SPEC.md 11.6.4).
    """

    TYPE: ClassVar[MessageType] = MessageType.REQUEST
    device: bytes
    name: str
    proof: bytes = field(repr=False)
    private_proof: bytes | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        _bytes(self.device, PUBLIC_KEY_BYTES, "the joiner's device key")
        check_display_name(self.name)
        _bytes(self.proof, SIGNATURE_BYTES, "the join proof")
        if self.private_proof is not None:
            _bytes(self.private_proof, SIGNATURE_BYTES, "the private space's join proof")

    def to_map(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": self.TYPE.value,
            "device": self.device,
            "name": self.name,
            "proof": self.proof,
        }
        if self.private_proof is not None:
            body["private_proof"] = self.private_proof
        return body

    @classmethod
    def from_map(cls, fields: dict[str, Any]) -> Request:
        expected = {"type", "device", "name", "proof"}
        _check_keys(fields, expected, cls.TYPE, optional="private_proof")
        return cls(
            device=fields["device"],
            name=fields["name"],
            proof=fields["proof"],
            private_proof=fields.get("private_proof"),
        )


def _byte_items(value: object, name: str) -> tuple[bytes, ...]:
    if isinstance(value, tuple):
        value = list(value)
    if not isinstance(value, list):
        raise MalformedError(f"{name} is an array")
    if len(value) > MAX_WELCOME_ITEMS:
        raise MalformedError(f"{name} has more than {MAX_WELCOME_ITEMS} items")
    if not value:
        raise MalformedError(f"{name}: at least one is needed")
    if not all(isinstance(item, bytes) and item for item in value):
        raise MalformedError(f"{name} holds non-empty byte strings")
    return tuple(value)


def _heads(value: object) -> tuple[SeenHead, ...]:
    if isinstance(value, tuple) and all(isinstance(item, SeenHead) for item in value):
        heads: tuple[SeenHead, ...] = value
    else:
        if not isinstance(value, list):
            raise MalformedError("the heads are an array")
        if len(value) > MAX_WELCOME_ITEMS:
            raise MalformedError(f"the heads have more than {MAX_WELCOME_ITEMS} items")
        items = []
        for item in value:
            if not isinstance(item, list) or len(item) != 3:
                raise MalformedError("a head is [device, seq, id]")
            items.append(SeenHead(device=item[0], seq=item[1], id=item[2]))
        heads = tuple(items)
    if len(heads) > MAX_WELCOME_ITEMS:
        raise MalformedError(f"the heads have more than {MAX_WELCOME_ITEMS} items")
    devices = [head.device for head in heads]
    if not devices or devices != sorted(set(devices)):
        raise MalformedError("the heads are sorted by device, one per device, at least one")
    return heads


def _check_added(value: object) -> None:
    if not isinstance(value, bytes) or not value:
        raise MalformedError("the added entry is a non-empty byte string")


@dataclass(frozen=True, slots=True, kw_only=True)
class PrivateWelcome:
    """The member's private space, in the welcome of a self pairing (SPEC.md 11.6.5).

    The same parts as the welcome's own, for the offer's ``private`` space: the heads of
    its feeds once ``added`` (the roster entry adding the device there) is appended, and
    its epoch keys wrapped for the new device. It lives on the welcome's relay.
    """

    space: bytes
    heads: tuple[SeenHead, ...] = field(repr=False)
    envelopes: tuple[bytes, ...] = field(repr=False)
    added: bytes = field(repr=False)

    FIELDS: ClassVar[frozenset[str]] = frozenset({"space", "heads", "envelopes", "added"})

    def __post_init__(self) -> None:
        _bytes(self.space, SPACE_ID_BYTES, "a private space id")
        object.__setattr__(self, "heads", _heads(self.heads))
        object.__setattr__(self, "envelopes", _byte_items(self.envelopes, "the envelopes"))
        _check_added(self.added)

    def to_map(self) -> dict[str, Any]:
        return {
            "space": self.space,
            "heads": [head.to_wire() for head in self.heads],
            "envelopes": list(self.envelopes),
            "added": self.added,
        }

    @classmethod
    def from_map(cls, fields: object) -> PrivateWelcome:
        if not isinstance(fields, dict) or set(fields) != cls.FIELDS:
            raise MalformedError("a welcome's private part has exactly the fields of SPEC 11.6.5")
        return cls(
            space=fields["space"],
            heads=_heads(fields["heads"]),
            envelopes=_byte_items(fields["envelopes"], "the envelopes"),
            added=fields["added"],
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Welcome:
    """Everything the new device needs to enter the space, sent after approval.

    ``heads`` is the inviter's view of every feed of the space once it has appended
    ``added`` (the encoded, signed roster entry that adds the new device): the new device
    fetches the feeds from the relay and checks that they reach these heads, so the relay
    cannot hide or roll back anything the inviter had seen. ``envelopes`` are the encoded
    key envelopes of every epoch, wrapped for the new device (SPEC.md section 11.6.5).
    ``private`` is the member's private space, when the request asked for it.
    """

    TYPE: ClassVar[MessageType] = MessageType.WELCOME
    space: bytes
    relay: str
    heads: tuple[SeenHead, ...] = field(repr=False)
    envelopes: tuple[bytes, ...] = field(repr=False)
    added: bytes = field(repr=False)
    private: PrivateWelcome | None = None

    def __post_init__(self) -> None:
        _bytes(self.space, SPACE_ID_BYTES, "a space id")
        check_relay_url(self.relay)
        object.__setattr__(self, "heads", _heads(self.heads))
        object.__setattr__(self, "envelopes", _byte_items(self.envelopes, "the envelopes"))
        _check_added(self.added)
        if self.private is not None:
            if not isinstance(self.private, PrivateWelcome):
                raise MalformedError("a welcome's private part is a map")
            if self.private.space == self.space:
                raise MalformedError("the private space is another space than the welcome's")

    def to_map(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": self.TYPE.value,
            "space": self.space,
            "relay": self.relay,
            "heads": [head.to_wire() for head in self.heads],
            "envelopes": list(self.envelopes),
            "added": self.added,
        }
        if self.private is not None:
            body["private"] = self.private.to_map()
        return body

    @classmethod
    def from_map(cls, fields: dict[str, Any]) -> Welcome:
        expected = {"type", "space", "relay", "heads", "envelopes", "added"}
        _check_keys(fields, expected, cls.TYPE, optional="private")
        private = fields.get("private")
        return cls(
            space=fields["space"],
            relay=fields["relay"],
            heads=_heads(fields["heads"]),
            envelopes=_byte_items(fields["envelopes"], "the envelopes"),
            added=fields["added"],
            private=None if private is None else PrivateWelcome.from_map(private),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Decline:
    """The inviter's person did not approve. It carries no reason, by design."""

    TYPE: ClassVar[MessageType] = MessageType.DECLINE

    def to_map(self) -> dict[str, Any]:
        return {"type": self.TYPE.value}

    @classmethod
    def from_map(cls, fields: dict[str, Any]) -> Decline:
        _check_keys(fields, {"type"}, cls.TYPE)
        return cls()


@dataclass(frozen=True, slots=True, kw_only=True)
class Done:
    """The joiner received the welcome; the inviter may close the channel."""

    TYPE: ClassVar[MessageType] = MessageType.DONE

    def to_map(self) -> dict[str, Any]:
        return {"type": self.TYPE.value}

    @classmethod
    def from_map(cls, fields: dict[str, Any]) -> Done:
        _check_keys(fields, {"type"}, cls.TYPE)
        return cls()


ClearMessage = Pake | Hello | Sealed
InnerMessage = Offer | Request | Welcome | Decline | Done
Message = ClearMessage | InnerMessage

_CLEAR: dict[str, type[Pake] | type[Hello] | type[Sealed]] = {
    cls.TYPE.value: cls for cls in (Pake, Hello, Sealed)
}
_INNER: dict[str, type[Offer] | type[Request] | type[Welcome] | type[Decline] | type[Done]] = {
    cls.TYPE.value: cls for cls in (Offer, Request, Welcome, Decline, Done)
}


def encode_message(message: Message) -> bytes:
    """The canonical encoding of a pairing message.

    Raises:
        OversizedError: a clear message above :data:`MAX_MESSAGE_BYTES`, or a sealed
            message's plaintext above :data:`MAX_PADDED_PLAINTEXT` less one byte.
    """
    data = encoding.encode(message.to_map())
    limit = MAX_PADDED_PLAINTEXT - 1 if isinstance(message, InnerMessage) else MAX_MESSAGE_BYTES
    if len(data) > limit:
        raise OversizedError(f"a {message.TYPE.value} message is at most {limit} bytes")
    return data


def _type_of(fields: dict[str, Any]) -> str:
    kind = fields.get("type")
    if not isinstance(kind, str):
        raise MalformedError("a pairing message has a text type")
    return kind


def decode_clear(data: bytes) -> ClearMessage:
    """Decode a message as it travels through the relay: ``pake``, ``hello`` or ``sealed``.

    Raises:
        OversizedError: more than :data:`MAX_MESSAGE_BYTES`.
        MalformedError: not the canonical encoding of one of those three messages.
        UnsupportedVersionError: a ``pake`` or ``hello`` of another version.
    """
    fields = encoding.decode_map(data, max_size=MAX_MESSAGE_BYTES)
    cls = _CLEAR.get(_type_of(fields))
    if cls is None:
        raise MalformedError("not a message that travels in clear")
    return cls.from_map(fields)


def decode_inner(data: bytes) -> InnerMessage:
    """Decode the plaintext of a sealed box.

    Raises:
        OversizedError: more than :data:`MAX_PADDED_PLAINTEXT` bytes.
        MalformedError: not the canonical encoding of a message that travels sealed.
    """
    fields = encoding.decode_map(data, max_size=MAX_PADDED_PLAINTEXT)
    cls = _INNER.get(_type_of(fields))
    if cls is None:
        raise MalformedError("not a message that travels sealed")
    return cls.from_map(fields)
