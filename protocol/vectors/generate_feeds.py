"""Feed, roster and key envelope scenarios for the vector files (SPEC.md section 12).

Used by :mod:`protocol.vectors.generate`; see there. Every answer written here is what
this implementation computes, so the conformance runner re-checks it.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from protocol import encoding
from protocol.crypto import key_id, member_id_of
from protocol.entry import Entry
from protocol.errors import ProtocolError
from protocol.feeds import (
    FeedVerifier,
    ForkProof,
    causal_ranks,
    find_rollback,
    find_seen_conflicts,
    find_withholding,
)
from protocol.roster import (
    AddDevice,
    AddMember,
    Found,
    NewEpoch,
    Record,
    RemoveDevice,
    RemoveMember,
    Roster,
    encode_record,
    fold,
    join_proof,
)
from protocol.vectors.generate import (
    K1,
    K2,
    OTHER_SPACE,
    SPACE,
    Author,
    document,
    fixed,
    h,
    key,
    sign_as,
)

# -- feeds.json -------------------------------------------------------------------------


def feed_report(space: bytes, device: bytes, entries: list[Entry | bytes]) -> dict[str, Any]:
    """What the ``verify`` check expects for entries given in this order."""
    verifier = FeedVerifier(space=space, device=device)
    rejected: list[list[Any]] = []
    for index, item in enumerate(entries):
        try:
            entry = Entry.from_bytes(item) if isinstance(item, bytes) else item
            verifier.add(entry)
        except ProtocolError as error:
            rejected.append([index, error.code.value])
    report = verifier.report()
    return {
        "head": report.head,
        "head_id": h(report.head_id),
        "gap": [list(r) for r in report.gap.missing] if report.gap else [],
        "broken": [link.seq for link in report.broken],
        "forks": [
            [
                fork.seq,
                Entry.from_bytes(fork.first).id.hex(),
                Entry.from_bytes(fork.second).id.hex(),
            ]
            for fork in report.forks
        ],
        "rejected": rejected,
    }


def _raw(entries: list[Entry | bytes]) -> list[str]:
    return [(e if isinstance(e, bytes) else e.to_bytes()).hex() for e in entries]


def _verify_case(name: str, device: bytes, entries: list[Entry | bytes]) -> dict[str, Any]:
    return {
        "name": name,
        "check": "verify",
        "space": SPACE.hex(),
        "device": device.hex(),
        "entries": _raw(entries),
        "expect": feed_report(SPACE, device, entries),
    }


def feeds_vectors() -> dict[str, Any]:
    alice, blake = Author("feed-alice"), Author("feed-blake")
    a = [alice.data(f"entry {i}") for i in range(1, 7)]
    b1 = blake.data("blake 1", seen=(alice.at(),))
    cases = [
        _verify_case("a clean feed, in order", alice.public, list(a)),
        _verify_case(
            "a clean feed, shuffled and repeated",
            alice.public,
            [a[3], a[0], a[5], a[1], a[0], a[2], a[4]],
        ),
        _verify_case("gaps: 3 and 5 missing", alice.public, [a[0], a[1], a[3], a[5]]),
    ]
    stray = dataclasses.replace(a[2], prev=fixed("id/unrelated"), sig=b"")
    stray = sign_as(alice.key, stray)
    cases.append(
        _verify_case("broken link: entry 3 names another prev", alice.public, [a[0], a[1], stray])
    )
    other_two = Author("feed-alice")
    other_two.data("entry 1")
    fork_2 = other_two.data("another entry 2")
    cases.append(
        _verify_case("fork: two entries at seq 2", alice.public, [a[0], a[1], fork_2, a[2]])
    )
    forged = dataclasses.replace(a[1], sig=bytes(64))
    elsewhere = Author("feed-alice", space=OTHER_SPACE).data("entry 1")
    cases.append(
        _verify_case(
            "refused: a bad signature and another space",
            alice.public,
            [a[0], forged.to_bytes(), elsewhere, a[1]],
        )
    )
    proof = ForkProof.of(a[1], fork_2)
    swapped = encoding.encode({"v": 1, "entries": [proof.second, proof.first]})
    tampered = dataclasses.replace(fork_2, sig=bytes([fork_2.sig[0] ^ 1]) + fork_2.sig[1:])
    proofs = [
        ("a real fork", proof.to_bytes(), {"valid": True}),
        ("entries out of id order", swapped, {"error": "malformed"}),
        (
            "the same entry twice",
            encoding.encode({"v": 1, "entries": [proof.first, proof.first]}),
            {"error": "malformed"},
        ),
        (
            "two different seqs",
            encoding.encode(
                {
                    "v": 1,
                    "entries": sorted(
                        [a[1].to_bytes(), a[2].to_bytes()], key=lambda r: Entry.from_bytes(r).id
                    ),
                }
            ),
            {"error": "malformed"},
        ),
        ("a bad signature", ForkProof.of(a[1], tampered).to_bytes(), {"error": "bad_signature"}),
        (
            "version 2",
            encoding.encode({"v": 2, "entries": [proof.first, proof.second]}),
            {"error": "unsupported_version"},
        ),
        ("not a proof", b"\xa0", {"error": "malformed"}),
    ]
    for name, raw, expect in proofs:
        cases.append(
            {
                "name": f"fork proof: {name}",
                "check": "fork_proof",
                "proof": raw.hex(),
                "expect": expect,
            }
        )
    # Causal ranks over two feeds; one entry names an entry we do not hold.
    alice2, blake2 = Author("rank-alice"), Author("rank-blake")
    r_a1 = alice2.data("a1")
    r_b1 = blake2.data("b1")
    r_b2 = blake2.data("b2", seen=(alice2.at(),))
    r_a2 = alice2.data("a2", seen=(blake2.at(),))
    orphan = Author("rank-carol")
    orphan.data("c1")
    r_c2 = orphan.data("c2")
    ranked = [r_a2, r_b2, r_a1, r_c2, r_b1]
    ranks = causal_ranks(ranked)
    cases.append(
        {
            "name": "causal ranks over two feeds; an entry after a missing one is not ranked",
            "check": "ranks",
            "entries": _raw(list(ranked)),
            "expect": {eid.hex(): rank for eid, rank in sorted(ranks.items())},
        }
    )
    have = {alice.public: 3}
    held = [b1]
    cases.append(
        {
            "name": "withholding: blake had read 6 of alice's entries, the relay gave us 3",
            "check": "withholding",
            "entries": _raw(list(held)),
            "have": {d.hex(): s for d, s in have.items()},
            "expect": [
                {
                    "device": w.device.hex(),
                    "claimed_seq": w.claimed_seq,
                    "have_seq": w.have_seq,
                    "claimed_by": w.claimed_by.hex(),
                    "claim_entry": w.claim_entry.hex(),
                }
                for w in find_withholding(held, have)
            ],
        }
    )
    cases.append(
        {
            "name": "withholding: nothing when we have everything claimed",
            "check": "withholding",
            "entries": _raw(list(held)),
            "have": {alice.public.hex(): 6},
            "expect": [],
        }
    )
    stored = {alice.public: 6, blake.public: 1}
    reported = {alice.public: 4, blake.public: 1}
    cases.append(
        {
            "name": "rollback: the relay reports 4 of alice's entries after showing 6",
            "check": "rollback",
            "stored": {d.hex(): s for d, s in stored.items()},
            "reported": {d.hex(): s for d, s in reported.items()},
            "expect": [
                {
                    "device": r.device.hex(),
                    "stored_seq": r.stored_seq,
                    "reported_seq": r.reported_seq,
                }
                for r in find_rollback(stored, reported)
            ],
        }
    )
    witness = Author("feed-carol")
    c1 = witness.data(
        "carol saw the other entry 2", seen=(dataclasses.replace(alice.at(), seq=2, id=fork_2.id),)
    )
    conflict_set = [a[0], a[1], c1]
    cases.append(
        {
            "name": "seen conflict: carol read a different entry 2 of alice's feed",
            "check": "seen_conflicts",
            "entries": _raw(list(conflict_set)),
            "expect": [
                {
                    "device": c.device.hex(),
                    "seq": c.seq,
                    "claimed_id": c.claimed_id.hex(),
                    "held_id": c.held_id.hex(),
                    "claimed_by": c.claimed_by.hex(),
                    "claim_entry": c.claim_entry.hex(),
                }
                for c in find_seen_conflicts(conflict_set)
            ],
        }
    )
    cases.extend(seen_head_cases())
    return document(
        "feed", "Feeds: chains, gaps, forks, causal ranks, seen heads (SPEC 4.5)", cases
    )


def _withholding_case(name: str, held: list[Entry], have: dict[bytes, int]) -> dict[str, Any]:
    return {
        "name": f"withholding: {name}",
        "check": "withholding",
        "entries": _raw(list(held)),
        "have": {d.hex(): s for d, s in sorted(have.items())},
        "expect": [
            {
                "device": w.device.hex(),
                "claimed_seq": w.claimed_seq,
                "have_seq": w.have_seq,
                "claimed_by": w.claimed_by.hex(),
                "claim_entry": w.claim_entry.hex(),
            }
            for w in find_withholding(held, have)
        ],
    }


def _rollback_case(
    name: str, stored: dict[bytes, int], reported: dict[bytes, int]
) -> dict[str, Any]:
    return {
        "name": f"rollback: {name}",
        "check": "rollback",
        "stored": {d.hex(): s for d, s in sorted(stored.items())},
        "reported": {d.hex(): s for d, s in sorted(reported.items())},
        "expect": [
            {"device": r.device.hex(), "stored_seq": r.stored_seq, "reported_seq": r.reported_seq}
            for r in find_rollback(stored, reported)
        ],
    }


def _conflicts_case(name: str, held: list[Entry]) -> dict[str, Any]:
    return {
        "name": f"seen conflicts: {name}",
        "check": "seen_conflicts",
        "entries": _raw(list(held)),
        "expect": [
            {
                "device": c.device.hex(),
                "seq": c.seq,
                "claimed_id": c.claimed_id.hex(),
                "held_id": c.held_id.hex(),
                "claimed_by": c.claimed_by.hex(),
                "claim_entry": c.claim_entry.hex(),
            }
            for c in find_seen_conflicts(held)
        ],
    }


def seen_head_cases() -> list[dict[str, Any]]:
    """Withholding, rollback and conflicting claims over three feeds (SPEC.md 4.5.5),
    with the tie-breaks and the cases where there is nothing to find."""
    alice = Author("seen-alice")
    a = [alice.data(f"alice {i}") for i in range(1, 6)]
    # The claimer with the smaller key writes two equal claims, so both tie-breaks
    # (author, then entry id) are exercised.
    first, second = sorted((Author("seen-blake"), Author("seen-carol")), key=lambda x: x.public)
    at_2 = dataclasses.replace(alice.at(), seq=2, id=a[1].id)
    p1 = first.data("first read alice 2", seen=(at_2,))
    p2 = first.data("first read alice 5", seen=(alice.at(),))
    p3 = first.data("first read alice 5 again", seen=(alice.at(),))
    q1 = second.data("second read alice 5 and first 3", seen=(alice.at(), first.at()))
    held = [a[0], a[1], a[2], p1, p2, p3, q1]
    cases = [
        _withholding_case(
            "the highest claim wins; among equal claims the smaller author, then the smaller "
            "entry id",
            held,
            {alice.public: 3, first.public: 3, second.public: 1},
        ),
        _withholding_case(
            "two feeds short, in device order; a feed absent from have counts as 0",
            held,
            {alice.public: 1},
        ),
        _withholding_case(
            "nothing when have reaches every claim exactly",
            held,
            {alice.public: 5, first.public: 3, second.public: 1},
        ),
        _withholding_case(
            "nothing when have is above every claim",
            held,
            {alice.public: 9, first.public: 4},
        ),
        _withholding_case("nothing when no entry held names another feed", a[:3], {}),
        _rollback_case(
            "two feeds below their marks; a feed absent from the report counts as 0",
            {alice.public: 6, first.public: 3, second.public: 2},
            {alice.public: 4, second.public: 2},
        ),
        _rollback_case(
            "nothing when every report reaches its mark, and a feed not seen before is no rollback",
            {alice.public: 6, first.public: 3},
            {alice.public: 6, first.public: 9, second.public: 1},
        ),
        _rollback_case("nothing remembered yet", {}, {alice.public: 2}),
    ]
    found = cases[0]["expect"]
    if not (found and found[0]["claim_entry"] == min(p2.id, p3.id).hex()):
        raise AssertionError("the tie-break vector must pick one of two equal claims")

    # Conflicting claims: a fork of alice at seq 2 that we hold one or two sides of.
    twin = Author("seen-alice")
    twin.data("alice 1")
    other_2 = twin.data("another alice 2")
    triplet = Author("seen-alice")
    triplet.data("alice 1")
    third_2 = triplet.data("a third alice 2")

    def reads(entry: Entry) -> Any:
        return dataclasses.replace(alice.at(), seq=2, id=entry.id)

    claimers = [Author(f"seen-{name}") for name in ("dana", "erin", "frank")]
    claims = [w.data("read the other alice 2", seen=(reads(other_2),)) for w in claimers]
    by_author = sorted(claims, key=lambda e: e.device)
    by_entry = sorted(claims, key=lambda e: e.id)
    if by_author == by_entry:
        raise AssertionError("the sort vector needs claimer order and entry order to differ")
    gale = Author("seen-gale")
    g1 = gale.data("read alice 2", seen=(reads(a[1]),))
    g2 = gale.data("read a third alice 2", seen=(reads(third_2),))
    cases += [
        _conflicts_case(
            "three claimers of another entry 2, sorted by claimer then claim entry; a repeat "
            "counts once",
            [a[0], a[1], claims[2], claims[0], claims[1], claims[0]],
        ),
        _conflicts_case(
            "both sides of a fork held: a claim naming either is no conflict, one naming a "
            "third is, against the smaller id held",
            [a[0], a[1], other_2, claims[0], g1, g2],
        ),
        _conflicts_case(
            "nothing when we hold no entry at the claimed seq", [a[0], claims[0], claims[1]]
        ),
        _conflicts_case("nothing when every claim names the entry held", [a[0], a[1], g1, *held]),
    ]
    return cases


# -- roster.json ------------------------------------------------------------------------


def roster_state(roster: Roster, refused: list[tuple[bytes, str]]) -> dict[str, Any]:
    """What the ``fold`` check expects: the roster and the refused entries."""
    return {
        "members": {
            m.hex(): [d.hex() for d in roster.devices_of(m)] for m in sorted(roster.members)
        },
        "cuts": {
            d.hex(): roster.cut_of(d)
            for d in sorted(roster.known_devices)
            if roster.cut_of(d) is not None
        },
        "epoch": roster.epoch,
        "epoch_key_ids": {str(n): k.hex() for n, k in sorted(roster.epoch_key_ids.items())},
        "rotation_due": roster.rotation_due,
        "refused": [[eid.hex(), code] for eid, code in sorted(refused)],
    }


def _fold_case(
    name: str, entries: list[Entry], accepts: tuple[tuple[bytes, int], ...] = ()
) -> dict[str, Any]:
    roster, refusals = fold(entries, space=SPACE)
    expect = roster_state(roster, [(r.entry.id, r.code.value) for r in refusals])
    expect["accepts"] = [[d.hex(), seq, roster.accepts(d, seq)] for d, seq in accepts]
    return {
        "name": name,
        "check": "fold",
        "space": SPACE.hex(),
        "entries": _raw(list(entries)),
        "expect": expect,
    }


class Space:
    """A small scripted space: alice founds it, adds her phone, then invites blake."""

    def __init__(self, prefix: str) -> None:
        self.alice = Author(f"{prefix}-alice")
        self.phone = Author(f"{prefix}-alice-phone")
        self.blake = Author(f"{prefix}-blake")
        self.entries: list[Entry] = []

    def add(self, entry: Entry) -> Entry:
        self.entries.append(entry)
        return entry

    def found(self) -> None:
        a = self.alice
        self.add(a.roster(Found(member=a.member, device=a.public)))

    def add_phone(self) -> None:
        a, p = self.alice, self.phone
        proof = join_proof(p.key, space=SPACE, member=a.member, by=a.public)
        self.add(a.roster(AddDevice(member=a.member, device=p.public, proof=proof)))
        self.add(p.data("phone joined", seen=(a.at(),)))

    def invite_blake(self) -> None:
        a, b = self.alice, self.blake
        proof = join_proof(b.key, space=SPACE, member=b.member, by=a.public)
        self.add(
            a.roster(
                AddMember(member=b.member, device=b.public, proof=proof), seen=(self.phone.at(),)
            )
        )
        self.add(b.data("blake joined", seen=(a.at(), self.phone.at())))


def _base(prefix: str) -> Space:
    space = Space(prefix)
    space.found()
    space.add_phone()
    space.invite_blake()
    return space


def roster_vectors() -> dict[str, Any]:
    cases: list[dict[str, Any]] = []
    solo = Space("solo")
    solo.found()
    cases.append(_fold_case("founding: one member, one device", solo.entries))
    s = _base("pair")
    cases.append(_fold_case("self pairing and partner pairing", s.entries))
    s.add(s.blake.roster(NewEpoch(epoch=1, key_id=key_id(K1)), seen=(s.alice.at(), s.phone.at())))
    cases.append(_fold_case("a key rotation to epoch 1", s.entries))
    # alice removes her phone at its seq 1; concurrently the phone adds a laptop.
    thief = Author("pair-laptop")
    proof = join_proof(thief.key, space=SPACE, member=s.alice.member, by=s.phone.public)
    s.add(
        s.phone.roster(
            AddDevice(member=s.alice.member, device=thief.public, proof=proof), seen=(s.alice.at(),)
        )
    )
    phone_at_1 = dataclasses.replace(s.phone.at(), seq=1, id=s.entries[2].id)
    s.add(
        s.alice.roster(
            RemoveDevice(device=s.phone.public, last_seq=1),
            epoch=1,
            seen=tuple(sorted([s.blake.at(), phone_at_1], key=lambda x: x.device)),
        )
    )
    cases.append(
        _fold_case(
            "removing a device refuses what it wrote concurrently (its added laptop too)",
            s.entries,
            accepts=((s.phone.public, 1), (s.phone.public, 2), (thief.public, 1)),
        )
    )
    s.add(s.alice.roster(NewEpoch(epoch=2, key_id=key_id(K2)), epoch=1))
    cases.append(_fold_case("the remover rotates to epoch 2", s.entries))
    s.add(
        s.blake.roster(
            RemoveMember(member=s.alice.member, last_seqs=((s.alice.public, s.alice.seq),)),
            epoch=2,
            seen=(s.alice.at(),),
        )
    )
    cases.append(_fold_case("blake removes alice, who stops being a member", s.entries))

    def refusal(prefix: str, build: Any, name: str) -> None:
        space = _base(prefix)
        build(space)
        cases.append(_fold_case(name, space.entries))

    def second_found(sp: Space) -> None:
        sp.add(
            sp.blake.roster(
                Found(member=sp.blake.member, device=sp.blake.public), seen=(sp.alice.at(),)
            )
        )

    def other_member_device(sp: Space) -> None:
        new = key("r2-new")
        proof = join_proof(new, space=SPACE, member=sp.blake.member, by=sp.alice.public)
        sp.add(sp.alice.roster(AddDevice(member=sp.blake.member, device=new.public, proof=proof)))

    def bad_proof(sp: Space) -> None:
        new = key("r3-new")
        proof = join_proof(
            key("r3-someone-else"), space=SPACE, member=member_id_of(new.public), by=sp.alice.public
        )
        sp.add(
            sp.alice.roster(
                AddMember(member=member_id_of(new.public), device=new.public, proof=proof)
            )
        )

    def wrong_member_id(sp: Space) -> None:
        new = key("r4-new")
        proof = join_proof(new, space=SPACE, member=fixed("member/bogus", 16), by=sp.alice.public)
        sp.add(
            sp.alice.roster(
                AddMember(member=fixed("member/bogus", 16), device=new.public, proof=proof)
            )
        )

    def stranger(sp: Space) -> None:
        out = Author("r5-stranger")
        sp.add(out.data("hello", seen=(sp.alice.at(),)))
        sp.add(out.roster(NewEpoch(epoch=1, key_id=key_id(K1)), seen=(sp.alice.at(),)))

    def epoch_skip(sp: Space) -> None:
        sp.add(sp.alice.roster(NewEpoch(epoch=2, key_id=key_id(K2))))

    def unknown_entry_epoch(sp: Space) -> None:
        sp.add(sp.alice.roster(NewEpoch(epoch=1, key_id=key_id(K1)), epoch=3))

    def remove_partner_device(sp: Space) -> None:
        sp.add(
            sp.blake.roster(
                RemoveDevice(device=sp.phone.public, last_seq=1),
                seen=(sp.alice.at(), sp.phone.at()),
            )
        )

    def cut_into_the_past(sp: Space) -> None:
        sp.add(
            sp.blake.roster(
                RemoveMember(member=sp.alice.member, last_seqs=((sp.alice.public, 1),)),
                seen=(sp.alice.at(), sp.phone.at()),
            )
        )

    def concurrent_rotations(sp: Space) -> None:
        seen_all = (sp.alice.at(), sp.phone.at())
        sp.add(sp.blake.roster(NewEpoch(epoch=1, key_id=key_id(K1)), seen=seen_all))
        sp.add(sp.alice.roster(NewEpoch(epoch=1, key_id=key_id(K2)), seen=(sp.phone.at(),)))

    def forked_feed(sp: Space) -> None:
        twin = Author(sp.blake.label)
        twin.seq, twin.head = sp.blake.seq, sp.blake.head
        sp.add(
            sp.blake.roster(
                NewEpoch(epoch=1, key_id=key_id(K1)), seen=(sp.alice.at(), sp.phone.at())
            )
        )
        sp.add(
            twin.roster(NewEpoch(epoch=1, key_id=key_id(K2)), seen=(sp.alice.at(), sp.phone.at()))
        )

    refusal("r1", second_found, "refused: a second founding record")
    refusal("r2", other_member_device, "refused: adding a device to another member")
    refusal("r3", bad_proof, "refused: a join proof by another key")
    refusal("r4", wrong_member_id, "refused: a new member id that is not its device's hash")
    refusal("r5", stranger, "refused: a roster entry by a device never added")
    refusal("r6", epoch_skip, "refused: a rotation that skips an epoch")
    refusal("r7", unknown_entry_epoch, "refused: a roster entry in an unknown epoch")
    refusal("r8", remove_partner_device, "refused: removing another member's device")
    refusal("r9", cut_into_the_past, "refused: a removal that cuts entries it had seen")
    refusal("r10", concurrent_rotations, "concurrent rotations: one is refused")
    refusal("r11", forked_feed, "a forked feed: both roster entries at the fork are refused")

    records: list[tuple[str, Record]] = [
        ("found", Found(member=fixed("member", 16), device=key("rec").public)),
        (
            "add_device",
            AddDevice(member=fixed("member", 16), device=key("rec").public, proof=fixed("sig", 64)),
        ),
        (
            "add_member",
            AddMember(member=fixed("member", 16), device=key("rec").public, proof=fixed("sig", 64)),
        ),
        ("remove_device", RemoveDevice(device=key("rec").public, last_seq=12)),
        (
            "remove_member",
            RemoveMember(
                member=fixed("member", 16),
                last_seqs=tuple(sorted([(key("rec").public, 3), (key("rec2").public, 0)])),
            ),
        ),
        ("epoch", NewEpoch(epoch=1, key_id=key_id(K1))),
    ]
    for op, record in records:
        cases.append(
            {
                "name": f"record: {op}",
                "check": "record",
                "record": encode_record(record).hex(),
                "expect": {"op": op},
            }
        )
    pk = key("rec").public
    bad_records: list[tuple[str, bytes, str]] = [
        ("unknown op", encoding.encode({"op": "promote", "device": pk}), "malformed"),
        (
            "extra field",
            encoding.encode({"op": "remove_device", "device": pk, "last_seq": 1, "why": "x"}),
            "malformed",
        ),
        ("epoch 0", encoding.encode({"op": "epoch", "epoch": 0, "key_id": bytes(8)}), "malformed"),
        (
            "short key id",
            encoding.encode({"op": "epoch", "epoch": 1, "key_id": bytes(4)}),
            "malformed",
        ),
        (
            "last_seqs out of order",
            encoding.encode(
                {
                    "op": "remove_member",
                    "member": bytes(16),
                    "last_seqs": [[b"\xff" * 32, 1], [pk, 1]],
                }
            ),
            "malformed",
        ),
        ("not a map", encoding.encode(["found"]), "malformed"),
        (
            "oversized",
            encoding.encode({"op": "found", "member": bytes(16), "device": pk, "pad": bytes(4096)}),
            "oversized",
        ),
    ]
    for name, raw, code in bad_records:
        cases.append(
            {
                "name": f"record refused: {name}",
                "check": "record",
                "record": raw.hex(),
                "expect": {"error": code},
            }
        )
    return document("roster", "Roster records and the roster fold (SPEC 5)", cases)


__all__ = [
    "feed_report",
    "feeds_vectors",
    "roster_state",
    "roster_vectors",
]
