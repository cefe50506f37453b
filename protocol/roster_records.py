"""Roster records: the clear body of a roster entry (SPEC.md section 5.2).

Each record is a canonical CBOR map with an ``op`` (:class:`RosterOp`) and exactly the
fields of its op, decoded into one frozen, keyword-only dataclass per op that checks
its own shape. The rules about who may write which record live in
:mod:`protocol.roster`; this module is only the grammar.

:func:`decode_record` raises only :class:`~protocol.errors.ProtocolError` subclasses:
``OversizedError`` above :data:`~protocol.entry.MAX_ROSTER_BODY` and
``MalformedError`` for anything else.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from protocol import encoding
from protocol.crypto import (
    MEMBER_ID_BYTES,
    SIGNATURE_BYTES,
    DeviceKey,
    SigContext,
    check_device_id,
)
from protocol.entry import MAX_ROSTER_BODY
from protocol.errors import MalformedError, OversizedError

#: Size of a key id: BLAKE2b-64 keyed with the epoch key (SPEC.md 3.2).
KEY_ID_BYTES = 8


class RosterOp(StrEnum):
    """The ``op`` of a roster record (SPEC.md 5.2)."""

    FOUND = "found"
    ADD_DEVICE = "add_device"
    ADD_MEMBER = "add_member"
    REMOVE_DEVICE = "remove_device"
    REMOVE_MEMBER = "remove_member"
    EPOCH = "epoch"


#: Who may write each op (SPEC.md 5.3); the docs are drawn from this table.
RULES: dict[RosterOp, str] = {
    RosterOp.FOUND: "the founder's first entry, before any other roster record",
    RosterOp.ADD_DEVICE: "an authorised device of the same member",
    RosterOp.ADD_MEMBER: "any authorised device",
    RosterOp.REMOVE_DEVICE: "an authorised device of the same member (or the device itself)",
    RosterOp.REMOVE_MEMBER: "any authorised device",
    RosterOp.EPOCH: "any authorised device",
}


def _check_bytes(value: object, size: int, name: str) -> None:
    if not isinstance(value, bytes) or len(value) != size:
        raise MalformedError(f"{name} must be {size} bytes")


def _check_uint(value: object, name: str, *, minimum: int = 0) -> None:
    if (
        not isinstance(value, int)
        or isinstance(value, bool)
        or not minimum <= value <= encoding.INT_MAX
    ):
        raise MalformedError(f"{name} must be an integer >= {minimum}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Found:
    """The founder's first record: the space has one member, with this device."""

    member: bytes
    device: bytes

    def __post_init__(self) -> None:
        _check_bytes(self.member, MEMBER_ID_BYTES, "a member id")
        check_device_id(self.device)

    def to_map(self) -> dict[str, Any]:
        return {"op": RosterOp.FOUND.value, "member": self.member, "device": self.device}


@dataclass(frozen=True, slots=True, kw_only=True)
class AddDevice:
    """Self pairing: ``device`` joins ``member``; ``proof`` is its join signature."""

    member: bytes
    device: bytes
    proof: bytes

    def __post_init__(self) -> None:
        _check_bytes(self.member, MEMBER_ID_BYTES, "a member id")
        check_device_id(self.device)
        _check_bytes(self.proof, SIGNATURE_BYTES, "a join proof")

    def to_map(self) -> dict[str, Any]:
        return {
            "op": RosterOp.ADD_DEVICE.value,
            "member": self.member,
            "device": self.device,
            "proof": self.proof,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class AddMember:
    """Partner pairing: a new member joins with its first ``device``."""

    member: bytes
    device: bytes
    proof: bytes

    def __post_init__(self) -> None:
        _check_bytes(self.member, MEMBER_ID_BYTES, "a member id")
        check_device_id(self.device)
        _check_bytes(self.proof, SIGNATURE_BYTES, "a join proof")

    def to_map(self) -> dict[str, Any]:
        return {
            "op": RosterOp.ADD_MEMBER.value,
            "member": self.member,
            "device": self.device,
            "proof": self.proof,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class RemoveDevice:
    """``device`` leaves; entries of its feed after ``last_seq`` are refused."""

    device: bytes
    last_seq: int

    def __post_init__(self) -> None:
        check_device_id(self.device)
        _check_uint(self.last_seq, "last_seq")

    def to_map(self) -> dict[str, Any]:
        return {
            "op": RosterOp.REMOVE_DEVICE.value,
            "device": self.device,
            "last_seq": self.last_seq,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class RemoveMember:
    """``member`` leaves with all its devices, each cut at its listed seq (else 0).

    ``last_seqs`` is sorted by device, one pair per device.
    """

    member: bytes
    last_seqs: tuple[tuple[bytes, int], ...]

    def __post_init__(self) -> None:
        _check_bytes(self.member, MEMBER_ID_BYTES, "a member id")
        if not isinstance(self.last_seqs, tuple):
            raise MalformedError("last_seqs must be a sequence of [device, seq] pairs")
        for pair in self.last_seqs:
            if not isinstance(pair, tuple) or len(pair) != 2:
                raise MalformedError("each of last_seqs is a [device, seq] pair")
            check_device_id(pair[0])
            _check_uint(pair[1], "a last seq")
        devices = [device for device, _ in self.last_seqs]
        if devices != sorted(set(devices)):
            raise MalformedError("last_seqs must be sorted by device, without repeats")

    def to_map(self) -> dict[str, Any]:
        return {
            "op": RosterOp.REMOVE_MEMBER.value,
            "member": self.member,
            "last_seqs": [[device, seq] for device, seq in self.last_seqs],
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class NewEpoch:
    """A key rotation: epoch ``epoch`` starts; its key has id ``key_id``."""

    epoch: int
    key_id: bytes

    def __post_init__(self) -> None:
        _check_uint(self.epoch, "epoch", minimum=1)
        _check_bytes(self.key_id, KEY_ID_BYTES, "a key id")

    def to_map(self) -> dict[str, Any]:
        return {"op": RosterOp.EPOCH.value, "epoch": self.epoch, "key_id": self.key_id}


Record = Found | AddDevice | AddMember | RemoveDevice | RemoveMember | NewEpoch

_FIELDS: dict[RosterOp, set[str]] = {
    RosterOp.FOUND: {"op", "member", "device"},
    RosterOp.ADD_DEVICE: {"op", "member", "device", "proof"},
    RosterOp.ADD_MEMBER: {"op", "member", "device", "proof"},
    RosterOp.REMOVE_DEVICE: {"op", "device", "last_seq"},
    RosterOp.REMOVE_MEMBER: {"op", "member", "last_seqs"},
    RosterOp.EPOCH: {"op", "epoch", "key_id"},
}

_OPS = {op.value for op in RosterOp}


def encode_record(record: Record) -> bytes:
    """The canonical bytes of a roster record: the body of its roster entry.

    Raises:
        OversizedError: the encoding is above :data:`MAX_ROSTER_BODY`.
    """
    data = encoding.encode(record.to_map())
    if len(data) > MAX_ROSTER_BODY:
        raise OversizedError(f"a roster record is at most {MAX_ROSTER_BODY} bytes")
    return data


def decode_record(data: bytes) -> Record:
    """Parse a roster record (shape only; :meth:`Roster.apply` checks the rules).

    Raises:
        OversizedError: above :data:`MAX_ROSTER_BODY`.
        MalformedError: not the canonical encoding of a record of SPEC.md 5.2.
    """
    fields = encoding.decode_map(data, max_size=MAX_ROSTER_BODY)
    raw_op = fields.get("op")
    if not isinstance(raw_op, str) or raw_op not in _OPS:
        raise MalformedError("unknown roster op")
    op = RosterOp(raw_op)
    if set(fields) != _FIELDS[op]:
        raise MalformedError(f"the fields of a {op.value} record are not those of SPEC 5.2")
    if op is RosterOp.FOUND:
        return Found(member=fields["member"], device=fields["device"])
    if op is RosterOp.ADD_DEVICE:
        return AddDevice(member=fields["member"], device=fields["device"], proof=fields["proof"])
    if op is RosterOp.ADD_MEMBER:
        return AddMember(member=fields["member"], device=fields["device"], proof=fields["proof"])
    if op is RosterOp.REMOVE_DEVICE:
        return RemoveDevice(device=fields["device"], last_seq=fields["last_seq"])
    if op is RosterOp.REMOVE_MEMBER:
        raw = fields["last_seqs"]
        if not isinstance(raw, list) or not all(
            isinstance(pair, list) and len(pair) == 2 for pair in raw
        ):
            raise MalformedError("last_seqs must be an array of [device, seq] pairs")
        return RemoveMember(
            member=fields["member"], last_seqs=tuple((pair[0], pair[1]) for pair in raw)
        )
    return NewEpoch(epoch=fields["epoch"], key_id=fields["key_id"])


def join_message(*, space: bytes, member: bytes, device: bytes, by: bytes) -> bytes:
    """What a joining device signs to consent to joining (SPEC.md 5.2)."""
    return SigContext.JOIN + encoding.encode(
        {"space": space, "member": member, "device": device, "by": by}
    )


def join_proof(device_key: DeviceKey, *, space: bytes, member: bytes, by: bytes) -> bytes:
    """The joining device's signature for an ``add_device`` or ``add_member`` record.

    ``member`` is the member it joins (its own new member id for ``add_member``) and
    ``by`` the public key of the device that will write the record.
    """
    return device_key.sign(
        join_message(space=space, member=member, device=device_key.public, by=by)
    )
