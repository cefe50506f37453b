"""What a joining device checks in a welcome before it uses anything in it (SPEC.md 11.9).

A welcome admits the new device to the offered space and, in self pairing, to the
member's private space too. Each part is checked the same way: the roster entry
``added`` is of that space, written and signed by the inviting device, and holds exactly
the record the request asked for, with the join proof the joiner signed for *that* space;
the heads name it; every key envelope is for that space, to this device, from the
inviter. Join proofs are bound to their space (SPEC.md 5.2), so the proof for one space
can never admit the device to the other.

What only the whole roster can show (that the inviter may add devices at all, that the
private space has no other member) is checked when the new device folds the rosters it
fetches from the relay.
"""

from __future__ import annotations

from protocol.crypto import member_id_of, verify_signature
from protocol.entry import Entry, EntryType, SeenHead
from protocol.epochs import KeyEnvelope
from protocol.errors import MalformedError, RosterError, WrongSpaceError
from protocol.pairing_codes import Purpose
from protocol.pairing_messages import Offer, Request, Welcome
from protocol.roster_records import AddDevice, AddMember, decode_record


def _check_part(
    *,
    space: bytes,
    heads: tuple[SeenHead, ...],
    envelopes: tuple[bytes, ...],
    added_bytes: bytes,
    inviter: bytes,
    device: bytes,
    expected: AddMember | AddDevice,
) -> None:
    added = Entry.from_bytes(added_bytes)
    if added.space != space:
        raise WrongSpaceError("the added entry belongs to another space")
    if added.type is not EntryType.ROSTER or added.device != inviter:
        raise RosterError("the added entry is not a roster entry of the inviting device")
    verify_signature(added.device, added.signing_bytes(), added.sig)
    if decode_record(added.body) != expected:
        raise RosterError("the added entry does not add this device as it asked")
    if SeenHead(device=added.device, seq=added.seq, id=added.id) not in heads:
        raise RosterError("the welcome's heads do not reach the added entry")
    for data in envelopes:
        envelope = KeyEnvelope.from_bytes(data)
        if envelope.space != space:
            raise WrongSpaceError("a key envelope belongs to another space")
        if envelope.recipient != device or envelope.sender != inviter:
            raise RosterError("a key envelope is not from the inviter to this device")


def check_welcome(welcome: Welcome, *, offer: Offer, request: Request) -> None:
    """Check that a welcome admits exactly the requested device (SPEC.md section 11.9).

    The welcome carries the private space exactly when the request asked for it (with a
    ``private_proof``), and then for the offer's private space.

    Raises:
        WrongSpaceError: the welcome, an entry or an envelope is for another space.
        RosterError: an entry does not add this device to this member, or the heads do
            not name it, or an envelope is not from the inviter to this device, or the
            private space is left out or was not asked for. (A part without envelopes
            never gets here: decoding refuses it, ``malformed``, SPEC.md 11.6.5.)
        BadSignatureError: an entry's signature does not verify.
        MalformedError, OversizedError, UnsupportedVersionError: an item does not decode.
    """
    if welcome.space != offer.space:
        raise WrongSpaceError("the welcome is for another space than the offer")
    if offer.purpose is Purpose.PARTNER:
        expected: AddMember | AddDevice = AddMember(
            member=member_id_of(request.device), device=request.device, proof=request.proof
        )
    else:
        if offer.member is None:  # pragma: no cover - Offer refuses this
            raise MalformedError("a self offer names its member")
        expected = AddDevice(member=offer.member, device=request.device, proof=request.proof)
    _check_part(
        space=offer.space,
        heads=welcome.heads,
        envelopes=welcome.envelopes,
        added_bytes=welcome.added,
        inviter=offer.inviter,
        device=request.device,
        expected=expected,
    )
    private = welcome.private
    if request.private_proof is None:
        if private is not None:
            raise RosterError("the welcome adds this device to a private space it did not ask for")
        return
    if private is None:
        raise RosterError("the welcome leaves out the private space this device asked for")
    if offer.private is None or offer.member is None:  # pragma: no cover - the Joiner refuses
        raise MalformedError("a private space was asked for without being offered")
    if private.space != offer.private:
        raise WrongSpaceError("the welcome's private space is not the offered one")
    _check_part(
        space=offer.private,
        heads=private.heads,
        envelopes=private.envelopes,
        added_bytes=private.added,
        inviter=offer.inviter,
        device=request.device,
        expected=AddDevice(member=offer.member, device=request.device, proof=request.private_proof),
    )
