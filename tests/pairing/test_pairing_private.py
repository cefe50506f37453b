"""Self pairing links the member's private space (SPEC.md 11.12): in memory, and through a
real relay on loopback (SQLite and PostgreSQL).

The new device reads the journal written before it came, writes entries its other devices
read as their member's, and can itself link a third device. Partner pairing never carries
the private space; a device whose member has none pairs as before; a tampered byte or a
"private" space with another member in it leaves the new device with nothing.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest
from pairing_helpers import NOW, Pair
from pairing_relay_helpers import RelayProxy, Screens, founder, make_account, pair, publish, pull
from pairing_vectors import build_private_part

from client_lib.account import Account
from client_lib.keystore import SpaceKind
from client_lib.pairing import Outcome, PairingResult, create_invite, join
from client_lib.records import JournalEntry
from client_lib.sync import relay_url_of
from protocol.crypto import member_id_of, random_bytes
from protocol.errors import BadSignatureError, DecryptError, MalformedError, RosterError, UsageError
from protocol.pairing import State
from protocol.pairing_codes import Purpose
from protocol.pairing_messages import Request, Sealed, decode_clear, encode_message
from protocol.roster import AddMember, join_proof

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
MODES = ["qr", "code"]


# -- the machines, in memory ---------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_a_self_pairing_that_links_the_private_space_runs_to_the_end(mode: str) -> None:
    private = random_bytes(16)
    pair_ = Pair(mode=mode, purpose=Purpose.SELF, private=private)
    pair_.run()
    assert pair_.inviter.state is pair_.joiner.state is State.DONE
    assert pair_.joiner.offer is not None and pair_.joiner.offer.private == private
    assert pair_.inviter.request is not None and pair_.inviter.request.private_proof is not None
    assert pair_.joiner.welcome is not None and pair_.joiner.welcome.private is not None
    assert pair_.joiner.welcome.private.space == private


def test_a_joiner_may_leave_an_offered_private_space_out() -> None:
    pair_ = Pair(purpose=Purpose.SELF, private=random_bytes(16), take_private=False)
    pair_.run()
    assert pair_.joiner.state is State.DONE
    assert pair_.joiner.welcome is not None and pair_.joiner.welcome.private is None


def _requested(private: bytes | None = None, take_private: bool = True) -> Pair:
    pair_ = Pair(purpose=Purpose.SELF, private=private, take_private=take_private)
    pair_.pake()
    pair_.hello()
    pair_.offer_step()
    return pair_


def test_a_private_proof_goes_only_with_an_offered_private_space() -> None:
    pair_ = _requested()
    with_proof = replace(pair_.request(), private_proof=bytes(64))
    with pytest.raises(UsageError):  # local misuse: the machine refuses, without burning
        pair_.joiner.send_request(with_proof)
    assert pair_.joiner.state is State.OFFERED
    # A joiner that sends one all the same (here, one told of a private space the inviter
    # never offered) is refused by the inviter.
    assert pair_.joiner.offer is not None
    pair_.joiner.offer = replace(pair_.joiner.offer, private=random_bytes(16))
    with pytest.raises(MalformedError):
        pair_.inviter.receive(pair_.joiner.send_request(with_proof), now=NOW)
    assert pair_.inviter.state is State.BURNED


def test_a_private_proof_bound_to_the_shared_space_burns_the_inviter() -> None:
    pair_ = _requested(private=random_bytes(16))
    good = pair_.request()
    swapped = replace(good, private_proof=good.proof)
    with pytest.raises(BadSignatureError):
        pair_.inviter.receive(pair_.joiner.send_request(swapped), now=NOW)
    assert pair_.inviter.state is State.BURNED and pair_.inviter.request is None


def test_the_shared_space_proof_cannot_admit_the_device_to_the_private_space() -> None:
    """The inviter (or anyone) reusing the shared space's proof for the private space's
    roster entry is caught by the joiner: each proof names its own space."""
    pair_ = _requested(private=random_bytes(16))
    pair_.request_step()
    good = pair_.welcome()
    assert good.private is not None
    assert pair_.private is not None
    wrong_proof = build_private_part(
        inviter=pair_.inviter_device,
        private=pair_.private,
        device=pair_.joiner_device.public,
        proof=pair_.request().proof,  # signed for the shared space
        epoch_key=pair_.private_epoch_key,
    )
    forged = replace(good, private=wrong_proof)
    with pytest.raises(RosterError):
        pair_.joiner.receive(pair_.inviter.approve(forged), now=NOW)
    assert pair_.joiner.state is State.BURNED and pair_.joiner.welcome is None


def test_a_welcome_must_carry_the_private_space_exactly_when_it_was_asked_for() -> None:
    asked = _requested(private=random_bytes(16))
    asked.request_step()
    with pytest.raises(RosterError):
        asked.joiner.receive(asked.inviter.approve(replace(asked.welcome(), private=None)), now=NOW)

    not_asked = _requested(private=random_bytes(16), take_private=False)
    not_asked.request_step()
    linked = Pair(
        purpose=Purpose.SELF,
        private=not_asked.private,
        inviter_device=not_asked.inviter_device,
        joiner_device=not_asked.joiner_device,
        space=not_asked.space,
    ).welcome()
    with pytest.raises(RosterError):
        not_asked.joiner.receive(not_asked.inviter.approve(linked), now=NOW)


def test_the_inviter_sends_no_private_part_for_another_space() -> None:
    pair_ = _requested(private=random_bytes(16))
    pair_.request_step()
    welcome = pair_.welcome()
    assert welcome.private is not None
    elsewhere = replace(welcome, private=replace(welcome.private, space=random_bytes(16)))
    with pytest.raises(UsageError):
        pair_.inviter.approve(elsewhere)
    assert pair_.inviter.state is State.AWAIT_APPROVAL


# -- through a real relay ---------------------------------------------------------------------


def _journal(account: Account) -> list[str]:
    return [entry.text for entry in account.journal().entries()]


def _private_space(account: Account) -> bytes:
    private = account.private_replica()
    assert private is not None
    return private.space


async def _link(
    inviter: Account, space: bytes, joiner: Account, relay_url: str, *, typed: bool = False
) -> tuple[Screens, PairingResult, PairingResult]:
    invitation = await create_invite(inviter, space, relay_url=relay_url, purpose=Purpose.SELF)
    screens = Screens()
    code = invitation.code if typed else invitation.uri
    inviter_result, joiner_result = await pair(invitation, joiner, code, screens, relay_url)
    return screens, inviter_result, joiner_result


@pytest.mark.parametrize("typed", [False, True], ids=["qr", "typed"])
async def test_a_linked_device_reads_the_journal_and_writes_as_its_member(
    tmp_path: Path, relay_url: str, typed: bool
) -> None:
    alex, space = await founder(tmp_path, relay_url)
    private = _private_space(alex)
    alex.journal().write("Before the phone, already on the relay.")
    await publish(alex, private, relay_url)
    alex.journal().write("Before the phone, still only on the laptop.")  # sent while pairing

    phone = make_account(tmp_path, "alex-phone", "Alex’s phone", found_private_space=False)
    screens, inviter_result, joiner_result = await _link(alex, space, phone, relay_url, typed=typed)
    assert inviter_result.outcome is joiner_result.outcome is Outcome.JOINED
    assert inviter_result.private_space == joiner_result.private_space == private
    assert screens.request is not None and screens.request.private
    assert screens.offer is not None and screens.offer.private

    # It reads the journal written before it came.
    assert _journal(phone) == [
        "Before the phone, already on the relay.",
        "Before the phone, still only on the laptop.",
    ]
    kinds = {info.space: info.kind for info in phone.spaces()}
    assert kinds == {space: SpaceKind.SHARED, private: SpaceKind.PRIVATE}
    assert relay_url_of(phone.replica(private)) == relay_url.rstrip("/")
    roster = phone.replica(private).roster
    assert roster.members == {alex.member_id}
    assert roster.active_devices == {alex.device, phone.device}

    # What it writes there is Alex's, on Alex's first device.
    written = phone.journal().write("From the phone.")
    await publish(phone, private, relay_url)
    await pull(alex, private, relay_url)
    assert _journal(alex)[-1] == "From the phone."
    assert written.member == alex.member_id
    held = alex.replica(private)
    assert held.roster.member_of(phone.device) == alex.member_id
    voices = held.voice_records()
    assert set(voices) == {alex.member_id}
    mine = [r for r in voices[alex.member_id] if isinstance(r, JournalEntry)]
    assert {r.text for r in mine} == set(_journal(alex))
    assert {r.member for r in mine} == {alex.member_id}
    assert not held.problems()


async def test_a_third_device_linked_by_the_second_reads_everything(
    tmp_path: Path, relay_url: str
) -> None:
    alex, space = await founder(tmp_path, relay_url)
    private = _private_space(alex)
    alex.journal().write("From the laptop.")
    phone = make_account(tmp_path, "alex-phone", "Alex’s phone", found_private_space=False)
    await _link(alex, space, phone, relay_url)
    phone.journal().write("From the phone.")
    await publish(phone, private, relay_url)

    tablet = make_account(tmp_path, "alex-tablet", "Alex’s tablet", found_private_space=False)
    _, inviter_result, joiner_result = await _link(phone, space, tablet, relay_url, typed=True)
    assert inviter_result.private_space == joiner_result.private_space == private
    assert tablet.member_id == alex.member_id
    assert _journal(tablet) == ["From the laptop.", "From the phone."]
    tablet.journal().write("From the tablet.")
    await publish(tablet, private, relay_url)
    for other in (alex, phone):
        await pull(other, private, relay_url)
        assert _journal(other) == ["From the laptop.", "From the phone.", "From the tablet."]
        roster = other.replica(private).roster
        assert roster.active_devices == {alex.device, phone.device, tablet.device}
        assert roster.members == {alex.member_id}


async def test_partner_pairing_never_carries_the_private_space(
    tmp_path: Path, relay_url: str
) -> None:
    alex, space = await founder(tmp_path, relay_url)
    private = _private_space(alex)
    alex.journal().write("Only mine.")
    await publish(alex, private, relay_url)
    sam = make_account(tmp_path, "sam", "Sam", found_private_space=False)
    invitation = await create_invite(alex, space, relay_url=relay_url, purpose=Purpose.PARTNER)
    assert invitation.private_space is None
    screens = Screens()
    inviter_result, joiner_result = await pair(invitation, sam, invitation.uri, screens, relay_url)
    assert inviter_result.outcome is joiner_result.outcome is Outcome.JOINED
    assert inviter_result.private_space is joiner_result.private_space is None
    assert screens.request is not None and not screens.request.private
    assert screens.offer is not None and not screens.offer.private
    assert not sam.keystore.has_space(private)
    assert [info.space for info in sam.spaces()] == [space]
    await pull(alex, private, relay_url)
    assert alex.replica(private).roster.active_devices == {alex.device}
    # The same device's self invite does offer it: the difference is the purpose alone.
    self_invite = await create_invite(alex, space, relay_url=relay_url, purpose=Purpose.SELF)
    assert self_invite.private_space == private
    await self_invite.cancel()


async def test_a_member_without_a_private_space_still_links_a_device(
    tmp_path: Path, relay_url: str
) -> None:
    """An older profile: Sam joined as a partner and never founded a private space."""
    alex, space = await founder(tmp_path, relay_url)
    sam = make_account(tmp_path, "sam", "Sam", found_private_space=False)
    invitation = await create_invite(alex, space, relay_url=relay_url, purpose=Purpose.PARTNER)
    await pair(invitation, sam, invitation.uri, Screens(), relay_url)
    assert sam.private_replica() is None

    laptop = make_account(
        tmp_path, "sam-laptop", "Sam’s laptop", member_id=sam.member_id, found_private_space=False
    )
    self_invite = await create_invite(sam, space, relay_url=relay_url, purpose=Purpose.SELF)
    assert self_invite.private_space is None
    screens = Screens()
    inviter_result, joiner_result = await pair(
        self_invite, laptop, self_invite.code, screens, relay_url
    )
    assert inviter_result.outcome is joiner_result.outcome is Outcome.JOINED
    assert joiner_result.private_space is None and screens.offer is not None
    assert not screens.offer.private
    assert laptop.private_replica() is None
    assert laptop.replica(space).roster.member_of(laptop.device) == sam.member_id


async def test_a_flipped_byte_in_the_welcome_links_nothing(
    tmp_path: Path, proxy: RelayProxy
) -> None:
    def flip(author: str, body: bytes) -> bytes:
        message = decode_clear(body)
        if author == "a" and isinstance(message, Sealed) and message.seq == 1:  # the welcome
            damaged = bytearray(message.box)
            damaged[len(damaged) // 3] ^= 0x01
            return encode_message(Sealed(seq=message.seq, box=bytes(damaged)))
        return body

    proxy.rewrite = flip
    alex, space = await founder(tmp_path, proxy.url)
    phone = make_account(tmp_path, "alex-phone", "Alex’s phone", found_private_space=False)
    invitation = await create_invite(alex, space, relay_url=proxy.url, purpose=Purpose.SELF)
    assert invitation.private_space == _private_space(alex)
    screens = Screens()
    results = await asyncio.gather(
        invitation.run(screens.decide),
        pair_join(phone, invitation.uri, screens),
        return_exceptions=True,
    )
    assert isinstance(results[1], DecryptError)
    assert not isinstance(results[0], BaseException) and not results[0].confirmed
    assert phone.spaces() == []
    assert phone.member_id == member_id_of(phone.device)  # as it was made: nothing taken on


async def test_a_flipped_byte_in_the_request_adds_the_device_nowhere(
    tmp_path: Path, proxy: RelayProxy
) -> None:
    def flip(author: str, body: bytes) -> bytes:
        message = decode_clear(body)
        if author == "b" and isinstance(message, Sealed) and message.seq == 0:  # the request
            damaged = bytearray(message.box)
            damaged[-5] ^= 0x80
            return encode_message(Sealed(seq=message.seq, box=bytes(damaged)))
        return body

    proxy.rewrite = flip
    alex, space = await founder(tmp_path, proxy.url)
    private = _private_space(alex)
    phone = make_account(tmp_path, "alex-phone", "Alex’s phone", found_private_space=False)
    invitation = await create_invite(alex, space, relay_url=proxy.url, purpose=Purpose.SELF)
    results = await asyncio.gather(
        invitation.run(Screens().decide),
        pair_join(phone, invitation.uri, Screens()),
        return_exceptions=True,
    )
    assert isinstance(results[0], DecryptError)
    assert isinstance(results[1], BaseException)
    for replica in (alex.replica(space), alex.replica(private)):
        assert phone.device not in replica.roster.known_devices
    assert phone.spaces() == []


async def test_a_private_space_with_another_member_in_it_is_refused(
    tmp_path: Path, relay_url: str
) -> None:
    alex, space = await founder(tmp_path, relay_url)
    private = _private_space(alex)
    sam = make_account(tmp_path, "sam", "Sam", found_private_space=False)
    proof = join_proof(sam.keystore.device_key, space=private, member=sam.member_id, by=alex.device)
    held = alex.replica(private)
    held.append_roster(AddMember(member=sam.member_id, device=sam.device, proof=proof))
    await publish(alex, private, relay_url)
    assert held.roster.members == {alex.member_id, sam.member_id}

    phone = make_account(tmp_path, "alex-phone", "Alex’s phone", found_private_space=False)
    invitation = await create_invite(alex, space, relay_url=relay_url, purpose=Purpose.SELF)
    screens = Screens()
    results = await asyncio.gather(
        invitation.run(screens.decide),
        pair_join(phone, invitation.uri, screens),
        return_exceptions=True,
    )
    assert isinstance(results[1], RosterError), results
    assert phone.spaces() == []  # neither space is kept
    assert phone.member_id == member_id_of(phone.device) != alex.member_id  # as it was made


async def pair_join(account: Account, invite: str, screens: Screens) -> PairingResult:
    return await join(account, invite, on_offer=screens.show_offer)


def test_request_maps_carry_the_private_proof_only_when_there_is_one() -> None:
    plain = Request(device=bytes(32), name="A", proof=bytes(64))
    assert "private_proof" not in plain.to_map()
    assert replace(plain, private_proof=bytes(64)).to_map()["private_proof"] == bytes(64)
