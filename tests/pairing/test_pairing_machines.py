"""The two pairing machines talking in memory: the good paths, and every way to fail."""

from __future__ import annotations

from dataclasses import replace

import pytest
import spake2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pairing_helpers import NOW, RELAY, Pair
from pairing_vectors import build_welcome

from protocol import encoding
from protocol.crypto import DeviceKey, member_id_of
from protocol.entry import Entry, SeenHead
from protocol.epochs import wrap_epoch_key
from protocol.errors import (
    BadSignatureError,
    DecryptError,
    ExpiredError,
    MalformedError,
    PairingFailedError,
    ProtocolError,
    RosterError,
    UnexpectedMessageError,
    UsageError,
)
from protocol.pairing import SESSION_GRACE, Inviter, Joiner, State
from protocol.pairing_codes import WORDS, Purpose, parse_code
from protocol.pairing_keys import (
    SPAKE_ID_INVITER,
    SPAKE_ID_JOINER,
    SessionKeys,
    code_root,
    code_transcript,
    qr_root,
    qr_transcript,
    x25519_public,
    x25519_shared,
)
from protocol.pairing_messages import (
    Hello,
    JoinMode,
    Offer,
    Pake,
    Request,
    Welcome,
    decode_clear,
    encode_message,
)
from protocol.roster_records import join_proof

MODES = ["qr", "code"]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("purpose", [Purpose.PARTNER, Purpose.SELF])
def test_a_whole_pairing_delivers_every_message_intact(mode: str, purpose: Purpose) -> None:
    pair = Pair(mode=mode, purpose=purpose)
    pair.run()
    assert pair.inviter.state is State.DONE
    assert pair.joiner.state is State.DONE
    assert pair.inviter.mode is JoinMode(mode)
    assert pair.joiner.offer == pair.offer
    assert pair.inviter.request == pair.request()
    assert pair.joiner.welcome == pair.welcome()
    assert pair.inviter.sas == pair.joiner.sas
    assert len(pair.inviter.sas) == 6 and pair.inviter.sas.isdigit()


@pytest.mark.parametrize("mode", MODES)
def test_a_declined_pairing_ends_declined_on_both_sides(mode: str) -> None:
    pair = Pair(mode=mode)
    pair.pake()
    pair.hello()
    pair.offer_step()
    pair.request_step()
    pair.joiner.receive(pair.inviter.decline(), now=NOW)
    assert pair.inviter.state is State.DECLINED
    assert pair.joiner.state is State.DECLINED
    assert pair.joiner.welcome is None


def test_sessions_never_share_keys_or_sas_by_accident() -> None:
    sas = set()
    for _ in range(5):
        pair = Pair(mode="qr")
        pair.run()
        sas.add(pair.inviter.sas)
    assert len(sas) > 1


def test_the_relay_sees_no_secret_in_any_message() -> None:
    pair = Pair(mode="qr")
    pair.run()
    wire = b"".join(data for _side, data in pair.sent)
    for secret in (pair.invite.secret, pair.invite.ephemeral_secret, pair.invite.code_secret):
        assert secret not in wire
    assert str(pair.invite.code).encode() not in wire
    assert b"Sam" not in wire and b"Alex" not in wire and pair.space not in wire
    assert pair.joiner_device.public not in wire


# -- wrong codes and men in the middle ----------------------------------------------------------


def _other_word_code(code: str, index: int) -> str:
    parts = code.split("-")
    parts[index] = WORDS[(WORDS.index(parts[index]) + 1) % len(WORDS)]
    return "-".join(parts)


@pytest.mark.parametrize("index", [1, 2, 3, 4])
def test_a_wrong_typed_code_fails_the_mac_and_burns_the_inviter(index: int) -> None:
    pair = Pair(mode="code")
    pair.typed = _other_word_code(str(pair.invite.code), index)
    pair.__post_init__()
    pair.pake()
    with pytest.raises(PairingFailedError):
        pair.hello()
    assert pair.inviter.state is State.BURNED
    with pytest.raises(UsageError):
        pair.inviter.send_offer()


def test_a_code_with_another_nameplate_fails_too() -> None:
    pair = Pair(mode="code")
    words = "-".join(str(pair.invite.code).split("-")[1:])
    pair.typed = f"43-{words}"
    pair.__post_init__()
    pair.pake()
    with pytest.raises(PairingFailedError):
        pair.hello()


def test_a_relay_that_swaps_the_joiner_key_cannot_make_the_mac() -> None:
    pair = Pair(mode="qr")
    pair.pake()
    hello = decode_clear(pair.joiner.send_hello(now=NOW))
    assert isinstance(hello, Hello)
    relay_secret = bytes(range(1, 33))
    forged = Hello(mode=JoinMode.QR, key=x25519_public(relay_secret), mac=hello.mac)
    with pytest.raises(PairingFailedError):
        pair.inviter.receive(encode_message(forged), now=NOW)
    assert pair.inviter.state is State.BURNED


def test_a_relay_that_knows_s_still_cannot_fool_the_joiner() -> None:
    """Even with the QR secret leaked, a key-swapping relay gets different SAS on the two
    screens, and the joiner cannot open anything the relay sends."""
    pair = Pair(mode="qr")
    pair.pake()
    hello = decode_clear(pair.joiner.send_hello(now=NOW))
    assert isinstance(hello, Hello)
    relay_secret = bytes(range(1, 33))
    relay_key = x25519_public(relay_secret)
    invite = pair.invite
    transcript = qr_transcript(
        relay=invite.relay,
        channel=invite.channel,
        expires=invite.expires,
        purpose=invite.purpose,
        inviter_key=x25519_public(invite.ephemeral_secret),
        joiner_key=relay_key,
    )
    shared = x25519_shared(relay_secret, x25519_public(invite.ephemeral_secret))
    keys = SessionKeys.derive(
        root=qr_root(shared=shared, secret=invite.secret, transcript=transcript),
        transcript=transcript,
    )
    pair.inviter.receive(
        encode_message(Hello(mode=JoinMode.QR, key=relay_key, mac=keys.mac)), now=NOW
    )
    assert pair.inviter.sas == keys.sas
    assert pair.inviter.sas != pair.joiner.sas
    offer_for_relay = pair.inviter.send_offer()
    with pytest.raises(DecryptError):
        pair.joiner.receive(offer_for_relay, now=NOW)
    assert pair.joiner.state is State.BURNED


def test_a_relay_standing_in_for_the_inviter_gets_one_guess_at_the_code() -> None:
    pair = Pair(mode="code")
    pair.inviter.start()
    guess = _other_word_code(str(pair.invite.code), 1)
    relay_side = spake2.SPAKE2_A(
        parse_code(guess).password, idA=SPAKE_ID_INVITER, idB=SPAKE_ID_JOINER
    )
    relay_pake = Pake(pake=bytes(relay_side.start()))
    pair.joiner.receive(encode_message(relay_pake), now=NOW)
    hello = decode_clear(pair.joiner.send_hello(now=NOW))
    assert isinstance(hello, Hello) and hello.pake is not None
    relay_key = bytes(relay_side.finish(hello.pake))
    transcript = code_transcript(
        channel=pair.joiner.channel,
        nameplate="42",
        pake_inviter=relay_pake.pake,
        pake_joiner=hello.pake,
    )
    keys = SessionKeys.derive(
        root=code_root(spake_key=relay_key, transcript=transcript), transcript=transcript
    )
    assert keys.mac != hello.mac  # the one guess was wrong, and the relay learns only that
    # The joiner's hello is useless to the real inviter too.
    with pytest.raises(PairingFailedError):
        pair.inviter.receive(encode_message(hello), now=NOW)


def test_a_relay_that_guessed_the_code_is_caught_by_the_sas() -> None:
    """The 1 in 2**32 case: the relay runs SPAKE2 with each side under the right code.
    Both key agreements succeed, but the two screens show different SAS."""
    pair = Pair(mode="code")
    code = pair.invite.code
    inviter_pake = pair.inviter.start()
    # Relay, towards the joiner, as inviter:
    to_joiner = spake2.SPAKE2_A(code.password, idA=SPAKE_ID_INVITER, idB=SPAKE_ID_JOINER)
    to_joiner_pake = Pake(pake=bytes(to_joiner.start()))
    pair.joiner.receive(encode_message(to_joiner_pake), now=NOW)
    pair.joiner.send_hello(now=NOW)
    # Relay, towards the inviter, as joiner:
    to_inviter = spake2.SPAKE2_B(code.password, idA=SPAKE_ID_INVITER, idB=SPAKE_ID_JOINER)
    to_inviter_pake = bytes(to_inviter.start())
    inviter_side = decode_clear(inviter_pake)
    assert isinstance(inviter_side, Pake)
    key = bytes(to_inviter.finish(inviter_side.pake))
    transcript = code_transcript(
        channel=pair.invite.channel,
        nameplate=code.nameplate,
        pake_inviter=inviter_side.pake,
        pake_joiner=to_inviter_pake,
    )
    keys = SessionKeys.derive(
        root=code_root(spake_key=key, transcript=transcript), transcript=transcript
    )
    hello = Hello(mode=JoinMode.CODE, pake=to_inviter_pake, mac=keys.mac)
    pair.inviter.receive(encode_message(hello), now=NOW)
    assert pair.inviter.state is State.KEYED
    assert pair.inviter.sas != pair.joiner.sas


def test_a_low_order_joiner_key_burns_the_inviter() -> None:
    pair = Pair(mode="qr")
    pair.pake()
    forged = Hello(mode=JoinMode.QR, key=bytes(32), mac=bytes(32))
    with pytest.raises(PairingFailedError):
        pair.inviter.receive(encode_message(forged), now=NOW)
    assert pair.inviter.state is State.BURNED


# -- tampering, replays and messages out of turn -------------------------------------------------


def _steps(pair: Pair) -> list:
    return [pair.pake, pair.hello, pair.offer_step, pair.request_step, pair.welcome_step]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    mode=st.sampled_from(MODES),
    step=st.integers(min_value=0, max_value=5),
    position=st.integers(min_value=0),
    flip=st.integers(min_value=1, max_value=255),
)
def test_any_flipped_byte_burns_the_receiver(
    mode: str, step: int, position: int, flip: int
) -> None:
    pair = Pair(mode=mode)
    senders = [
        (pair.inviter.start, pair.joiner),
        (lambda: pair.joiner.send_hello(now=NOW), pair.inviter),
        (pair.inviter.send_offer, pair.joiner),
        (lambda: pair.joiner.send_request(pair.request()), pair.inviter),
        (lambda: pair.inviter.approve(pair.welcome()), pair.joiner),
        (pair.joiner.send_done, pair.inviter),
    ]
    for send, receiver in senders[:step]:
        receiver.receive(send(), now=NOW)
    send, receiver = senders[step]
    data = bytearray(send())
    data[position % len(data)] ^= flip
    try:
        receiver.receive(bytes(data), now=NOW)
        # A flipped pake may decode: the QR joiner never uses it, and in code mode the
        # inviter's MAC check catches it one message later.
        assert step == 0
        for send, receiver in senders[1:]:
            receiver.receive(send(), now=NOW)
    except ProtocolError:
        # The machine that raised (the receiver, or the joiner sending its hello after
        # a flipped pake) is burned.
        assert State.BURNED in (pair.inviter.state, pair.joiner.state)
        return
    assert mode == "qr"
    assert pair.inviter.state is State.DONE and pair.joiner.state is State.DONE


@pytest.mark.parametrize("mode", MODES)
def test_a_replayed_sealed_message_is_refused(mode: str) -> None:
    pair = Pair(mode=mode)
    pair.pake()
    pair.hello()
    offer = pair.offer_step()
    with pytest.raises(UnexpectedMessageError):
        pair.joiner.receive(offer, now=NOW)
    assert pair.joiner.state is State.BURNED


def test_a_replayed_hello_is_refused() -> None:
    pair = Pair(mode="qr")
    pair.pake()
    hello = pair.hello()
    with pytest.raises(UnexpectedMessageError):
        pair.inviter.receive(hello, now=NOW)
    assert pair.inviter.state is State.BURNED


def test_a_message_reflected_back_to_its_sender_does_not_open() -> None:
    pair = Pair(mode="qr")
    pair.pake()
    pair.hello()
    offer = pair.inviter.send_offer()  # sealed box 0 from the inviter
    with pytest.raises(DecryptError):  # the inviter expects box 0 from the joiner
        pair.inviter.receive(offer, now=NOW)
    assert pair.inviter.state is State.BURNED


def test_a_pake_is_never_legal_for_the_inviter() -> None:
    pair = Pair(mode="qr")
    pake = pair.pake()
    with pytest.raises(UnexpectedMessageError):
        pair.inviter.receive(pake, now=NOW)
    assert pair.inviter.state is State.BURNED


def test_a_sealed_message_before_any_key_is_out_of_turn() -> None:
    donor = Pair(mode="qr")
    donor.pake()
    donor.hello()
    offer = donor.inviter.send_offer()
    pair = Pair(mode="qr")
    with pytest.raises(UnexpectedMessageError):
        pair.joiner.receive(offer, now=NOW)


def test_a_hello_sent_to_the_joiner_is_out_of_turn() -> None:
    pair = Pair(mode="qr")
    pair.pake()
    hello = pair.joiner.send_hello(now=NOW)
    with pytest.raises(UnexpectedMessageError):
        pair.joiner.receive(hello, now=NOW)


def test_garbage_burns_the_receiver() -> None:
    pair = Pair(mode="code")
    with pytest.raises(MalformedError):
        pair.joiner.receive(b"\xff\x00garbage", now=NOW)
    assert pair.joiner.state is State.BURNED


def test_a_joiner_refuses_an_offer_whose_purpose_differs_from_the_qr_code() -> None:
    pair = Pair(mode="qr", purpose=Purpose.PARTNER)
    pair.pake()
    pair.hello()
    # A buggy or hostile inviter: the machine builds the offer from the invite, so
    # reach the same keys through a second inviter with a different offer.
    lying = Offer(
        purpose=Purpose.SELF,
        space=pair.space,
        inviter=pair.inviter_device.public,
        member=bytes(16),
        name="Alex",
    )
    pair.inviter.offer = lying
    with pytest.raises(MalformedError):
        pair.joiner.receive(pair.inviter.send_offer(), now=NOW)


def test_a_welcome_for_another_space_is_refused_by_the_inviter_itself() -> None:
    pair = Pair(mode="qr")
    pair.pake()
    pair.hello()
    pair.offer_step()
    pair.request_step()
    other = replace(pair.welcome(), space=bytes(16))
    with pytest.raises(UsageError):
        pair.inviter.approve(other)
    assert pair.inviter.state is State.AWAIT_APPROVAL


# -- expiry ---------------------------------------------------------------------------------------


def test_a_hello_at_the_expiry_is_refused_and_burns() -> None:
    pair = Pair(mode="code")
    pair.pake()
    late = pair.invite.expires
    hello = pair.joiner.send_hello(now=NOW)
    with pytest.raises(ExpiredError):
        pair.inviter.receive(hello, now=late)
    assert pair.inviter.state is State.BURNED


def test_a_qr_joiner_refuses_to_start_after_the_expiry() -> None:
    pair = Pair(mode="qr")
    pair.pake()
    with pytest.raises(ExpiredError):
        pair.joiner.send_hello(now=pair.invite.expires)
    assert pair.joiner.state is State.BURNED


def test_a_session_past_its_grace_period_expires() -> None:
    pair = Pair(mode="qr")
    pair.pake()
    pair.hello()
    offer = pair.inviter.send_offer()
    with pytest.raises(ExpiredError):
        pair.joiner.receive(offer, now=pair.invite.expires + SESSION_GRACE)
    assert pair.joiner.state is State.BURNED


# -- local misuse ----------------------------------------------------------------------------------


def test_local_misuse_raises_usage_errors_without_burning() -> None:
    pair = Pair(mode="qr")
    with pytest.raises(UsageError):
        pair.inviter.send_offer()
    with pytest.raises(UsageError):
        pair.joiner.send_hello(now=NOW)  # before the pake
    with pytest.raises(UsageError):
        _ = pair.joiner.sas
    assert pair.inviter.state is State.START
    assert pair.joiner.state is State.START


def test_nothing_is_received_once_the_pairing_is_over() -> None:
    pair = Pair(mode="qr")
    pair.run()
    with pytest.raises(UsageError):
        pair.inviter.receive(pair.sent[-1][1], now=NOW)


def test_burn_forgets_the_keys() -> None:
    pair = Pair(mode="qr")
    pair.pake()
    pair.hello()
    pair.inviter.burn()
    assert pair.inviter.state is State.BURNED
    with pytest.raises(UsageError):
        _ = pair.inviter.sas


def test_an_inviter_offer_must_match_the_invite_purpose() -> None:
    pair = Pair(purpose=Purpose.PARTNER)
    offer = Offer(
        purpose=Purpose.SELF,
        space=pair.space,
        inviter=pair.inviter_device.public,
        member=bytes(16),
        name="Alex",
    )
    with pytest.raises(UsageError):
        Inviter(pair.invite, offer)


@settings(max_examples=40, deadline=None)
@given(data=st.binary(max_size=400), steps=st.integers(min_value=0, max_value=3))
def test_random_bytes_in_any_state_burn_or_are_refused(data: bytes, steps: int) -> None:
    pair = Pair(mode="qr")
    for step in [pair.pake, pair.hello, pair.offer_step][:steps]:
        step()
    receiver: Inviter | Joiner = pair.joiner if steps % 2 == 0 else pair.inviter
    with pytest.raises(ProtocolError):
        receiver.receive(data, now=NOW)
    assert receiver.state is State.BURNED


def test_an_oversized_welcome_is_refused_before_sending() -> None:
    pair = Pair(mode="qr")
    pair.pake()
    pair.hello()
    pair.offer_step()
    pair.request_step()
    huge = replace(pair.welcome(), envelopes=tuple(bytes([i]) * 4096 for i in range(1, 6)))
    with pytest.raises(ProtocolError):
        pair.inviter.approve(huge)
    assert pair.inviter.state is State.AWAIT_APPROVAL


def test_request_and_hello_maps_round_trip() -> None:
    request = Request(device=bytes(32), name="Sam", proof=bytes(64))
    assert encoding.decode_map(encode_message(request)) == request.to_map()


@pytest.mark.parametrize("purpose", [Purpose.PARTNER, Purpose.SELF])
def test_a_request_whose_join_proof_does_not_verify_burns_the_inviter(purpose: Purpose) -> None:
    pair = Pair(mode="qr", purpose=purpose)
    pair.pake()
    pair.hello()
    pair.offer_step()
    good = pair.request()
    # Signed for another space: a proof that cannot go into this roster.
    wrong_space = join_proof(
        pair.joiner_device,
        space=bytes(16),
        member=pair.offer.member or member_id_of(pair.joiner_device.public),
        by=pair.inviter_device.public,
    )
    forged = Request(device=good.device, name=good.name, proof=wrong_space)
    with pytest.raises(BadSignatureError):
        pair.inviter.receive(pair.joiner.send_request(forged), now=NOW)
    assert pair.inviter.state is State.BURNED
    assert pair.inviter.request is None


# -- the welcome must admit exactly the requested device -----------------------------------------


def _ready_for_welcome(purpose: Purpose = Purpose.PARTNER) -> Pair:
    pair = Pair(mode="qr", purpose=purpose)
    pair.pake()
    pair.hello()
    pair.offer_step()
    pair.request_step()
    return pair


def _send_welcome(pair: Pair, welcome: Welcome) -> None:
    pair.joiner.receive(pair.inviter.approve(welcome), now=NOW)


@pytest.mark.parametrize("purpose", [Purpose.PARTNER, Purpose.SELF])
def test_a_welcome_that_adds_another_device_is_refused(purpose: Purpose) -> None:
    pair = _ready_for_welcome(purpose)
    stranger = DeviceKey.generate()
    member = pair.offer.member or member_id_of(stranger.public)
    proof = join_proof(stranger, space=pair.space, member=member, by=pair.inviter_device.public)
    other_request = Request(device=stranger.public, name="Sam", proof=proof)
    welcome = build_welcome(
        inviter=pair.inviter_device,
        space=pair.space,
        purpose=purpose,
        request=other_request,
        relay=RELAY,
        epoch_key=pair.epoch_key,
    )
    with pytest.raises(RosterError):
        _send_welcome(pair, replace(welcome, envelopes=pair.welcome().envelopes))
    assert pair.joiner.state is State.BURNED
    assert pair.joiner.welcome is None


def test_a_welcome_signed_by_another_device_is_refused() -> None:
    pair = _ready_for_welcome()
    good = pair.welcome()
    added = Entry.from_bytes(good.added)
    forged = replace(added, sig=DeviceKey.generate().sign(added.signing_bytes()))
    with pytest.raises(BadSignatureError):
        _send_welcome(pair, replace(good, added=forged.to_bytes()))


def test_a_welcome_whose_heads_miss_the_added_entry_is_refused() -> None:
    pair = _ready_for_welcome()
    good = pair.welcome()
    stale = SeenHead(device=pair.inviter_device.public, seq=1, id=bytes(32))
    with pytest.raises(RosterError):
        _send_welcome(pair, replace(good, heads=(stale,)))


def test_a_welcome_without_keys_or_with_keys_for_another_device_is_refused() -> None:
    pair = _ready_for_welcome()
    # No envelopes is malformed (SPEC 11.6.5): such a welcome cannot even be built, and
    # decoding refuses its bytes (pairing-message.json, "a welcome with no envelopes").
    with pytest.raises(MalformedError):
        replace(pair.welcome(), envelopes=())
    elsewhere = wrap_epoch_key(
        from_key=pair.inviter_device,
        to=DeviceKey.generate().public,
        space=pair.space,
        epoch=0,
        epoch_key=pair.epoch_key,
    )
    with pytest.raises(RosterError):
        _send_welcome(pair, replace(pair.welcome(), envelopes=(elsewhere.to_bytes(),)))


def test_a_welcome_with_garbage_for_its_entry_is_malformed() -> None:
    pair = _ready_for_welcome()
    with pytest.raises(MalformedError):
        _send_welcome(pair, replace(pair.welcome(), added=b"not an entry"))
