"""Vector checks for key envelopes (SPEC.md 12.6, kind ``envelope``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from protocol.checks import Case, Checker, expect
from protocol.checks.helpers import dispatch, expect_outcome, hex_list, integer, unhex
from protocol.crypto import DeviceKey
from protocol.epochs import KeyEnvelope, unwrap_epoch_key, wrap_epoch_key


def _wrap(case: Case) -> None:
    recipient = unhex(case["recipient"], "recipient")
    envelope = wrap_epoch_key(
        from_key=DeviceKey(unhex(case["sender_seed"], "sender_seed")),
        to=recipient,
        space=unhex(case["space"], "space"),
        epoch=integer(case["epoch"], "epoch"),
        epoch_key=unhex(case["epoch_key"], "epoch_key"),
        ephemeral_secret=unhex(case["ephemeral_secret"], "ephemeral_secret"),
    )
    raw = envelope.to_bytes()
    expect(raw.hex() == case["expect"]["envelope"], "encoded envelope differs")
    expect(KeyEnvelope.from_bytes(raw) == envelope, "the envelope does not decode to itself")


def _unwrap(case: Case) -> None:
    def attempt() -> bytes:
        return unwrap_epoch_key(
            KeyEnvelope.from_bytes(unhex(case["envelope"], "envelope")),
            device_key=DeviceKey(unhex(case["recipient_seed"], "recipient_seed")),
            trusted_senders=hex_list(case["trusted_senders"], "trusted_senders"),
            space=unhex(case["space"], "space"),
        )

    def check(epoch_key: bytes, want: Mapping[str, Any]) -> None:
        expect(epoch_key.hex() == want["epoch_key"], "epoch key differs")

    expect_outcome(case, attempt, check)


CHECKERS: dict[str, Checker] = {"envelope": dispatch({"wrap": _wrap, "unwrap": _unwrap})}
