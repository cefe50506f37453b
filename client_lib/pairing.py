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
from client_lib.keystore import SpaceKind
from client_lib.pairing_events import DeviceAdded, devices_added
from client_lib.pairing_qr import qr_png, qr_text
from client_lib.relay_client import RelayCallError, RelayClient, RelayUnreachable
from client_lib.rendezvous import Channel, Rendezvous
from protocol.crypto import fingerprint, member_id_of
from protocol.entry import SeenHead
from protocol.errors import AccordError, FeedGapError, ForkError, RosterError, UsageError
from protocol.pairing import SESSION_GRACE, Invite, Inviter, Joiner
from protocol.pairing_codes import (
    INVITE_LIFETIME,
    InviteUri,
    Purpose,
    parse_code,
    parse_invite_uri,
)
from protocol.pairing_messages import JoinMode, Offer, Request, Welcome
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
#: Entries uploaded per append call (the relay takes batches of at most 64).
UPLOAD_BATCH = 32


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


@dataclass(frozen=True, slots=True, kw_only=True)
class JoinOffer:
    """What the joining device shows while it waits: whose space, and the SAS."""

    inviter_name: str
    inviter_fingerprint: str
    purpose: Purpose
    space: bytes
    sas: str


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

    async def approve(self) -> PairingResult:
        """Add the device: only after the person compared the SAS and said yes.

        Appends the roster entry to this device's feed, uploads it (and anything else
        waiting in the outbox) and the key envelopes, sends the welcome, and waits a
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
        relay = RelayClient(
            self.invite.relay,
            device_key=self.account.keystore.device_key,
            space=self.space,
            session=self._session,
        )
        try:
            record = self._record(request)
            await relay.token()  # reach the relay before writing anything
            replica.append_roster(record)
            pending = [item.raw for item in replica.pending_outbox()]
            for start in range(0, len(pending), UPLOAD_BATCH):
                results = await relay.append(pending[start : start + UPLOAD_BATCH])
                replica.mark_acknowledged([result.id for result in results])
            envelopes = replica.envelopes_for(request.device)
            await relay.put_envelopes(envelopes)
            heads = tuple(
                SeenHead(device=device, seq=head.seq, id=head.id)
                for device, head in sorted(self.account.store.heads(self.space).items())
            )
            welcome = Welcome(
                space=self.space,
                relay=self.invite.relay,
                heads=heads,
                envelopes=tuple(envelopes),
                added=self._added_entry(replica.feed_entries(self.account.device)),
            )
            await self._channel.post(self._machine.approve(welcome))
        except BaseException:
            await self._fail()
            await relay.close()
            raise
        await relay.close()
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
        )

    @staticmethod
    def _added_entry(feed: list[bytes]) -> bytes:
        if not feed:  # pragma: no cover - append_roster just wrote one
            raise UsageError("this device's feed is empty")
        return feed[-1]

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


async def _enter_space(
    account: Account,
    offer: Offer,
    request: Request,
    welcome: Welcome,
    session: aiohttp.ClientSession | None,
) -> None:
    """Adopt the space, fetch it, and check it against the welcome (SPEC.md 11.9).

    Raises:
        FeedGapError: the relay did not give everything up to the inviter's heads.
        ForkError: the relay gave another entry than the one the inviter named.
        RosterError: the roster does not hold this device in the expected member, or a
            key envelope could not be opened.
    """
    member = offer.member if offer.member is not None else member_id_of(request.device)
    previous_member = account.member_id
    if previous_member != member:
        account.keystore.set_member_id(member)
    label = offer.name if offer.purpose is Purpose.PARTNER else "shared"
    replica = account.adopt_space(offer.space, kind=SpaceKind.SHARED, label=label)
    relay = RelayClient(
        welcome.relay, device_key=account.keystore.device_key, space=offer.space, session=session
    )
    try:
        async for page in relay.fetch_all({}):
            replica.ingest_many(page.entries)
        for head in welcome.heads:
            stored = account.store.entry_at(offer.space, head.device, head.seq)
            if stored is None:
                raise FeedGapError("the relay did not give everything the inviting device had")
            if stored.id != head.id:
                raise ForkError("the relay gave another entry than the inviting device had")
        for envelope in welcome.envelopes:
            replica.accept_key_envelope(envelope)
        held = account.keystore.epoch_keys(offer.space)
        roster = replica.roster
        if not roster.is_active(request.device) or roster.member_of(request.device) != member:
            raise RosterError("the space's roster does not hold this device")
        if roster.epoch not in held:
            raise RosterError("the space's current key sent to this device could not be opened")
    except BaseException:
        account.keystore.remove_space(offer.space)
        if previous_member != member:
            account.keystore.set_member_id(previous_member)
        raise
    finally:
        await relay.close()


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
        proof = join_proof(
            account.keystore.device_key, space=offer.space, member=member, by=offer.inviter
        )
        request = Request(device=account.device, name=account.display_name, proof=proof)
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
        await _enter_space(account, offer, request, welcome, session)
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
    )
