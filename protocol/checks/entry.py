"""Vector checks for sealing and opening entries (SPEC.md 12.3, kind ``entry``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from protocol.checks import Case, Checker, VectorMismatch, expect
from protocol.checks.helpers import (
    dispatch,
    expect_outcome,
    hex_list,
    integer,
    unhex,
    unhex_or_none,
)
from protocol.crypto import DeviceKey
from protocol.entry import Entry, SeenHead, bucket_size, seal, seal_roster
from protocol.entry import open as open_entry


def _seen(value: object) -> tuple[SeenHead, ...]:
    if not isinstance(value, list):
        raise VectorMismatch("seen must be an array of [device, seq, id]")
    return tuple(
        SeenHead(device=unhex(item[0], "seen device"), seq=item[1], id=unhex(item[2], "seen id"))
        for item in value
    )


def _compare_entry(entry: Entry, want: Mapping[str, Any]) -> None:
    raw = entry.to_bytes()
    expect(raw.hex() == want["entry"], "encoded entry differs")
    expect(entry.id.hex() == want["id"], "entry id differs")
    again = Entry.from_bytes(raw)
    expect(again == entry, "the encoded entry does not decode to itself")


def _seal(case: Case) -> None:
    plaintext = unhex(case["plaintext"], "plaintext")
    entry = seal(
        device_key=DeviceKey(unhex(case["seed"], "seed")),
        space=unhex(case["space"], "space"),
        seq=integer(case["seq"], "seq"),
        prev=unhex_or_none(case["prev"], "prev"),
        epoch=integer(case["epoch"], "epoch"),
        epoch_key=unhex(case["epoch_key"], "epoch_key"),
        plaintext=plaintext,
        seen=_seen(case["seen"]),
        nonce=unhex(case["nonce"], "nonce"),
    )
    want = case["expect"]
    _compare_entry(entry, want)
    expect(entry.header_bytes().hex() == want["header"], "header differs")
    expect(bucket_size(len(plaintext)) == want["padded_length"], "padded length differs")
    expect(len(entry.body) == want["padded_length"] + 16, "ciphertext length differs")


def _seal_roster(case: Case) -> None:
    entry = seal_roster(
        device_key=DeviceKey(unhex(case["seed"], "seed")),
        space=unhex(case["space"], "space"),
        seq=integer(case["seq"], "seq"),
        prev=unhex_or_none(case["prev"], "prev"),
        epoch=integer(case["epoch"], "epoch"),
        record=unhex(case["record"], "record"),
        seen=_seen(case["seen"]),
    )
    _compare_entry(entry, case["expect"])


def _open(case: Case) -> None:
    raw_keys = case["epoch_keys"]
    if not isinstance(raw_keys, dict):
        raise VectorMismatch("epoch_keys must be an object")
    epoch_keys = {int(epoch): unhex(k, "epoch key") for epoch, k in raw_keys.items()}

    def attempt() -> bytes:
        return open_entry(
            Entry.from_bytes(unhex(case["entry"], "entry")),
            space=unhex(case["space"], "space"),
            devices=hex_list(case["devices"], "devices"),
            prev_id=unhex_or_none(case["prev_id"], "prev_id"),
            epoch_keys=epoch_keys,
            min_epoch=integer(case["min_epoch"], "min_epoch"),
        )

    def check(plaintext: bytes, want: Mapping[str, Any]) -> None:
        expect(plaintext.hex() == want["plaintext"], "plaintext differs")

    expect_outcome(case, attempt, check)


CHECKERS: dict[str, Checker] = {
    "entry": dispatch({"seal": _seal, "seal_roster": _seal_roster, "open": _open}),
}
