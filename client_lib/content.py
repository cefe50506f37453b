"""What may be done with a data entry's content: the checks between chain and documents.

Theory of operation (SPEC.md 7.5):

An entry that joined its feed's chain (authentic, linked, its causal past held) is
judged here against the roster, the epoch rule and the keys this device holds. The
verdict is one of:

* ``APPLIED``: every check passed; ``updates`` are ready to merge.
* ``HELD``: the entry cannot count *now* (its device is not in the roster yet, or was
  cut before it, its feed forked, its epoch is not announced, or this device holds no
  key for it). The judgment depends on the roster and keys, so it is made again when
  those change.
* ``REFUSED``: its content breaks a rule for good (it does not decrypt, its payload is
  malformed, a CRDT update is undecodable, or it writes into another member's voice).
  The entry stays a link of its feed, so the feed goes on, but nothing of it is merged.

Checking is pure: no store, no documents. Each failure comes with a typed problem.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from client_lib.documents import check_update, voice_owner
from client_lib.events import ContentState, NotAuthor, Problem, Refused, WaitReason, where
from client_lib.payload import DocUpdate, Payload
from protocol.entry import Entry, decrypt
from protocol.epochs import check_entry_epoch
from protocol.errors import (
    DeviceRemovedError,
    ErrorCode,
    ProtocolError,
    UnknownDeviceError,
    WrongEpochError,
)
from protocol.roster import Roster


@dataclass(frozen=True, slots=True, kw_only=True)
class Verdict:
    """What to do with one data entry's content."""

    state: ContentState
    updates: tuple[DocUpdate, ...] = ()
    wait: WaitReason | None = None  # why it is held
    problem: Problem | None = None
    at: int | None = None  # the payload's ``at``, when it was read


def roster_verdict(
    entry: Entry,
    *,
    roster: Roster,
    floor: int,
    prev_epoch: int,
    forked_from: Mapping[bytes, int],
) -> Verdict | None:
    """The roster and epoch checks alone: a HELD verdict, or None when they pass."""
    at = where(entry.space, entry.id, entry.device, entry.seq)
    fork_seq = forked_from.get(entry.device)
    if fork_seq is not None and entry.seq >= fork_seq:
        return Verdict(state=ContentState.HELD, wait=WaitReason.FORKED_FEED)
    try:
        roster.check_author(entry.device, entry.seq)
    except UnknownDeviceError:
        return Verdict(state=ContentState.HELD, wait=WaitReason.UNKNOWN_DEVICE)
    except DeviceRemovedError as error:
        problem = Refused(**at, code=error.code, detail=_REMOVED)
        return Verdict(state=ContentState.HELD, problem=problem)
    try:
        check_entry_epoch(
            entry, known_epochs=roster.known_epochs, floor=floor, prev_epoch=prev_epoch
        )
    except WrongEpochError:
        if entry.epoch > roster.epoch:
            return Verdict(state=ContentState.HELD, wait=WaitReason.EPOCH_KEY)
        problem = Refused(**at, code=ErrorCode.WRONG_EPOCH, detail=_OLD_EPOCH)
        return Verdict(state=ContentState.HELD, problem=problem)
    return None


def judge_data_entry(
    entry: Entry,
    *,
    roster: Roster,
    floor: int,
    prev_epoch: int,
    forked_from: Mapping[bytes, int],
    epoch_keys: Mapping[int, bytes],
) -> Verdict:
    """Judge a data entry that joined its chain (see the module docstring)."""
    held = roster_verdict(
        entry, roster=roster, floor=floor, prev_epoch=prev_epoch, forked_from=forked_from
    )
    if held is not None:
        return held
    key = epoch_keys.get(entry.epoch)
    if key is None:
        return Verdict(state=ContentState.HELD, wait=WaitReason.EPOCH_KEY)
    return open_content(entry, key=key, author=roster.member_of(entry.device))


def open_content(entry: Entry, *, key: bytes, author: bytes) -> Verdict:
    """Decrypt, decode and check an entry's payload (the permanent checks).

    ``author`` is the member of the entry's device.
    """
    at = where(entry.space, entry.id, entry.device, entry.seq)
    problem: Problem
    try:
        payload = Payload.from_bytes(decrypt(entry, key))
    except ProtocolError as error:
        problem = Refused(**at, code=error.code, detail=_UNREADABLE)
        return Verdict(state=ContentState.REFUSED, problem=problem)
    for update in payload.updates:
        owner = voice_owner(update.doc)
        if owner is not None and owner != author:
            problem = NotAuthor(**at, voice=owner, detail=_NOT_AUTHOR)
            return Verdict(state=ContentState.REFUSED, problem=problem)
    for update in payload.updates:
        try:
            check_update(update.update)
        except ProtocolError as error:
            problem = Refused(**at, code=error.code, detail=_BAD_UPDATE)
            return Verdict(state=ContentState.REFUSED, problem=problem)
    return Verdict(state=ContentState.APPLIED, updates=payload.updates, at=payload.at)


_REMOVED = (
    "An entry was written by a device after it was removed from the space. "
    "It was set aside and not used."
)
_OLD_EPOCH = (
    "An entry was written with an old key after the space's key had changed. "
    "It was set aside and not used."
)
_UNREADABLE = "An entry could not be read. It was set aside and not used."
_NOT_AUTHOR = (
    "A device tried to write in another person's name. Nobody can speak for someone "
    "else here, so it was set aside and not used."
)
_BAD_UPDATE = "An entry held a change that could not be read. It was set aside and not used."
