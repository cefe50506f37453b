"""Key epochs: envelopes, and the epoch rule for entries."""

from __future__ import annotations

import dataclasses

import nacl.bindings as sodium
import pytest

from protocol.crypto import DeviceKey, key_id
from protocol.epochs import (
    KeyEnvelope,
    check_entry_epoch,
    epoch_floors,
    new_epoch_key,
    seal_to,
    unwrap_epoch_key,
    wrap_epoch_key,
)
from protocol.errors import (
    BadSignatureError,
    DecryptError,
    UnknownDeviceError,
    UsageError,
    WrongEpochError,
    WrongSpaceError,
)
from protocol.roster import NewEpoch, fold
from protocol.vectors.generate import K1, K2, OTHER_SPACE, SPACE, Author
from protocol.vectors.generate_feeds import Space

SENDER, RECIPIENT, OTHER = (DeviceKey.generate(bytes([i]) * 32) for i in (1, 2, 3))


def test_a_fresh_key_is_random_and_wraps_to_each_device() -> None:
    key = new_epoch_key()
    assert len(key) == 32 and key != new_epoch_key()
    envelope = wrap_epoch_key(
        from_key=SENDER, to=RECIPIENT.public, space=SPACE, epoch=3, epoch_key=key
    )
    again = KeyEnvelope.from_bytes(envelope.to_bytes())
    assert again == envelope and again.key_id == key_id(key)
    assert (
        unwrap_epoch_key(
            again,
            device_key=RECIPIENT,
            trusted_senders={SENDER.public},
            space=SPACE,
            announced_key_id=key_id(key),
        )
        == key
    )
    # Two wraps of the same key differ (a fresh ephemeral key each time).
    other = wrap_epoch_key(
        from_key=SENDER, to=RECIPIENT.public, space=SPACE, epoch=3, epoch_key=key
    )
    assert other.box != envelope.box


def test_the_deterministic_box_is_a_real_sealed_box() -> None:
    box = seal_to(RECIPIENT.public, b"k" * 32, ephemeral_secret=bytes(range(32)))
    opened = sodium.crypto_box_seal_open(box, RECIPIENT.x25519_public, RECIPIENT.x25519_secret)
    assert opened == b"k" * 32
    with pytest.raises(UsageError):
        seal_to(RECIPIENT.public, b"k", ephemeral_secret=b"short")


def _envelope() -> KeyEnvelope:
    return wrap_epoch_key(from_key=SENDER, to=RECIPIENT.public, space=SPACE, epoch=1, epoch_key=K1)


def _resigned(envelope: KeyEnvelope, by: DeviceKey, **changes: object) -> KeyEnvelope:
    unsigned = dataclasses.replace(envelope, sig=b"", **changes)  # type: ignore[arg-type]
    return dataclasses.replace(unsigned, sig=by.sign(unsigned.signing_bytes()))


@pytest.mark.parametrize(
    ("tamper", "error"),
    [
        (lambda e: dataclasses.replace(e, epoch=2), BadSignatureError),
        (lambda e: _resigned(e, OTHER), BadSignatureError),
        (lambda e: _resigned(e, SENDER, key_id=key_id(K2)), WrongEpochError),
        (lambda e: _resigned(e, SENDER, recipient=OTHER.public), DecryptError),
        (lambda e: _resigned(e, SENDER, space=OTHER_SPACE), WrongSpaceError),
    ],
)
def test_unwrap_refuses(tamper: object, error: type[Exception]) -> None:
    envelope = tamper(_envelope())  # type: ignore[operator]
    with pytest.raises(error):
        unwrap_epoch_key(
            envelope, device_key=RECIPIENT, trusted_senders={SENDER.public}, space=SPACE
        )


def test_unwrap_checks_the_sender_the_recipient_and_the_roster_key_id() -> None:
    envelope = _envelope()
    with pytest.raises(UnknownDeviceError):
        unwrap_epoch_key(envelope, device_key=RECIPIENT, trusted_senders={OTHER.public})
    with pytest.raises(DecryptError):
        unwrap_epoch_key(envelope, device_key=OTHER, trusted_senders={SENDER.public})
    with pytest.raises(WrongEpochError):
        unwrap_epoch_key(
            envelope,
            device_key=RECIPIENT,
            trusted_senders={SENDER.public},
            announced_key_id=key_id(K2),
        )


def test_epoch_rule_over_a_rotation() -> None:
    s = Space("t-epochs")
    s.found()
    s.add_phone()
    s.invite_blake()
    rotation = s.add(s.blake.roster(NewEpoch(epoch=1, key_id=key_id(K1)), seen=(s.alice.at(),)))
    after = s.add(s.alice.data("after the rotation", epoch=1, epoch_key=K1, seen=(s.blake.at(),)))
    stale = s.add(s.phone.data("still in epoch 0", seen=(s.blake.at(),)))
    unaware = s.add(s.phone.data("phone still in 0", epoch=0))
    roster, refused = fold(s.entries, space=SPACE)
    assert refused == [] and roster.rotations == {rotation.id: 1}
    floors = epoch_floors(s.entries, roster.rotations)
    assert floors[rotation.id] == 0 and floors[after.id] == 1 and floors[stale.id] == 1
    check_entry_epoch(after, known_epochs=roster.known_epochs, floor=1, prev_epoch=0)
    with pytest.raises(WrongEpochError):
        check_entry_epoch(
            stale, known_epochs=roster.known_epochs, floor=floors[stale.id], prev_epoch=0
        )
    with pytest.raises(WrongEpochError):  # the previous entry of its feed is in epoch 1 here
        check_entry_epoch(unaware, known_epochs=roster.known_epochs, floor=0, prev_epoch=1)
    with pytest.raises(WrongEpochError):
        check_entry_epoch(
            Author("t-epochs-x").data("epoch 5", epoch=5, epoch_key=K2),
            known_epochs=roster.known_epochs,
            floor=0,
            prev_epoch=0,
        )


def test_a_roster_entry_may_not_go_back_an_epoch_in_the_fold() -> None:
    s = Space("t-epochs-back")
    s.found()
    s.add_phone()
    s.invite_blake()
    s.add(s.blake.roster(NewEpoch(epoch=1, key_id=key_id(K1)), seen=(s.alice.at(),)))
    late = s.add(
        s.alice.roster(NewEpoch(epoch=2, key_id=key_id(K2)), epoch=0, seen=(s.blake.at(),))
    )
    roster, refused = fold(s.entries, space=SPACE)
    assert [(r.entry.id, r.code.value) for r in refused] == [(late.id, "wrong_epoch")]
    assert roster.epoch == 1
