"""The roster: records, the rules of apply, and the order-independent fold."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.crypto import key_id, member_id_of
from protocol.entry import Entry
from protocol.errors import (
    BadSignatureError,
    DeviceRemovedError,
    RosterError,
    UnknownDeviceError,
    UsageError,
    WrongEpochError,
    WrongSpaceError,
)
from protocol.roster import (
    AddDevice,
    AddMember,
    Found,
    NewEpoch,
    RemoveDevice,
    RemoveMember,
    Roster,
    fold,
    join_proof,
)
from protocol.vectors.generate import K1, K2, OTHER_SPACE, SPACE, Author, fixed
from protocol.vectors.generate_feeds import Space


def base(prefix: str) -> Space:
    space = Space(prefix)
    space.found()
    space.add_phone()
    space.invite_blake()
    return space


def replay(entries: list[Entry]) -> Roster:
    """Apply in the given order, the way a relay does."""
    roster = Roster.empty(SPACE)
    for entry in entries:
        if entry.type.value == "roster":
            roster.apply(entry)
    return roster


def test_pairing_builds_two_members() -> None:
    s = base("t-pair")
    roster, refused = fold(s.entries, space=SPACE)
    assert refused == []
    assert roster.members == {s.alice.member, s.blake.member}
    assert roster.devices_of(s.alice.member) == tuple(sorted([s.alice.public, s.phone.public]))
    assert roster.member_of(s.phone.public) == s.alice.member
    assert roster.is_active(s.blake.public) and roster.accepts(s.blake.public, 99)
    assert roster.epoch == 0 and roster.epoch_key_ids == {}
    assert replay(s.entries).members == roster.members


def test_rotation_and_removal() -> None:
    s = base("t-rot")
    rot = s.add(s.blake.roster(NewEpoch(epoch=1, key_id=key_id(K1)), seen=(s.alice.at(),)))
    roster, _ = fold(s.entries, space=SPACE)
    assert roster.epoch == 1 and roster.epoch_key_ids == {1: key_id(K1)}
    assert roster.rotations == {rot.id: 1} and not roster.rotation_due
    s.add(
        s.alice.roster(
            RemoveDevice(device=s.phone.public, last_seq=s.phone.seq),
            epoch=1,
            seen=(s.blake.at(), s.phone.at()),
        )
    )
    roster, refused = fold(s.entries, space=SPACE)
    assert refused == [] and roster.rotation_due
    assert not roster.is_active(s.phone.public) and roster.cut_of(s.phone.public) == 1
    assert roster.accepts(s.phone.public, 1) and not roster.accepts(s.phone.public, 2)
    with pytest.raises(DeviceRemovedError):
        roster.check_author(s.phone.public, 2)
    s.add(s.alice.roster(NewEpoch(epoch=2, key_id=key_id(K2)), epoch=1))
    assert not fold(s.entries, space=SPACE)[0].rotation_due


def test_a_device_cut_below_its_rotation_makes_a_rotation_due() -> None:
    s = base("t-stale")
    # The phone rotates concurrently with its own removal (alice has not seen it).
    s.add(s.phone.roster(NewEpoch(epoch=1, key_id=key_id(K1)), seen=(s.alice.at(), s.blake.at())))
    phone_1 = dataclasses.replace(s.phone.at(), seq=1, id=s.entries[2].id)
    s.add(
        s.alice.roster(
            RemoveDevice(device=s.phone.public, last_seq=1),
            seen=tuple(sorted([phone_1, s.blake.at()], key=lambda h: h.device)),
        )
    )
    roster, refused = fold(s.entries, space=SPACE)
    assert [r.code.value for r in refused] == ["device_removed"]
    assert roster.epoch == 0 and roster.rotation_due


def test_leaving_and_removing_a_member() -> None:
    s = base("t-leave")
    with pytest.raises(RosterError):  # a leaving device names its leaving entry
        replay(s.entries).apply(
            s.blake.roster(RemoveDevice(device=s.blake.public, last_seq=1), seen=(s.alice.at(),))
        )
    s = base("t-leave2")
    s.add(s.blake.roster(RemoveDevice(device=s.blake.public, last_seq=2), seen=(s.alice.at(),)))
    roster, refused = fold(s.entries, space=SPACE)
    assert refused == [] and roster.members == {s.alice.member}
    assert roster.former_members == {s.blake.member}
    s = base("t-remove-member")
    s.add(
        s.blake.roster(
            RemoveMember(
                member=s.alice.member,
                last_seqs=tuple(sorted([(s.alice.public, s.alice.seq), (s.phone.public, 1)])),
            ),
            seen=(s.alice.at(), s.phone.at()),
        )
    )
    roster, refused = fold(s.entries, space=SPACE)
    assert refused == [] and roster.members == {s.blake.member}
    assert roster.devices_of(s.alice.member) == ()
    # The removed member's devices can never come back, nor the member id.
    proof = join_proof(s.phone.key, space=SPACE, member=s.blake.member, by=s.blake.public)
    with pytest.raises(RosterError):
        roster.apply(
            s.blake.roster(AddDevice(member=s.blake.member, device=s.phone.public, proof=proof))
        )


@pytest.mark.parametrize(
    ("build", "error"),
    [
        ("data_entry", UsageError),
        ("other_space", WrongSpaceError),
        ("forged", BadSignatureError),
        ("stranger", UnknownDeviceError),
        ("unknown_epoch", WrongEpochError),
        ("add_to_other_member", RosterError),
        ("existing_device", RosterError),
        ("proof_for_another_writer", BadSignatureError),
        ("skip_epoch", RosterError),
        ("cut_seen_entries", RosterError),
        ("second_found", RosterError),
    ],
)
def test_apply_refuses(build: str, error: type[Exception]) -> None:
    s = base(f"t-refuse-{build}")
    roster = replay(s.entries)
    before = (roster.members, roster.active_devices, roster.epoch)
    new = Author(f"t-new-{build}")
    entry: Entry
    if build == "data_entry":
        entry = s.alice.data("hello")
    elif build == "other_space":
        entry = Author(s.alice.label, space=OTHER_SPACE).roster(NewEpoch(epoch=1, key_id=bytes(8)))
    elif build == "forged":
        entry = s.alice.roster(NewEpoch(epoch=1, key_id=key_id(K1)))
        entry = dataclasses.replace(entry, sig=bytes(64))
    elif build == "stranger":
        entry = new.roster(NewEpoch(epoch=1, key_id=key_id(K1)))
    elif build == "unknown_epoch":
        entry = s.alice.roster(NewEpoch(epoch=1, key_id=key_id(K1)), epoch=1)
    elif build == "add_to_other_member":
        proof = join_proof(new.key, space=SPACE, member=s.blake.member, by=s.alice.public)
        entry = s.alice.roster(AddDevice(member=s.blake.member, device=new.public, proof=proof))
    elif build == "existing_device":
        proof = join_proof(s.blake.key, space=SPACE, member=s.alice.member, by=s.alice.public)
        entry = s.alice.roster(AddDevice(member=s.alice.member, device=s.blake.public, proof=proof))
    elif build == "proof_for_another_writer":
        mid = member_id_of(new.public)
        proof = join_proof(new.key, space=SPACE, member=mid, by=s.phone.public)
        entry = s.alice.roster(AddMember(member=mid, device=new.public, proof=proof))
    elif build == "skip_epoch":
        entry = s.alice.roster(NewEpoch(epoch=2, key_id=key_id(K2)))
    elif build == "cut_seen_entries":
        entry = s.alice.roster(
            RemoveDevice(device=s.phone.public, last_seq=0), seen=(s.blake.at(), s.phone.at())
        )
    else:
        entry = s.blake.roster(Found(member=s.blake.member, device=s.blake.public))
    with pytest.raises(error):
        roster.apply(entry)
    assert (roster.members, roster.active_devices, roster.epoch) == before


def test_an_author_must_have_its_own_addition_in_its_past() -> None:
    s = base("t-past")
    roster = replay(s.entries)
    # The phone writes as if it had never seen the entry that added it.
    phone = Author(s.phone.label)
    phone.seq, phone.head = s.phone.seq, s.phone.head
    entry = phone.roster(NewEpoch(epoch=1, key_id=key_id(K1)))
    with pytest.raises(RosterError):
        roster.copy().apply(entry)  # by default, the entry's own seen heads
    with pytest.raises(RosterError):
        roster.copy().apply(entry, past={s.phone.public: 1})
    # Through its first entry, whose seen names alice's entry 2, the fold sees it.
    roster.apply(entry, past={s.phone.public: 1, s.alice.public: 2})
    assert roster.epoch == 1


def _thief_space() -> tuple[Space, Author]:
    s = base("t-thief")
    s.add(s.blake.roster(NewEpoch(epoch=1, key_id=key_id(K1)), seen=(s.alice.at(), s.phone.at())))
    laptop = Author("t-thief-laptop")
    proof = join_proof(laptop.key, space=SPACE, member=s.alice.member, by=s.phone.public)
    s.add(
        s.phone.roster(
            AddDevice(member=s.alice.member, device=laptop.public, proof=proof),
            seen=(s.alice.at(),),
        )
    )
    s.add(laptop.data("laptop here", seen=(s.phone.at(),)))
    s.add(
        laptop.roster(
            NewEpoch(epoch=2, key_id=key_id(K2)), epoch=1, seen=(s.blake.at(), s.phone.at())
        )
    )
    phone_1 = dataclasses.replace(s.phone.at(), seq=1, id=s.entries[2].id)
    s.add(
        s.alice.roster(
            RemoveDevice(device=s.phone.public, last_seq=1),
            epoch=1,
            seen=tuple(sorted([s.blake.at(), phone_1], key=lambda h: h.device)),
        )
    )
    return s, laptop


def test_a_removal_undoes_what_the_removed_device_did_concurrently() -> None:
    s, laptop = _thief_space()
    roster, refused = fold(s.entries, space=SPACE)
    assert laptop.public not in roster.known_devices
    assert sorted(r.code.value for r in refused) == ["device_removed", "unknown_device"]
    assert roster.epoch == 1 and roster.rotation_due
    relay_copy = replay(s.entries)  # arrival order: advisory, and says so
    assert laptop.public in relay_copy.active_devices
    assert relay_copy.superseded == {s.phone.public: 1}


@settings(max_examples=40, deadline=None)
@given(st.randoms(use_true_random=False))
def test_the_fold_does_not_depend_on_arrival_order(rng: object) -> None:
    s, _ = _thief_space()
    s.add(s.alice.roster(NewEpoch(epoch=2, key_id=key_id(fixed("k/2"))), epoch=1))
    s.add(s.alice.roster(NewEpoch(epoch=3, key_id=key_id(fixed("k/3"))), epoch=2))
    entries = [*s.entries, s.entries[3], s.entries[0]]  # duplicates too
    expected = _summary(*fold(s.entries, space=SPACE))
    rng.shuffle(entries)  # type: ignore[attr-defined]
    assert _summary(*fold(entries, space=SPACE)) == expected


def _summary(roster: Roster, refused: list[object]) -> object:
    return (
        roster.members,
        {m: roster.devices_of(m) for m in roster.members},
        {d: roster.cut_of(d) for d in roster.known_devices},
        roster.epoch,
        dict(roster.epoch_key_ids),
        roster.rotation_due,
        sorted((r.entry.id, r.code) for r in refused),  # type: ignore[attr-defined]
    )


def test_member_queries_on_unknown_ids() -> None:
    roster = Roster.empty(SPACE)
    assert roster.members == frozenset() and roster.devices_of(bytes(16)) == ()
    assert not roster.accepts(bytes(32), 1) and roster.cut_of(bytes(32)) is None
    with pytest.raises(UnknownDeviceError):
        roster.member_of(bytes(32))
    with pytest.raises(UnknownDeviceError):
        roster.check_author(bytes(32), 1)
    solo = Author("t-solo")
    with pytest.raises(RosterError):  # nothing before the founding record
        roster.apply(solo.roster(NewEpoch(epoch=1, key_id=bytes(8))))
    solo2 = Author("t-solo2")
    solo2.data("first")
    with pytest.raises(RosterError):  # founding is seq 1
        roster.apply(solo2.roster(Found(member=solo2.member, device=solo2.public)))


def test_fold_takes_the_space_from_the_entries() -> None:
    s = base("t-space")
    assert fold(s.entries)[0].members == fold(s.entries, space=SPACE)[0].members
    with pytest.raises(UsageError):
        fold([])
    with pytest.raises(UsageError):
        fold([*s.entries, Author("t-space-x", space=OTHER_SPACE).data("elsewhere")])
