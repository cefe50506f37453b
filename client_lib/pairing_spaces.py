"""The spaces a pairing touches: uploading the inviter's side, entering the joiner's side.

A pairing adds the new device to one space, or, in self pairing, to the shared space and
to the member's private space (SPEC.md 11.9 and 11.12). Both are done the same way, so
the steps live here once:

* the inviting device uploads its outbox to a space on the relay (registering the space
  with its founding entry when the relay does not know it yet, as the sync engine does),
  and reads its own view of the space's heads for the welcome;
* the joining device fetches a space it has just adopted, and checks it against the
  welcome: the feeds reach the inviter's heads, the key envelopes open, the roster holds
  this device in the expected member, and, for a private space, that member alone.

:func:`enter_spaces` enters every space of a welcome, and forgets them all (and the
member id it took on) when any of them fails.
"""

from __future__ import annotations

import aiohttp

from client_lib.account import PRIVATE_LABEL, Account
from client_lib.keystore import SpaceKind
from client_lib.relay_client import RelayCallError, RelayClient
from client_lib.replica import Replica
from client_lib.sync import register_space, relay_url_of, set_relay_url
from protocol.crypto import member_id_of
from protocol.entry import SeenHead
from protocol.errors import FeedGapError, ForkError, RosterError
from protocol.pairing_codes import Purpose
from protocol.pairing_messages import Offer, Request, Welcome

#: Entries uploaded per append call (the relay takes batches of at most 64).
UPLOAD_BATCH = 32


async def upload_outbox(relay: RelayClient, replica: Replica) -> None:
    """Append everything in ``replica``'s outbox to the relay, in batches.

    A space the relay does not know yet (a private space never synced) is registered
    first with this device's founding entry, when this device founded it.

    Raises:
        RelayCallError, RelayUnreachable: the relay did not take the entries.
    """
    pending = [item.raw for item in replica.pending_outbox()]
    for start in range(0, len(pending), UPLOAD_BATCH):
        batch = pending[start : start + UPLOAD_BATCH]
        try:
            results = await relay.append(batch)
        except RelayCallError as error:
            if error.code != "unknown_space" or not await register_space(relay, replica):
                raise
            results = await relay.append(batch)
        replica.mark_acknowledged([result.id for result in results])


async def reach(relay: RelayClient, replica: Replica) -> None:
    """Make sure the relay answers for this space before anything is written: upload what
    is waiting (which registers a space the relay does not know yet), or authenticate.

    Raises:
        RelayCallError, RelayUnreachable: it does not.
    """
    if replica.pending_outbox():
        await upload_outbox(relay, replica)
    else:
        await relay.token()


def own_heads(account: Account, space: bytes) -> tuple[SeenHead, ...]:
    """This device's view of every feed of ``space``, for a welcome."""
    return tuple(
        SeenHead(device=device, seq=head.seq, id=head.id)
        for device, head in sorted(account.store.heads(space).items())
    )


def last_own_entry(replica: Replica) -> bytes:
    """The entry this device just appended to its feed of the space."""
    feed = replica.feed_entries(replica.device)
    if not feed:  # pragma: no cover - the caller just wrote one
        raise RosterError("this device's feed is empty")
    return feed[-1]


def private_space_to_offer(account: Account, relay_url: str) -> bytes | None:
    """The member's private space, when self pairing can link it (SPEC.md 11.12): this
    device is active in it and it is on the invite's relay (or on none yet)."""
    private = account.private_replica()
    if private is None or not private.roster.is_active(account.device):
        return None
    recorded = relay_url_of(private)
    if recorded is not None and recorded != relay_url.rstrip("/"):
        return None
    return private.space


async def enter_space(
    account: Account,
    replica: Replica,
    *,
    relay_url: str,
    heads: tuple[SeenHead, ...],
    envelopes: tuple[bytes, ...],
    member: bytes,
    only_member: bool,
    session: aiohttp.ClientSession | None,
) -> None:
    """Fetch a space just adopted and check it against its part of the welcome.

    Raises:
        FeedGapError: the relay did not give everything up to the inviter's heads.
        ForkError: the relay gave another entry than the one the inviter named.
        RosterError: the roster does not hold this device in ``member`` (or, with
            ``only_member``, holds another member too), or the current epoch's key sent
            to this device could not be opened.
        RelayCallError, RelayUnreachable: the relay did not answer.
    """
    space = replica.space
    relay = RelayClient(
        relay_url, device_key=account.keystore.device_key, space=space, session=session
    )
    try:
        async for page in relay.fetch_all({}):
            replica.ingest_many(page.entries)
    finally:
        await relay.close()
    for head in heads:
        stored = account.store.ref_at(space, head.device, head.seq)
        if stored is None:
            raise FeedGapError("the relay did not give everything the inviting device had")
        if stored.id != head.id:
            raise ForkError("the relay gave another entry than the inviting device had")
    for envelope in envelopes:
        replica.accept_key_envelope(envelope)
    roster = replica.roster
    device = account.device
    if not roster.is_active(device) or roster.member_of(device) != member:
        raise RosterError("the space's roster does not hold this device")
    if only_member and (roster.members != {member} or roster.former_members):
        raise RosterError("the private space has, or had, another member than this device's")
    if roster.epoch not in account.keystore.epoch_keys(space):
        raise RosterError("the space's current key sent to this device could not be opened")


def takes_private(account: Account, offer: Offer) -> bool:
    """Whether this device takes up an offered private space: it has none of its own."""
    if offer.private is None:
        return False
    return account.private_replica() is None and not account.keystore.has_space(offer.private)


async def enter_spaces(
    account: Account,
    offer: Offer,
    request: Request,
    welcome: Welcome,
    session: aiohttp.ClientSession | None,
) -> None:
    """Adopt the space (and the private space, when linked), fetch them, and check them
    against the welcome (SPEC.md 11.9, 11.12). Keeps both or neither.

    Raises:
        FeedGapError: the relay did not give everything up to the inviter's heads.
        ForkError: the relay gave another entry than the one the inviter named.
        RosterError: a roster does not hold this device in the expected member, the
            private space has another member, or a key envelope could not be opened.
    """
    member = offer.member if offer.member is not None else member_id_of(request.device)
    previous_member = account.member_id
    if previous_member != member:
        account.keystore.set_member_id(member)
    label = offer.name if offer.purpose is Purpose.PARTNER else "shared"
    adopted: list[bytes] = []
    try:
        adopted.append(offer.space)
        replica = account.adopt_space(offer.space, kind=SpaceKind.SHARED, label=label)
        await enter_space(
            account,
            replica,
            relay_url=welcome.relay,
            heads=welcome.heads,
            envelopes=welcome.envelopes,
            member=member,
            only_member=False,
            session=session,
        )
        if welcome.private is not None:
            part = welcome.private
            adopted.append(part.space)
            private = account.adopt_space(part.space, kind=SpaceKind.PRIVATE, label=PRIVATE_LABEL)
            await enter_space(
                account,
                private,
                relay_url=welcome.relay,
                heads=part.heads,
                envelopes=part.envelopes,
                member=member,
                only_member=True,
                session=session,
            )
        for space in adopted:
            set_relay_url(account.replica(space), welcome.relay)
    except BaseException:
        for space in adopted:
            if account.keystore.has_space(space):
                account.keystore.remove_space(space)
        if previous_member != member:
            account.keystore.set_member_id(previous_member)
        raise
