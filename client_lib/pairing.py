"""Pairing devices through the relay's rendezvous (SPEC.md section 11).

Theory of operation:

* The device already in the space calls :func:`create_invite`. It creates a channel on
  the relay, makes the invite's secrets, posts the SPAKE2 message, and returns an
  :class:`Invitation` that shows the QR code (URI, PNG, terminal text) and the typed code.
  :meth:`Invitation.wait_for_request` runs the key agreement and returns who is asking,
  with the SAS. Only :meth:`Invitation.approve`, called after the person said yes, adds
  the device: it appends the roster entry to this device's feed, uploads it and the key
  envelopes to the relay, and sends the welcome. :meth:`Invitation.run` does all of it
  with an approval callback. This device never scans and never accepts a typed code.
* The new device calls :func:`join` with the scanned URI or the typed code. It sends its
  device key, name and join proof, shows the SAS through ``on_offer``, and waits for the
  decision. On a welcome it fetches the space from the relay, checks that its feeds
  reach the inviter's heads and that the roster holds it, opens the key envelopes, and
  only then keeps the space.
* Self pairing also links the member's private space (journal, private check-in
  answers; SPEC.md 11.12) when the inviting device is in it: the offer names it, the new
  device signs a second join proof for it, and on approval the inviter adds the device
  there too and the welcome carries its part. The new device enters both spaces, or
  neither. A device whose member has no private space pairs as before.
* The protocol lives in :mod:`protocol.pairing`; this module only moves its bytes. Any
  failure burns the machine and deletes the channel, then raises: the person is told to
  start again with a new code.

Errors raised: protocol errors (:mod:`protocol.errors`: ``PairingFailedError`` for a wrong
code or a relay in the middle, ``ExpiredError``, ``DecryptError``...), the rendezvous's
(:class:`~client_lib.rendezvous.ChannelGoneError`, ``ChannelClaimedError``), the relay
client's (``RelayCallError``, ``RelayUnreachable``), ``TimeoutError``, and
``UsageError`` for a device that cannot take part (for example one that already belongs
to another member).
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum

import aiohttp

from client_lib.account import Account
from client_lib.pairing_events import DeviceAdded, devices_added
from client_lib.pairing_qr import qr_png, qr_text
from client_lib.pairing_spaces import (
    enter_spaces,
    last_own_entry,
    own_heads,
    private_space_to_offer,
    reach,
    takes_private,
    upload_outbox,
)
from client_lib.relay_client import RelayCallError, RelayClient, RelayUnreachable
from client_lib.rendezvous import Channel, Rendezvous
from client_lib.replica import Replica
from client_lib.sync import relay_url_of, set_relay_url
from protocol.crypto import fingerprint, member_id_of
from protocol.errors import AccordError, RosterError, UsageError
from protocol.pairing import SESSION_GRACE, Invite, Inviter, Joiner
from protocol.pairing_codes import (
    INVITE_LIFETIME,
    InviteUri,
    Purpose,
    parse_code,
    parse_invite_uri,
)
from protocol.pairing_messages import JoinMode, Offer, PrivateWelcome, Request, Welcome
from protocol.roster import AddDevice, AddMember, Record, join_proof

__all__ = [
    "DeviceAdded",
    "Invitation",
    "JoinOffer",
    "JoinRequest",
    "Outcome",
    "PairingResult",
    "create_invite",
    "devices_added",
    "join",
]

Clock = Callable[[], int]
#: Seconds a joining device waits, in all, for the other device.
INVITE_WAIT = INVITE_LIFETIME + SESSION_GRACE


def unix_now() -> int:
    return int(time.time())


# -- what the front end shows -------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class JoinRequest:
    """Who is asking to join, shown to the inviter's person before they decide."""

    name: str
    device: bytes
    fingerprint: str
    sas: str
    mode: JoinMode
    purpose: Purpose
    #: Self pairing: the device asks to join the member's private space too (it will
    #: read the journal and private check-in answers).
    private: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class JoinOffer:
    """What the joining device shows while it waits: whose space, and the SAS."""

    inviter_name: str
    inviter_fingerprint: str
    purpose: Purpose
    space: bytes
    sas: str
    #: Self pairing: this device asked to join its member's private space too.
    private: bool = False


class Outcome(StrEnum):
    JOINED = "joined"  # the device was added
    DECLINED = "declined"  # the inviter's person said no


@dataclass(frozen=True, slots=True, kw_only=True)
class PairingResult:
    """How a pairing ended, on either side."""

    outcome: Outcome
    space: bytes
    device: bytes
    relay: str
    #: Inviter only: the joiner confirmed it took the welcome (``done``).
    confirmed: bool = False
    #: Self pairing: the member's private space the device was also added to.
    private_space: bytes | None = None


Decide = Callable[[JoinRequest], Awaitable[bool] | bool]
ShowOffer = Callable[[JoinOffer], Awaitable[None] | None]


async def _maybe_await(value: object) -> object:
    return await value if inspect.isawaitable(value) else value


# -- the inviting device -------------------------------------------------------------------


class Invitation:
    """One invite of the device already in the space. Build with :func:`create_invite`."""

    def __init__(
        self,
        *,
        account: Account,
        space: bytes,
        invite: Invite,
        machine: Inviter,
        channel: Channel,
        session: aiohttp.ClientSession | None,
        clock: Clock,
    ) -> None:
        self.account = account
        self.space = space
        self.invite = invite
        self._machine = machine
        self._channel = channel
        self._session = session
        self._clock = clock
        self.request: JoinRequest | None = None

    # What to show. The QR code and the typed code are secrets until they expire.

    @property
    def uri(self) -> str:
        return self.invite.uri.to_uri()

    @property
    def code(self) -> str:
        return str(self.invite.code)

    @property
    def expires_at(self) -> int:
        return self.invite.expires

    @property
    def qr_png(self) -> bytes:
        """The QR code as PNG bytes."""
        return qr_png(self.uri)

    @property
    def qr_text(self) -> str:
        """The QR code drawn with block characters, for a terminal."""
        return qr_text(self.uri)

    @property
    def state(self) -> str:
        return self._machine.state.value

    @property
    def private_space(self) -> bytes | None:
        """The member's private space this invite offers to link too (self pairing only)."""
        return self._machine.offer.private

    # The flow.

    def _deadline(self) -> float:
        left = self.invite.expires + SESSION_GRACE - self._clock()
        return time.monotonic() + max(0, left)

    async def _receive(self) -> None:
        data = await self._channel.receive(deadline=self._deadline())
        self._machine.receive(data, now=self._clock())

    async def _fail(self) -> None:
        self._machine.burn()
        await self._channel.delete()
        await self._close()

    async def _close(self) -> None:
        await self._channel.rendezvous.close()

    async def wait_for_request(self) -> JoinRequest:
        """Wait for a device to join, agree keys with it, and return who is asking.

        Raises:
            ChannelGoneError, TimeoutError: nobody came before the invite ran out.
            PairingFailedError: the joining device did not know the code (a wrong code,
                or a relay in the middle); the channel is burned.
            ProtocolError: anything else wrong from the other side; the channel is burned.
        """
        try:
            await self._receive()  # hello
            await self._channel.post(self._machine.send_offer())
            await self._receive()  # request
        except BaseException:
            await self._fail()
            raise
        request = self._machine.request
        if request is None or self._machine.mode is None:  # pragma: no cover - the table
            raise UsageError("the machine has no request after receiving one")
        self.request = JoinRequest(
            name=request.name,
            device=request.device,
            fingerprint=fingerprint(request.device),
            sas=self._machine.sas,
            mode=self._machine.mode,
            purpose=self.invite.purpose,
            private=request.private_proof is not None,
        )
        return self.request

    def _record(self, request: Request) -> Record:
        replica = self.account.replica(self.space)
        if request.device in replica.roster.known_devices:
            raise RosterError("this device is, or was, already in the space")
        if self.invite.purpose is Purpose.PARTNER:
            member = member_id_of(request.device)
            if member in replica.roster.members or member in replica.roster.former_members:
                raise RosterError("this member is, or was, already in the space")
            return AddMember(member=member, device=request.device, proof=request.proof)
        return AddDevice(member=self.account.member_id, device=request.device, proof=request.proof)

    def _private_replica(self, request: Request) -> Replica | None:
        """The private space the request asked to join (SPEC.md 11.12), if any."""
        private = self._machine.offer.private
        if request.private_proof is None or private is None:
            return None
        replica = self.account.replica(private)
        if request.device in replica.roster.known_devices:
            raise RosterError("this device is, or was, already in the private space")
        return replica

    async def approve(self) -> PairingResult:
        """Add the device: only after the person compared the SAS and said yes.

        Appends the roster entry to this device's feed, uploads it (and anything else
        waiting in the outbox) and the key envelopes, does the same in the member's
        private space when the request asked for it, sends the welcome, and waits a
        little for the joiner's ``done``.

        Raises:
            UsageError: no request is waiting for a decision.
            RosterError: the device or member is already in the space.
            RelayCallError, RelayUnreachable: the relay did not take the entry.
        """
        request = self._machine.request
        if request is None or self.request is None:
            raise UsageError("there is no request to approve")
        replica = self.account.replica(self.space)
        relays: list[RelayClient] = []

        def relay_for(space: bytes) -> RelayClient:
            client = RelayClient(
                self.invite.relay,
                device_key=self.account.keystore.device_key,
                space=space,
                session=self._session,
            )
            relays.append(client)
            return client

        relay = relay_for(self.space)
        try:
            record = self._record(request)
            private = self._private_replica(request)
            private_relay = None if private is None else relay_for(private.space)
            # Reach the relay for every space before writing anything (SPEC.md 11.9).
            await relay.token()
            if private is not None and private_relay is not None:
                await reach(private_relay, private)
            replica.append_roster(record)
            await upload_outbox(relay, replica)
            envelopes = replica.envelopes_for(request.device)
            await relay.put_envelopes(envelopes)
            private_part = None
            if private is not None and private_relay is not None:
                private_part = await self._add_to_private(private, private_relay, request)
            welcome = Welcome(
                space=self.space,
                relay=self.invite.relay,
                heads=own_heads(self.account, self.space),
                envelopes=tuple(envelopes),
                added=last_own_entry(replica),
                private=private_part,
            )
            await self._channel.post(self._machine.approve(welcome))
        except BaseException:
            await self._fail()
            raise
        finally:
            for client in relays:
                await client.close()
        confirmed = False
        try:
            await self._receive()  # done
            confirmed = True
        except (AccordError, RelayCallError, RelayUnreachable, TimeoutError):
            # The device was added either way; it finds the space when it syncs.
            self._machine.burn()
        await self._channel.delete()
        await self._close()
        return PairingResult(
            outcome=Outcome.JOINED,
            space=self.space,
            device=request.device,
            relay=self.invite.relay,
            confirmed=confirmed,
            private_space=None if private_part is None else private_part.space,
        )

    async def _add_to_private(
        self, private: Replica, relay: RelayClient, request: Request
    ) -> PrivateWelcome:
        """Add the device to the member's private space, upload it, and return the
        welcome's part for it (SPEC.md 11.12)."""
        if request.private_proof is None:  # pragma: no cover - _private_replica checks
            raise UsageError("the request did not ask for the private space")
        private.append_roster(
            AddDevice(
                member=self.account.member_id, device=request.device, proof=request.private_proof
            )
        )
        await upload_outbox(relay, private)
        envelopes = private.envelopes_for(request.device)
        await relay.put_envelopes(envelopes)
        if relay_url_of(private) is None:
            set_relay_url(private, self.invite.relay)
        return PrivateWelcome(
            space=private.space,
            heads=own_heads(self.account, private.space),
            envelopes=tuple(envelopes),
            added=last_own_entry(private),
        )

    async def decline(self) -> PairingResult:
        """Say no. Nothing is added; no reason is asked or sent."""
        request = self._machine.request
        if request is None:
            raise UsageError("there is no request to decline")
        try:
            await self._channel.post(self._machine.decline())
        except BaseException:
            await self._fail()
            raise
        await self._close()  # the joiner deletes the channel once it has read this
        return PairingResult(
            outcome=Outcome.DECLINED,
            space=self.space,
            device=request.device,
            relay=self.invite.relay,
        )

    async def cancel(self) -> None:
        """Stop: burn the channel, whatever the state."""
        await self._fail()

    async def run(self, decide: Decide) -> PairingResult:
        """The whole flow: wait, ask ``decide`` (it sees the name and SAS), then approve or
        decline. ``decide`` must return True only on the person's explicit yes."""
        request = await self.wait_for_request()
        try:
            approved = await _maybe_await(decide(request))
        except BaseException:
            await self._fail()
            raise
        if approved is True:
            return await self.approve()
        return await self.decline()


async def create_invite(
    account: Account,
    space: bytes,
    *,
    relay_url: str,
    purpose: Purpose,
    session: aiohttp.ClientSession | None = None,
    clock: Clock = unix_now,
) -> Invitation:
    """Make an invite for ``space`` on the relay at ``relay_url`` (SPEC.md 11.1).

    Raises:
        NoSuchSpaceError: this device is not in ``space``.
        UsageError: self pairing from a device of another member's space setup that cannot
            sign devices in (this device is not active in the space).
        RelayCallError, RelayUnreachable: the relay did not make a channel.
    """
    replica = account.replica(space)
    if not replica.roster.is_active(account.device):
        raise UsageError("only an active device of the space can invite")
    rendezvous = Rendezvous(relay_url, session=session)
    try:
        channel = await rendezvous.create()
    except BaseException:
        await rendezvous.close()
        raise
    if channel.grant.nameplate is None:  # pragma: no cover - Rendezvous.create checks
        raise UsageError("the channel has no nameplate")
    invite = Invite.create(
        relay=relay_url.rstrip("/"),
        channel=channel.id,
        nameplate=channel.grant.nameplate,
        purpose=purpose,
        now=clock(),
    )
    offer = Offer(
        purpose=purpose,
        space=space,
        inviter=account.device,
        member=account.member_id if purpose is Purpose.SELF else None,
        name=account.display_name,
        private=private_space_to_offer(account, relay_url) if purpose is Purpose.SELF else None,
    )
    machine = Inviter(invite, offer)
    invitation = Invitation(
        account=account,
        space=space,
        invite=invite,
        machine=machine,
        channel=channel,
        session=session,
        clock=clock,
    )
    try:
        await channel.post(machine.start())
    except BaseException:
        await invitation._fail()
        raise
    return invitation


# -- the joining device --------------------------------------------------------------------


def _check_account_fits(account: Account, offer: Offer) -> None:
    own_member = member_id_of(account.device)
    if offer.purpose is Purpose.PARTNER:
        if account.member_id != own_member:
            raise UsageError("this device belongs to another member; it cannot join as a new one")
    elif account.member_id != offer.member and account.keystore.spaces():
        raise UsageError(
            "this device already belongs to a member with spaces of its own; "
            "link a fresh device instead"
        )
    if account.keystore.has_space(offer.space):
        raise UsageError("this device is already in that space")


async def join(
    account: Account,
    invite: str,
    *,
    relay_url: str | None = None,
    on_offer: ShowOffer | None = None,
    session: aiohttp.ClientSession | None = None,
    clock: Clock = unix_now,
    wait_seconds: int = INVITE_WAIT,
) -> PairingResult:
    """Join with a scanned ``accord://pair/`` URI or a typed code (SPEC.md 11.1).

    ``relay_url`` is needed for a typed code (the QR code carries its relay). ``on_offer``
    is called once the keys are agreed, to show the SAS and whose space this is.

    Raises:
        MalformedError, ExpiredError, UnsupportedVersionError: not a usable code.
        ChannelGoneError: no such code, or it expired, or the other device stopped (a
            typed code with a mistake ends here: the other device refused it).
        ChannelClaimedError: another device used this code first.
        UsageError: this device cannot join that way (see :func:`_check_account_fits`).
        ProtocolError: anything wrong from the other side; the channel is burned.
    """
    text = invite.strip()
    rendezvous: Rendezvous
    if text.startswith("accord:"):
        parsed: InviteUri = parse_invite_uri(text, now=clock())
        rendezvous = Rendezvous(parsed.relay, session=session)
        relay = parsed.relay
        try:
            channel = await rendezvous.claim(parsed.channel)
        except BaseException:
            await rendezvous.close()
            raise
        machine = Joiner.from_invite(parsed)
    else:
        code = parse_code(text)
        if relay_url is None:
            raise UsageError("a typed code needs the relay's address")
        relay = relay_url.rstrip("/")
        rendezvous = Rendezvous(relay, session=session)
        try:
            channel = await rendezvous.claim_nameplate(code.nameplate)
        except BaseException:
            await rendezvous.close()
            raise
        machine = Joiner.from_code(code, channel=channel.id)
    deadline = time.monotonic() + wait_seconds
    try:
        machine.receive(await channel.receive(deadline=deadline), now=clock())  # pake
        await channel.post(machine.send_hello(now=clock()))
        machine.receive(await channel.receive(deadline=deadline), now=clock())  # offer
        offer = machine.offer
        if offer is None:  # pragma: no cover - the table
            raise UsageError("no offer after receiving one")
        _check_account_fits(account, offer)
        member = offer.member if offer.member is not None else member_id_of(account.device)
        device_key = account.keystore.device_key
        proof = join_proof(device_key, space=offer.space, member=member, by=offer.inviter)
        private_proof = None
        if offer.private is not None and takes_private(account, offer):
            private_proof = join_proof(
                device_key, space=offer.private, member=member, by=offer.inviter
            )
        request = Request(
            device=account.device,
            name=account.display_name,
            proof=proof,
            private_proof=private_proof,
        )
        await channel.post(machine.send_request(request))
        if on_offer is not None:
            await _maybe_await(
                on_offer(
                    JoinOffer(
                        inviter_name=offer.name,
                        inviter_fingerprint=fingerprint(offer.inviter),
                        purpose=offer.purpose,
                        space=offer.space,
                        sas=machine.sas,
                        private=private_proof is not None,
                    )
                )
            )
        machine.receive(await channel.receive(deadline=deadline), now=clock())
        welcome = machine.welcome
        if welcome is None:  # declined
            await channel.delete()
            return PairingResult(
                outcome=Outcome.DECLINED, space=offer.space, device=account.device, relay=relay
            )
        await enter_spaces(account, offer, request, welcome, session)
        await channel.post(machine.send_done())
    except BaseException:
        machine.burn()
        await channel.delete()
        raise
    finally:
        await rendezvous.close()
    return PairingResult(
        outcome=Outcome.JOINED,
        space=offer.space,
        device=account.device,
        relay=welcome.relay,
        confirmed=True,
        private_space=None if welcome.private is None else welcome.private.space,
    )
