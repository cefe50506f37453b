"""Pairing through a real relay on loopback: QR and typed codes, partner and self pairing,
and a relay (or a proxy in front of it) that tries to get in the middle."""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path
from typing import Any

import pytest
from pairing_relay_helpers import RelayProxy, Screens, founder, make_account, pair, publish, pull

from client_lib.account import Account
from client_lib.pairing import (
    Invitation,
    JoinRequest,
    Outcome,
    create_invite,
    devices_added,
    join,
    unix_now,
)
from client_lib.pairing_qr import QrImageError, decode_qr_image, qr_png, qr_text
from client_lib.rendezvous import ChannelClaimedError, ChannelGoneError, Rendezvous
from protocol.crypto import member_id_of
from protocol.errors import DecryptError, ExpiredError, PairingFailedError
from protocol.pairing import Invite, Inviter, Joiner
from protocol.pairing_codes import WORDS, Purpose, TypedCode, parse_code, parse_invite_uri
from protocol.pairing_keys import x25519_public
from protocol.pairing_messages import (
    Hello,
    JoinMode,
    Offer,
    Pake,
    Sealed,
    decode_clear,
    encode_message,
)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def item_states(account: Account, space: bytes) -> list[tuple[str, str, str]]:
    return sorted(
        (view.title, view.status.value, view.level.value)
        for view in account.space(space).agreements.items()
    )


# -- QR code round trip -------------------------------------------------------------------


def test_a_qr_png_decodes_back_to_the_exact_uri(tmp_path: Path) -> None:
    invite = Invite.create(
        relay="https://relay.example.org:8443/accord",
        channel="Qm9vay1zaGVsZi0xMjM0",
        nameplate="4521",
        purpose=Purpose.PARTNER,
        now=1_767_225_600,
    )
    uri = invite.uri.to_uri()
    path = tmp_path / "invite.png"
    path.write_bytes(qr_png(uri))
    assert decode_qr_image(path) == uri
    assert parse_invite_uri(decode_qr_image(path), now=1_767_225_600) == invite.uri
    text = qr_text(uri)
    assert text.count("\n") > 20 and set(text) <= set("█▀▄ \n")


def test_a_picture_without_a_qr_code_is_refused(tmp_path: Path) -> None:
    from PIL import Image

    path = tmp_path / "blank.png"
    Image.new("L", (64, 64), color=255).save(path)
    with pytest.raises(QrImageError):
        decode_qr_image(path)
    with pytest.raises(QrImageError):
        decode_qr_image(b"not a picture at all")


# -- whole pairings -------------------------------------------------------------------------


async def test_partner_pairing_by_qr_image_ends_with_the_same_space(
    tmp_path: Path, relay_url: str
) -> None:
    alex, space = await founder(tmp_path, relay_url)
    sam = make_account(tmp_path, "sam", "Sam")
    invitation = await create_invite(alex, space, relay_url=relay_url, purpose=Purpose.PARTNER)
    picture = tmp_path / "invite.png"
    picture.write_bytes(invitation.qr_png)
    uri = decode_qr_image(picture)
    assert uri == invitation.uri
    screens = Screens()
    inviter_result, joiner_result = await pair(invitation, sam, uri, screens, relay_url)

    assert inviter_result.outcome is Outcome.JOINED and inviter_result.confirmed
    assert joiner_result.outcome is Outcome.JOINED and joiner_result.space == space
    assert screens.request is not None and screens.offer is not None
    assert screens.request.sas == screens.offer.sas
    assert screens.request.name == "Sam" and screens.offer.inviter_name == "Alex"
    assert screens.request.device == sam.device

    # Both devices hold the same space: the same roster and the same agreements.
    await pull(alex, space, relay_url)
    alex_roster, sam_roster = alex.replica(space).roster, sam.replica(space).roster
    assert alex_roster.members == sam_roster.members == {alex.member_id, sam.member_id}
    assert alex_roster.active_devices == sam_roster.active_devices == {alex.device, sam.device}
    assert item_states(sam, space) == item_states(alex, space)
    assert [title for title, _, _ in item_states(sam, space)] == ["No surprises"]

    # An agreement made on one appears on the other.
    sam.space(space).agreements.create_item(kind="permission", level="ask", title="Hugs")
    await publish(sam, space, relay_url)
    await pull(alex, space, relay_url)
    assert item_states(alex, space) == item_states(sam, space)
    assert "Hugs" in [title for title, _, _ in item_states(alex, space)]


async def test_partner_pairing_by_typed_code(tmp_path: Path, relay_url: str) -> None:
    alex, space = await founder(tmp_path, relay_url)
    sam = make_account(tmp_path, "sam", "Sam")
    invitation = await create_invite(alex, space, relay_url=relay_url, purpose=Purpose.PARTNER)
    typed = invitation.code.upper().replace("-", " ")  # as a person might type it
    screens = Screens()
    inviter_result, joiner_result = await pair(invitation, sam, typed, screens, relay_url)
    assert inviter_result.outcome is joiner_result.outcome is Outcome.JOINED
    assert screens.request is not None and screens.offer is not None
    assert screens.request.sas == screens.offer.sas
    await pull(alex, space, relay_url)
    assert item_states(sam, space) == item_states(alex, space)


async def test_self_pairing_of_a_third_device(tmp_path: Path, relay_url: str) -> None:
    alex, space = await founder(tmp_path, relay_url)
    sam = make_account(tmp_path, "sam", "Sam")
    invitation = await create_invite(alex, space, relay_url=relay_url, purpose=Purpose.PARTNER)
    await pair(invitation, sam, invitation.uri, Screens(), relay_url)
    sam.space(space).agreements.create_item(kind="limit", level="no", title="Not at work")
    await publish(sam, space, relay_url)
    await pull(alex, space, relay_url)

    # Alex links a phone: a fresh device, made ready to join (no space of its own).
    phone = make_account(tmp_path, "alex-phone", "Alex’s phone", found_private_space=False)
    invitation = await create_invite(alex, space, relay_url=relay_url, purpose=Purpose.SELF)
    screens = Screens()
    inviter_result, joiner_result = await pair(
        invitation, phone, invitation.code, screens, relay_url
    )
    assert inviter_result.outcome is joiner_result.outcome is Outcome.JOINED
    assert screens.request is not None and screens.request.purpose is Purpose.SELF

    # It reads everything, and it is Alex: the same member, a device of Alex's.
    assert phone.member_id == alex.member_id != member_id_of(phone.device)
    roster = phone.replica(space).roster
    assert roster.member_of(phone.device) == alex.member_id
    assert roster.members == {alex.member_id, sam.member_id}
    assert item_states(phone, space) == item_states(alex, space)
    assert {"No surprises", "Not at work"} <= {title for title, _, _ in item_states(phone, space)}

    # Sam's device learns of it when it next syncs: "a device was added".
    added = devices_added(sam, space, await pull(sam, space, relay_url))
    assert [(a.device, a.member, a.by, a.new_member) for a in added] == [
        (phone.device, alex.member_id, alex.device, False)
    ]
    assert added[0].describe().startswith("A device was added")

    # It signs as Alex: what it writes is Alex's word on every other device.
    item = next(v for v in phone.space(space).agreements.items() if v.title == "Not at work")
    phone.space(space).agreements.affirm(item.heads[0].id)
    await publish(phone, space, relay_url)
    for other in (alex, sam):
        await pull(other, space, relay_url)
        view = other.space(space).agreements.item(item.item)
        assert view.agreed, view.summary
    assert not [p for p in sam.replica(space).problems()]


async def test_a_declined_pairing_adds_nothing(tmp_path: Path, relay_url: str) -> None:
    alex, space = await founder(tmp_path, relay_url)
    sam = make_account(tmp_path, "sam", "Sam")
    invitation = await create_invite(alex, space, relay_url=relay_url, purpose=Purpose.PARTNER)
    inviter_result, joiner_result = await pair(
        invitation, sam, invitation.uri, Screens(approve=False), relay_url
    )
    assert inviter_result.outcome is joiner_result.outcome is Outcome.DECLINED
    assert not sam.keystore.has_space(space)
    assert sam.device not in alex.replica(space).roster.known_devices
    rendezvous = Rendezvous(relay_url)
    with pytest.raises(ChannelGoneError):  # the joiner deleted the channel
        await rendezvous.claim(invitation.invite.channel)
    await rendezvous.close()


# -- a relay in the middle --------------------------------------------------------------------


async def test_a_relay_that_swaps_the_joiner_key_is_caught(
    tmp_path: Path, proxy: RelayProxy
) -> None:
    def swap(author: str, body: bytes) -> bytes:
        message = decode_clear(body)
        if author == "b" and isinstance(message, Hello):
            fake = x25519_public(secrets.token_bytes(32))
            return encode_message(Hello(mode=JoinMode.QR, key=fake, mac=message.mac))
        return body

    proxy.rewrite = swap
    alex, space = await founder(tmp_path, proxy.url)
    sam = make_account(tmp_path, "sam", "Sam")
    invitation = await create_invite(alex, space, relay_url=proxy.url, purpose=Purpose.PARTNER)
    screens = Screens()
    results = await asyncio.gather(
        invitation.run(screens.decide),
        join(sam, invitation.uri, on_offer=screens.show_offer),
        return_exceptions=True,
    )
    assert isinstance(results[0], PairingFailedError)
    assert isinstance(results[1], ChannelGoneError)
    assert screens.request is None and screens.offer is None  # nobody was asked anything
    assert invitation.state == "burned"
    assert not sam.keystore.has_space(space)
    assert sam.device not in alex.replica(space).roster.known_devices
    _no_key_went_through(proxy, alex, space)


def _no_key_went_through(proxy: RelayProxy, account: Account, space: bytes) -> None:
    """No epoch key, sealed or not, and no welcome ever crossed the relay."""
    keys = account.keystore.epoch_keys(space).values()
    for _side, body in proxy.posted:
        for key in keys:
            assert key not in body
    sealed_by_creator = [
        body
        for side, body in proxy.posted
        if side == "a" and isinstance(decode_clear(body), Sealed)
    ]
    assert len(sealed_by_creator) <= 2  # at most an offer and a decline: never a welcome


async def test_a_relay_guessing_the_typed_code_gets_one_try(
    tmp_path: Path, proxy: RelayProxy
) -> None:
    """The relay stands in for the joiner towards the inviter, with one SPAKE2 guess."""
    state: dict[str, Any] = {}

    def guess(author: str, body: bytes) -> bytes:
        message = decode_clear(body)
        if author == "a" and isinstance(message, Pake):
            state["pake"] = body
        if author == "b" and isinstance(message, Hello):
            code = parse_code(state["code"])
            wrong = (*code.words[:3], WORDS[(WORDS.index(code.words[3]) + 1) % 256])
            fake = Joiner.from_code(
                TypedCode(nameplate=code.nameplate, words=wrong), channel=state["channel"]
            )
            fake.receive(state["pake"], now=unix_now())
            return fake.send_hello(now=unix_now())
        return body

    proxy.rewrite = guess
    alex, space = await founder(tmp_path, proxy.url)
    sam = make_account(tmp_path, "sam", "Sam")
    invitation = await create_invite(alex, space, relay_url=proxy.url, purpose=Purpose.PARTNER)
    state["code"], state["channel"] = invitation.code, invitation.invite.channel
    results = await asyncio.gather(
        invitation.run(Screens().decide),
        join(sam, invitation.code, relay_url=proxy.url),
        return_exceptions=True,
    )
    assert isinstance(results[0], PairingFailedError)
    assert isinstance(results[1], ChannelGoneError)
    _no_key_went_through(proxy, alex, space)


async def test_a_relay_that_knows_the_code_shows_different_sas(
    tmp_path: Path, proxy: RelayProxy
) -> None:
    """The one-in-2**32 case: the relay runs the whole protocol with each side. Both key
    agreements succeed, but the two screens disagree, so the person declines."""
    state: dict[str, Any] = {}

    def middle(author: str, body: bytes) -> bytes:
        now = unix_now()
        to_inviter: Joiner = state["to_inviter"]
        to_joiner: Inviter = state["to_joiner"]
        if author == "a":
            message = to_inviter.receive(body, now=now)
            if isinstance(message, Pake):
                return to_joiner.start()
            if isinstance(message, Offer):
                to_joiner.offer = message
                return to_joiner.send_offer()
            return to_joiner.decline()
        message = to_joiner.receive(body, now=now)
        if isinstance(message, Hello):
            return to_inviter.send_hello(now=now)
        assert to_joiner.request is not None
        return to_inviter.send_request(to_joiner.request)

    alex, space = await founder(tmp_path, proxy.url)
    sam = make_account(tmp_path, "sam", "Sam")
    invitation = await create_invite(alex, space, relay_url=proxy.url, purpose=Purpose.PARTNER)
    code = parse_code(invitation.code)
    real = invitation.invite
    state["to_inviter"] = Joiner.from_code(code, channel=real.channel)
    relays_invite = Invite.create(
        relay=real.relay,
        channel=real.channel,
        nameplate=real.nameplate,
        purpose=real.purpose,
        now=unix_now(),
        code_secret=code.secret,
    )
    placeholder = Offer(
        purpose=Purpose.PARTNER, space=bytes(16), inviter=bytes(32), member=None, name="x"
    )
    state["to_joiner"] = Inviter(relays_invite, placeholder)
    proxy.rewrite = middle
    screens = Screens()

    async def decide(request: JoinRequest) -> bool:
        await screens.decide(request)
        assert screens.offer is not None
        return request.sas == screens.offer.sas  # the person compares the two screens

    results = await asyncio.gather(
        invitation.run(decide),
        join(sam, invitation.code, relay_url=proxy.url, on_offer=screens.show_offer),
        return_exceptions=True,
    )
    assert screens.request is not None and screens.offer is not None
    assert screens.request.sas != screens.offer.sas
    assert results[0].outcome is Outcome.DECLINED, results
    assert results[1].outcome is Outcome.DECLINED, results
    assert not sam.keystore.has_space(space)
    assert sam.device not in alex.replica(space).roster.known_devices
    _no_key_went_through(proxy, alex, space)


async def test_a_flipped_byte_burns_the_pairing(tmp_path: Path, proxy: RelayProxy) -> None:
    def flip(author: str, body: bytes) -> bytes:
        message = decode_clear(body)
        if author == "a" and isinstance(message, Sealed):  # one bit of the offer's box
            damaged = bytearray(message.box)
            damaged[len(damaged) // 2] ^= 0x01
            return encode_message(Sealed(seq=message.seq, box=bytes(damaged)))
        return body

    proxy.rewrite = flip
    alex, space = await founder(tmp_path, proxy.url)
    sam = make_account(tmp_path, "sam", "Sam")
    invitation = await create_invite(alex, space, relay_url=proxy.url, purpose=Purpose.PARTNER)
    results = await asyncio.gather(
        invitation.run(Screens().decide),
        join(sam, invitation.uri),
        return_exceptions=True,
    )
    assert isinstance(results[1], DecryptError)
    assert isinstance(results[0], ChannelGoneError)
    assert not sam.keystore.has_space(space)


# -- codes that are wrong, old, or used ----------------------------------------------------------


async def test_a_wrong_typed_code_burns_the_channel_after_one_try(
    tmp_path: Path, relay_url: str
) -> None:
    alex, space = await founder(tmp_path, relay_url)
    sam = make_account(tmp_path, "sam", "Sam")
    invitation = await create_invite(alex, space, relay_url=relay_url, purpose=Purpose.PARTNER)
    nameplate, *words = invitation.code.split("-")
    words[0] = WORDS[(WORDS.index(words[0]) + 1) % 256]
    typo = "-".join([nameplate, *words])
    results = await asyncio.gather(
        invitation.run(Screens().decide),
        join(sam, typo, relay_url=relay_url),
        return_exceptions=True,
    )
    assert isinstance(results[0], PairingFailedError)
    assert isinstance(results[1], ChannelGoneError)
    assert invitation.state == "burned"
    # The right code does not work any more: one guess per code.
    with pytest.raises(ChannelGoneError):
        await join(sam, invitation.code, relay_url=relay_url)
    assert not sam.keystore.has_space(space)


async def test_an_expired_code_is_refused(
    tmp_path: Path, relay_db_url: str, start_relay: Any
) -> None:
    relay = start_relay(relay_db_url, pairing_ttl=2)
    alex, space = await founder(tmp_path, relay.url)
    sam = make_account(tmp_path, "sam", "Sam")
    invitation = await create_invite(alex, space, relay_url=relay.url, purpose=Purpose.PARTNER)
    # The joining device's clock says the QR code is past its expiry.
    with pytest.raises(ExpiredError):
        await join(sam, invitation.uri, clock=lambda: invitation.expires_at)
    # The relay lets the channel go after its time: nothing to claim any more.
    await asyncio.sleep(3)
    with pytest.raises(ChannelGoneError):
        await join(sam, invitation.code, relay_url=relay.url)
    with pytest.raises(ChannelGoneError):
        await invitation.wait_for_request()
    assert not sam.keystore.has_space(space)


async def test_a_replayed_claim_and_a_second_claimant_are_refused(
    tmp_path: Path, relay_url: str
) -> None:
    alex, space = await founder(tmp_path, relay_url)
    sam = make_account(tmp_path, "sam", "Sam")
    eve = make_account(tmp_path, "eve", "Eve")
    invitation = await create_invite(alex, space, relay_url=relay_url, purpose=Purpose.PARTNER)
    seen: dict[str, BaseException] = {}
    screens = Screens()

    async def decide(request: JoinRequest) -> bool:
        # Sam has claimed the channel: every other claim fails, by id or by nameplate,
        # and nothing changes for the pairing under way.
        rendezvous = Rendezvous(relay_url)
        try:
            for attempt in ("replay", "nameplate"):
                try:
                    if attempt == "replay":
                        await rendezvous.claim(invitation.invite.channel)
                    else:
                        await rendezvous.claim_nameplate(invitation.invite.nameplate)
                except (ChannelClaimedError, ChannelGoneError) as error:
                    seen[attempt] = error
        finally:
            await rendezvous.close()
        try:
            await join(eve, invitation.uri)
        except ChannelClaimedError as error:
            seen["second claimant"] = error
        return await screens.decide(request)

    inviter_result, joiner_result = await asyncio.gather(
        invitation.run(decide), join(sam, invitation.uri, on_offer=screens.show_offer)
    )
    assert isinstance(seen["replay"], ChannelClaimedError)
    assert isinstance(seen["nameplate"], ChannelGoneError)  # freed when claimed
    assert isinstance(seen["second claimant"], ChannelClaimedError)
    assert inviter_result.outcome is joiner_result.outcome is Outcome.JOINED
    assert not eve.keystore.has_space(space)
    await pull(alex, space, relay_url)
    assert alex.replica(space).roster.active_devices == {alex.device, sam.device}


# -- what the relay keeps -------------------------------------------------------------------


async def _database_dump(url: str) -> list[Any]:
    from sqlalchemy import select
    from sqlalchemy.ext.asyncio import create_async_engine

    from server.models import Base

    engine = create_async_engine(url)
    values: list[Any] = []
    try:
        async with engine.connect() as connection:
            for table in Base.metadata.sorted_tables:
                for row in (await connection.execute(select(table))).all():
                    values.extend(row)
    finally:
        await engine.dispose()
    return values


def _needles(invitation: Invitation) -> tuple[list[bytes], list[str]]:
    secret = invitation.invite.secret
    code = invitation.code
    from protocol.pairing_codes import b64encode

    raw = [secret, code.encode(), code.encode().hex().encode()]
    text = [code, b64encode(secret), secret.hex(), " ".join(code.split("-"))]
    return raw, text


def _contains(values: list[Any], raw: list[bytes], text: list[str]) -> bool:
    for value in values:
        if isinstance(value, bytes | bytearray | memoryview):
            blob = bytes(value)
            if any(needle in blob for needle in raw) or any(t.encode() in blob for t in text):
                return True
        elif isinstance(value, str) and any(t in value for t in text):
            return True
    return False


@pytest.mark.parametrize("typed", [False, True], ids=["qr", "typed"])
async def test_the_relay_never_holds_the_secret_or_the_code(
    tmp_path: Path, relay_db_url: str, start_relay: Any, typed: bool
) -> None:
    relay = start_relay(relay_db_url, log_level="debug")
    alex, space = await founder(tmp_path, relay.url)
    sam = make_account(tmp_path, "sam", "Sam")
    invitation = await create_invite(alex, space, relay_url=relay.url, purpose=Purpose.PARTNER)
    raw, text = _needles(invitation)
    screens = Screens()
    during: list[Any] = []

    async def decide(request: JoinRequest) -> bool:
        during.extend(await _database_dump(relay.database_url))  # mid-pairing
        return await screens.decide(request)

    await asyncio.gather(
        invitation.run(decide),
        join(
            sam,
            invitation.code if typed else invitation.uri,
            relay_url=relay.url,
            on_offer=screens.show_offer,
        ),
    )
    assert during, "the database dump found nothing at all"
    assert not _contains(during, raw, text)
    assert not _contains(await _database_dump(relay.database_url), raw, text)
    logs = relay.logs()
    assert "/v1/pairing/" in logs  # the log is there, and records the calls
    assert not any(t in logs for t in text)
