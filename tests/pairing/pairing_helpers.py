"""Two pairing machines joined in memory, and the values the tests build them from."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from pairing_vectors import build_private_part, build_welcome

from protocol.crypto import DeviceKey, member_id_of, random_bytes
from protocol.pairing import Invite, Inviter, Joiner
from protocol.pairing_codes import Purpose, TypedCode, parse_code, parse_invite_uri
from protocol.pairing_messages import Offer, Request, Welcome
from protocol.roster_records import join_proof

NOW = 1_767_225_600
RELAY = "http://127.0.0.1:8787"
CHANNEL = "test-channel_01"
NAMEPLATE = "42"


def make_invite(purpose: Purpose = Purpose.PARTNER, *, now: int = NOW) -> Invite:
    return Invite.create(
        relay=RELAY, channel=CHANNEL, nameplate=NAMEPLATE, purpose=purpose, now=now
    )


@dataclass
class Pair:
    """An inviter and a joiner, and every message either has sent, in order."""

    purpose: Purpose = Purpose.PARTNER
    mode: str = "qr"
    typed: str | None = None  # the code the joiner types; the right one when None
    inviter_device: DeviceKey = field(default_factory=DeviceKey.generate)
    joiner_device: DeviceKey = field(default_factory=DeviceKey.generate)
    space: bytes = field(default_factory=lambda: random_bytes(16))
    epoch_key: bytes = field(default_factory=lambda: random_bytes(32))
    #: Self pairing: the member's private space the offer names (SPEC.md 11.12), and
    #: whether the joiner takes it up.
    private: bytes | None = None
    take_private: bool = True
    private_epoch_key: bytes = field(default_factory=lambda: random_bytes(32))

    def __post_init__(self) -> None:
        self.invite = make_invite(self.purpose)
        self.offer = Offer(
            purpose=self.purpose,
            space=self.space,
            inviter=self.inviter_device.public,
            member=member_id_of(self.inviter_device.public)
            if self.purpose is Purpose.SELF
            else None,
            name="Alex",
            private=self.private,
        )
        self.inviter = Inviter(self.invite, self.offer)
        if self.mode == "qr":
            uri = parse_invite_uri(self.invite.uri.to_uri(), now=NOW)
            self.joiner = Joiner.from_invite(uri)
        else:
            code: TypedCode = parse_code(self.typed or str(self.invite.code))
            self.joiner = Joiner.from_code(code, channel=CHANNEL)
        self.sent: list[tuple[str, bytes]] = []
        self._welcome: Welcome | None = None

    def request(self) -> Request:
        member = self.offer.member or member_id_of(self.joiner_device.public)
        by = self.inviter_device.public
        proof = join_proof(self.joiner_device, space=self.space, member=member, by=by)
        private_proof = None
        if self.private is not None and self.take_private:
            private_proof = join_proof(self.joiner_device, space=self.private, member=member, by=by)
        return Request(
            device=self.joiner_device.public, name="Sam", proof=proof, private_proof=private_proof
        )

    def welcome(self) -> Welcome:
        """The welcome for this pair's request (made once: its key envelope is random)."""
        if self._welcome is None:
            self._welcome = self._build_welcome()
        return self._welcome

    def _build_welcome(self) -> Welcome:
        request = self.request()
        welcome = build_welcome(
            inviter=self.inviter_device,
            space=self.space,
            purpose=self.purpose,
            request=request,
            relay=RELAY,
            epoch_key=self.epoch_key,
        )
        if self.private is None or request.private_proof is None:
            return welcome
        part = build_private_part(
            inviter=self.inviter_device,
            private=self.private,
            device=request.device,
            proof=request.private_proof,
            epoch_key=self.private_epoch_key,
        )
        return replace(welcome, private=part)

    def _log(self, side: str, data: bytes) -> bytes:
        self.sent.append((side, data))
        return data

    # Each step sends one message and delivers it to the other side.

    def pake(self) -> bytes:
        data = self._log("inviter", self.inviter.start())
        self.joiner.receive(data, now=NOW)
        return data

    def hello(self, now: int = NOW) -> bytes:
        data = self._log("joiner", self.joiner.send_hello(now=now))
        self.inviter.receive(data, now=now)
        return data

    def offer_step(self) -> bytes:
        data = self._log("inviter", self.inviter.send_offer())
        self.joiner.receive(data, now=NOW)
        return data

    def request_step(self) -> bytes:
        data = self._log("joiner", self.joiner.send_request(self.request()))
        self.inviter.receive(data, now=NOW)
        return data

    def welcome_step(self) -> bytes:
        data = self._log("inviter", self.inviter.approve(self.welcome()))
        self.joiner.receive(data, now=NOW)
        return data

    def done_step(self) -> bytes:
        data = self._log("joiner", self.joiner.send_done())
        self.inviter.receive(data, now=NOW)
        return data

    def run(self) -> None:
        self.pake()
        self.hello()
        self.offer_step()
        self.request_step()
        self.welcome_step()
        self.done_step()
