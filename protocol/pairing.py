"""Pairing: the key agreement, the SAS and the two state machines (SPEC.md section 11).

Theory of operation:

* The device already in the space is the **inviter**; the new device is the **joiner**.
  The inviter makes an :class:`Invite` (an ephemeral X25519 key pair, a 32-byte secret
  ``s``, a 4-byte code secret) for a rendezvous channel on the relay, shows the QR URI
  and the typed code, and posts its SPAKE2 message (``pake``) to the channel at once.
* The joiner reads that ``pake`` and answers with a ``hello``:
  - QR mode: its ephemeral X25519 key. Both sides compute ``X25519(e_J, k)`` and key
    BLAKE2b with ``s`` over it and the transcript hash, which holds both public keys.
  - code mode: its SPAKE2 message, with the typed code as password, so a relay that
    stands in for either side gets exactly one guess at the 32-bit code.
  Either way the ``hello`` carries a MAC that only a holder of ``s`` (or the code) can
  make. A relay that swaps a key cannot produce it: the inviter refuses and burns.
* From then on every message is a ``sealed`` AEAD box under a per-direction key, with a
  per-direction counter as its nonce: ``offer`` (space, inviter, member), ``request``
  (the joiner's device key, name and join proof), then, after the inviter's person
  approves, ``welcome`` (feed heads, key envelopes, the roster entry adding the device) or
  ``decline``, and last ``done``.
* Self pairing may also link the member's private space: the offer names it, the request
  adds a second join proof bound to it, and the welcome carries the same three parts for
  it. Each proof is bound to its own space, so neither can admit the device elsewhere.
* Both screens show the same six-digit SAS, derived from the session key and the
  transcript, before anyone approves.
* :data:`TRANSITIONS` is the one table of legal moves. Any failure (a bad MAC, a box that
  does not open, a message out of turn, expiry) raises a typed error and leaves the
  machine in the terminal ``burned`` state; the caller then burns the relay channel.

The machines do no I/O: they turn bytes received into messages and calls into bytes to
send. Randomness is an optional parameter everywhere, for known-answer vectors.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import ClassVar, NoReturn

import nacl.bindings as sodium
import spake2

from protocol.crypto import member_id_of, random_bytes, verify_signature
from protocol.errors import (
    ExpiredError,
    MalformedError,
    PairingFailedError,
    ProtocolError,
    UnexpectedMessageError,
    UsageError,
)
from protocol.pairing_codes import (
    CODE_SECRET_BYTES,
    INVITE_LIFETIME,
    SECRET_BYTES,
    X25519_KEY_BYTES,
    InviteUri,
    Purpose,
    TypedCode,
    check_channel,
    check_nameplate,
    check_relay_url,
)
from protocol.pairing_keys import (
    SPAKE_ID_INVITER,
    SPAKE_ID_JOINER,
    SessionKeys,
    code_root,
    code_transcript,
    open_sealed,
    qr_root,
    qr_transcript,
    seal,
    spake_entropy,
    spake_finish,
    x25519_public,
    x25519_shared,
)
from protocol.pairing_messages import (
    Decline,
    Done,
    Hello,
    JoinMode,
    Message,
    Offer,
    Pake,
    Request,
    Sealed,
    Welcome,
    decode_clear,
    encode_message,
)
from protocol.pairing_welcome import check_welcome
from protocol.roster_records import join_message

#: After an invite's expiry, a session that has started may go on this long before
#: both sides give up. The relay may close the channel sooner.
SESSION_GRACE = 180


class Role(StrEnum):
    INVITER = "inviter"  # the device already in the space; shows the codes, approves
    JOINER = "joiner"  # the new device; scans or types the code


class State(StrEnum):
    """States of both machines (SPEC.md section 11.8)."""

    START = "start"
    AWAIT_HELLO = "await-hello"
    KEYED = "keyed"
    AWAIT_REQUEST = "await-request"
    AWAIT_APPROVAL = "await-approval"
    AWAIT_DONE = "await-done"
    READY = "ready"
    AWAIT_OFFER = "await-offer"
    OFFERED = "offered"
    AWAIT_DECISION = "await-decision"
    WELCOMED = "welcomed"
    DONE = "done"
    DECLINED = "declined"
    BURNED = "burned"


class Move(StrEnum):
    """Everything that changes a machine's state: a message sent or received, or a failure."""

    SEND_PAKE = "send pake"
    RECV_PAKE = "receive pake"
    SEND_HELLO = "send hello"
    RECV_HELLO = "receive hello"
    SEND_OFFER = "send offer"
    RECV_OFFER = "receive offer"
    SEND_REQUEST = "send request"
    RECV_REQUEST = "receive request"
    SEND_WELCOME = "send welcome"
    RECV_WELCOME = "receive welcome"
    SEND_DECLINE = "send decline"
    RECV_DECLINE = "receive decline"
    SEND_DONE = "send done"
    RECV_DONE = "receive done"
    FAIL = "fail"


TERMINAL_STATES = frozenset({State.DONE, State.DECLINED, State.BURNED})

_I, _J = Role.INVITER, Role.JOINER
_LEGAL: dict[tuple[Role, State, Move], State] = {
    (_I, State.START, Move.SEND_PAKE): State.AWAIT_HELLO,
    (_I, State.AWAIT_HELLO, Move.RECV_HELLO): State.KEYED,
    (_I, State.KEYED, Move.SEND_OFFER): State.AWAIT_REQUEST,
    (_I, State.AWAIT_REQUEST, Move.RECV_REQUEST): State.AWAIT_APPROVAL,
    (_I, State.AWAIT_APPROVAL, Move.SEND_WELCOME): State.AWAIT_DONE,
    (_I, State.AWAIT_APPROVAL, Move.SEND_DECLINE): State.DECLINED,
    (_I, State.AWAIT_DONE, Move.RECV_DONE): State.DONE,
    (_J, State.START, Move.RECV_PAKE): State.READY,
    (_J, State.READY, Move.SEND_HELLO): State.AWAIT_OFFER,
    (_J, State.AWAIT_OFFER, Move.RECV_OFFER): State.OFFERED,
    (_J, State.OFFERED, Move.SEND_REQUEST): State.AWAIT_DECISION,
    (_J, State.AWAIT_DECISION, Move.RECV_WELCOME): State.WELCOMED,
    (_J, State.AWAIT_DECISION, Move.RECV_DECLINE): State.DECLINED,
    (_J, State.WELCOMED, Move.SEND_DONE): State.DONE,
}
#: Every legal transition of both machines: (role, state, move) -> next state. A failure
#: in any state that is not terminal moves to ``burned``. Nothing else is legal.
TRANSITIONS: dict[tuple[Role, State, Move], State] = {
    **_LEGAL,
    **{
        (role, state, Move.FAIL): State.BURNED
        for (role, state, _move) in _LEGAL
        if state not in TERMINAL_STATES
    },
}


def transition_table() -> str:
    """:data:`TRANSITIONS` as the Markdown table printed in SPEC.md section 11.8."""
    rows = ["| role | state | move | next state |", "|---|---|---|---|"]
    for (role, state, move), after in TRANSITIONS.items():
        if move is not Move.FAIL:
            rows.append(f"| {role.value} | `{state.value}` | {move.value} | `{after.value}` |")
    return "\n".join(rows)


def _or_random(value: bytes | None, size: int) -> bytes:
    return random_bytes(size) if value is None else value


# -- the invite ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Invite:
    """The inviter's side of an invite: the channel and its three secrets. Never log it."""

    relay: str
    channel: str
    nameplate: str
    purpose: Purpose
    expires: int
    ephemeral_secret: bytes = field(repr=False)
    secret: bytes = field(repr=False)
    code_secret: bytes = field(repr=False)

    def __post_init__(self) -> None:
        check_relay_url(self.relay)
        check_channel(self.channel)
        check_nameplate(self.nameplate)
        for value, size in (
            (self.ephemeral_secret, X25519_KEY_BYTES),
            (self.secret, SECRET_BYTES),
            (self.code_secret, CODE_SECRET_BYTES),
        ):
            if not isinstance(value, bytes) or len(value) != size:
                raise UsageError("an invite secret has the wrong size")

    @classmethod
    def create(
        cls,
        *,
        relay: str,
        channel: str,
        nameplate: str,
        purpose: Purpose,
        now: int,
        lifetime: int = INVITE_LIFETIME,
        ephemeral_secret: bytes | None = None,
        secret: bytes | None = None,
        code_secret: bytes | None = None,
    ) -> Invite:
        """A new invite for a channel the relay just made; secrets are random unless given.

        Raises:
            MalformedError: the relay URL, channel or nameplate is not well formed.
            UsageError: a given secret has the wrong size, or ``lifetime`` is not 1 to 120.
        """
        if not 0 < lifetime <= INVITE_LIFETIME:
            raise UsageError(f"an invite lives 1 to {INVITE_LIFETIME} seconds")
        return cls(
            relay=relay,
            channel=channel,
            nameplate=nameplate,
            purpose=purpose,
            expires=now + lifetime,
            ephemeral_secret=_or_random(ephemeral_secret, X25519_KEY_BYTES),
            secret=_or_random(secret, SECRET_BYTES),
            code_secret=_or_random(code_secret, CODE_SECRET_BYTES),
        )

    @property
    def uri(self) -> InviteUri:
        """What the QR code shows."""
        return InviteUri(
            relay=self.relay,
            channel=self.channel,
            key=x25519_public(self.ephemeral_secret),
            secret=self.secret,
            expires=self.expires,
            purpose=self.purpose,
        )

    @property
    def code(self) -> TypedCode:
        """What the screen shows for typing."""
        return TypedCode.from_secret(nameplate=self.nameplate, secret=self.code_secret)


# -- the machines (SPEC.md section 11.8) ---------------------------------------------------------


_RECEIVE_MOVES: dict[type[Message], Move] = {
    Pake: Move.RECV_PAKE,
    Hello: Move.RECV_HELLO,
    Offer: Move.RECV_OFFER,
    Request: Move.RECV_REQUEST,
    Welcome: Move.RECV_WELCOME,
    Decline: Move.RECV_DECLINE,
    Done: Move.RECV_DONE,
}


class _Machine:
    """What both machines share: the state, the table, sealing and burning."""

    role: ClassVar[Role]

    def __init__(self, *, deadline: int | None) -> None:
        self._state = State.START
        self._keys: SessionKeys | None = None
        self._deadline = deadline
        self._sent = 0
        self._received = 0

    @property
    def state(self) -> State:
        return self._state

    @property
    def sas(self) -> str:
        """The six-digit short authentication string, once the keys are agreed.

        Raises:
            UsageError: no key has been agreed yet.
        """
        if self._keys is None:
            raise UsageError("there is no SAS before the key agreement")
        return self._keys.sas

    def burn(self) -> None:
        """Give up: forget the keys and move to ``burned`` (no-op once terminal)."""
        if self._state not in TERMINAL_STATES:
            self._state = TRANSITIONS[(self.role, self._state, Move.FAIL)]
        self._keys = None

    def _fail(self, error: ProtocolError) -> NoReturn:
        self.burn()
        raise error

    def _next(self, move: Move) -> State:
        after = TRANSITIONS.get((self.role, self._state, move))
        if after is None:
            if move.name.startswith("RECV"):
                raise UnexpectedMessageError(f"cannot {move.value} in state {self._state.value}")
            raise UsageError(f"cannot {move.value} in state {self._state.value}")
        return after

    def _box_keys(self) -> tuple[bytes, bytes]:
        """The keys this side seals and opens with."""
        if self._keys is None:
            raise UsageError("no key has been agreed yet")
        if self.role is Role.INVITER:
            return self._keys.inviter_to_joiner, self._keys.joiner_to_inviter
        return self._keys.joiner_to_inviter, self._keys.inviter_to_joiner

    def _send(self, move: Move, message: Message) -> bytes:
        after = self._next(move)
        if isinstance(message, Pake | Hello | Sealed):
            data = encode_message(message)
        else:
            data = encode_message(seal(self._box_keys()[0], self._sent, message))
            self._sent += 1
        self._state = after
        return data

    def receive(self, data: bytes, *, now: int) -> Message:
        """Take one message from the peer; return it, decoded and checked.

        Raises:
            UsageError: the pairing is already over.
            ExpiredError: ``now`` is past the deadline.
            UnexpectedMessageError: a message that is not legal in this state.
            PairingFailedError: key confirmation failed (wrong code, or a man in the middle).
            DecryptError, BadPaddingError: a sealed box was tampered with.
            BadSignatureError: a ``request`` whose join proof (or private space's join
                proof) does not verify.
            RosterError, WrongSpaceError: a ``welcome`` that does not admit this device
                (see :func:`check_welcome`).
            MalformedError, OversizedError, UnsupportedVersionError: not a valid message.
        Every error but UsageError burns the machine.
        """
        if self._state in TERMINAL_STATES:
            raise UsageError(f"the pairing is over ({self._state.value})")
        try:
            self._check_deadline(now)
            message: Message = decode_clear(data)
            if isinstance(message, Sealed):
                if self._keys is None:
                    raise UnexpectedMessageError("a sealed message before the key agreement")
                key = self._box_keys()[1]
                message = open_sealed(key, message, expected_seq=self._received)
                self._received += 1
            after = self._next(_RECEIVE_MOVES[type(message)])
            self._accept(message, now=now)
        except ProtocolError as error:
            self._fail(error)
        self._state = after
        return message

    def _check_deadline(self, now: int) -> None:
        if self._deadline is not None and now >= self._deadline:
            raise ExpiredError("the pairing took too long; start again")

    def _accept(self, message: Message, *, now: int) -> None:
        raise NotImplementedError


class Inviter(_Machine):
    """The device already in the space. It shows the codes and approves; it never scans."""

    role = Role.INVITER

    def __init__(self, invite: Invite, offer: Offer, *, pake_scalar: bytes | None = None) -> None:
        """Raises UsageError when the offer's purpose is not the invite's."""
        if offer.purpose is not invite.purpose:
            raise UsageError("the offer's purpose must be the invite's")
        super().__init__(deadline=invite.expires + SESSION_GRACE)
        self.invite = invite
        self.offer = offer
        self.request: Request | None = None
        self.mode: JoinMode | None = None
        self._spake = spake2.SPAKE2_A(
            invite.code.password,
            idA=SPAKE_ID_INVITER,
            idB=SPAKE_ID_JOINER,
            entropy_f=spake_entropy(pake_scalar),
        )
        self._pake = Pake(pake=bytes(self._spake.start()))

    def start(self) -> bytes:
        """The ``pake`` message, to post as soon as the channel exists."""
        return self._send(Move.SEND_PAKE, self._pake)

    def _accept(self, message: Message, *, now: int) -> None:
        if isinstance(message, Hello):
            self._accept_hello(message, now=now)
        elif isinstance(message, Request):
            self._check_proof(message)
            self.request = message

    def _accept_hello(self, hello: Hello, *, now: int) -> None:
        if now >= self.invite.expires:
            raise ExpiredError("the invite expired before anyone joined; make a new one")
        if hello.key is not None:  # QR mode (Hello checks that exactly one is present)
            transcript = qr_transcript(
                relay=self.invite.relay,
                channel=self.invite.channel,
                expires=self.invite.expires,
                purpose=self.invite.purpose,
                inviter_key=x25519_public(self.invite.ephemeral_secret),
                joiner_key=hello.key,
            )
            shared = x25519_shared(self.invite.ephemeral_secret, hello.key)
            root = qr_root(shared=shared, secret=self.invite.secret, transcript=transcript)
        elif hello.pake is not None:
            spake_key = spake_finish(self._spake, hello.pake)
            transcript = code_transcript(
                channel=self.invite.channel,
                nameplate=self.invite.nameplate,
                pake_inviter=self._pake.pake,
                pake_joiner=hello.pake,
            )
            root = code_root(spake_key=spake_key, transcript=transcript)
        else:  # pragma: no cover - Hello refuses this
            raise MalformedError("a hello carries a key or a SPAKE2 message")
        keys = SessionKeys.derive(root=root, transcript=transcript)
        if not sodium.sodium_memcmp(keys.mac, hello.mac):
            raise PairingFailedError(
                "the joining device does not know this invite's code or secret; "
                "the channel is burned, start again"
            )
        self._keys = keys
        self.mode = hello.mode

    def _check_proof(self, request: Request) -> None:
        """The join proofs must verify before anyone is asked to approve (SPEC.md 11.6.4).

        Raises:
            BadSignatureError: one does not.
            MalformedError: a private space's proof, when the offer named no private space.
        """
        if self.offer.member is not None:
            member = self.offer.member
        else:
            member = member_id_of(request.device)
        message = join_message(
            space=self.offer.space, member=member, device=request.device, by=self.offer.inviter
        )
        verify_signature(request.device, message, request.proof)
        if request.private_proof is None:
            return
        if self.offer.private is None:
            raise MalformedError("a proof for a private space that was not offered")
        message = join_message(
            space=self.offer.private, member=member, device=request.device, by=self.offer.inviter
        )
        verify_signature(request.device, message, request.private_proof)

    def send_offer(self) -> bytes:
        """The sealed ``offer``, right after a good ``hello``."""
        return self._send(Move.SEND_OFFER, self.offer)

    def approve(self, welcome: Welcome) -> bytes:
        """The sealed ``welcome``: only after the person approved, having compared the SAS.

        Raises:
            UsageError: not waiting for approval, or the welcome (or its private part) is
                for another space than the offer's.
            OversizedError: the welcome does not fit in one rendezvous message.
        """
        if welcome.space != self.offer.space:
            raise UsageError("the welcome must be for the offered space")
        if welcome.private is not None and welcome.private.space != self.offer.private:
            raise UsageError("the welcome's private part must be for the offered private space")
        return self._send(Move.SEND_WELCOME, welcome)

    def decline(self) -> bytes:
        """The sealed ``decline``: the person said no. No reason is asked or sent."""
        return self._send(Move.SEND_DECLINE, Decline())


class Joiner(_Machine):
    """The new device. It scans the QR code or is given the typed code."""

    role = Role.JOINER

    def __init__(
        self,
        *,
        mode: JoinMode,
        channel: str,
        invite: InviteUri | None = None,
        code: TypedCode | None = None,
        ephemeral_secret: bytes | None = None,
        pake_scalar: bytes | None = None,
    ) -> None:
        """Use :meth:`from_invite` or :meth:`from_code`."""
        deadline = None if invite is None else invite.expires + SESSION_GRACE
        super().__init__(deadline=deadline)
        self.mode = mode
        self.channel = check_channel(channel)
        self.invite = invite
        self.code = code
        self.offer: Offer | None = None
        self.request: Request | None = None
        self.welcome: Welcome | None = None
        self._ephemeral_secret = _or_random(ephemeral_secret, X25519_KEY_BYTES)
        self._pake_scalar = pake_scalar
        self._inviter_pake: bytes | None = None

    @classmethod
    def from_invite(cls, invite: InviteUri, *, ephemeral_secret: bytes | None = None) -> Joiner:
        """A joiner for a scanned QR invite (parse it with ``parse_invite_uri``)."""
        return cls(
            mode=JoinMode.QR,
            channel=invite.channel,
            invite=invite,
            ephemeral_secret=ephemeral_secret,
        )

    @classmethod
    def from_code(
        cls, code: TypedCode, *, channel: str, pake_scalar: bytes | None = None
    ) -> Joiner:
        """A joiner for a typed code, once the relay gave the channel of its nameplate."""
        return cls(mode=JoinMode.CODE, channel=channel, code=code, pake_scalar=pake_scalar)

    def _accept(self, message: Message, *, now: int) -> None:
        if isinstance(message, Pake):
            self._inviter_pake = message.pake
        elif isinstance(message, Offer):
            if self.invite is not None and message.purpose is not self.invite.purpose:
                raise MalformedError("the offer's purpose is not the QR code's")
            self.offer = message
        elif isinstance(message, Welcome):
            if self.offer is None or self.request is None:  # pragma: no cover - the table
                raise UnexpectedMessageError("a welcome before the offer and request")
            check_welcome(message, offer=self.offer, request=self.request)
            self.welcome = message

    def send_hello(self, *, now: int) -> bytes:
        """The ``hello``: key agreement and proof of the secret or code.

        Raises:
            UsageError: the inviter's ``pake`` has not been received yet.
            ExpiredError: the QR invite has expired (the machine burns).
            PairingFailedError: the invite's key is unusable (the machine burns).
            MalformedError: the inviter's SPAKE2 message is invalid (the machine burns).
        """
        self._next(Move.SEND_HELLO)
        try:
            hello = self._agree(now=now)
        except ProtocolError as error:
            self._fail(error)
        return self._send(Move.SEND_HELLO, hello)

    def _agree(self, *, now: int) -> Hello:
        if self.invite is not None:
            self.invite.check_expiry(now)
            joiner_key = x25519_public(self._ephemeral_secret)
            transcript = qr_transcript(
                relay=self.invite.relay,
                channel=self.invite.channel,
                expires=self.invite.expires,
                purpose=self.invite.purpose,
                inviter_key=self.invite.key,
                joiner_key=joiner_key,
            )
            shared = x25519_shared(self._ephemeral_secret, self.invite.key)
            root = qr_root(shared=shared, secret=self.invite.secret, transcript=transcript)
            self._keys = SessionKeys.derive(root=root, transcript=transcript)
            return Hello(mode=JoinMode.QR, key=joiner_key, mac=self._keys.mac)
        if self.code is None or self._inviter_pake is None:  # pragma: no cover - see the table
            raise UsageError("a code joiner needs the code and the inviter's pake")
        side = spake2.SPAKE2_B(
            self.code.password,
            idA=SPAKE_ID_INVITER,
            idB=SPAKE_ID_JOINER,
            entropy_f=spake_entropy(self._pake_scalar),
        )
        pake = bytes(side.start())
        spake_key = spake_finish(side, self._inviter_pake)
        transcript = code_transcript(
            channel=self.channel,
            nameplate=self.code.nameplate,
            pake_inviter=self._inviter_pake,
            pake_joiner=pake,
        )
        self._keys = SessionKeys.derive(
            root=code_root(spake_key=spake_key, transcript=transcript), transcript=transcript
        )
        return Hello(mode=JoinMode.CODE, pake=pake, mac=self._keys.mac)

    def send_request(self, request: Request) -> bytes:
        """The sealed ``request``: the device key, display name and join proof, and the
        private space's join proof when the offer named a private space to link.

        Raises:
            UsageError: not the time for a request, or a private space's proof when the
                offer named none.
        """
        if request.private_proof is not None and (self.offer is None or self.offer.private is None):
            raise UsageError("a private space's proof goes only with an offer that names one")
        data = self._send(Move.SEND_REQUEST, request)
        self.request = request
        return data

    def send_done(self) -> bytes:
        """The sealed ``done``, once the welcome has been checked and stored."""
        return self._send(Move.SEND_DONE, Done())
