"""Vector checks for identities, hashes, derivations and padding (SPEC.md 12.1, 12.2).

Kinds ``keys`` (``keys.json``) and ``padding`` (``padding.json``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from protocol.checks import Case, Checker, expect
from protocol.checks.helpers import dispatch, expect_outcome, hex_list, integer, unhex
from protocol.crypto import DeviceKey, content_key, fingerprint, key_id, member_id_of, safety_number
from protocol.entry import bucket_size, pad, unpad
from protocol.roster import join_proof


def _device(case: Case) -> None:
    device = DeviceKey(unhex(case["seed"], "seed"))
    want = case["expect"]
    expect(device.public.hex() == want["ed25519_public"], "Ed25519 public key differs")
    expect(device.x25519_public.hex() == want["x25519_public"], "X25519 public key differs")
    expect(member_id_of(device.public).hex() == want["member_id"], "member id differs")
    expect(fingerprint(device.public) == want["fingerprint"], "fingerprint differs")


def _safety_number(case: Case) -> None:
    a, b = hex_list(case["keys_a"], "keys_a"), hex_list(case["keys_b"], "keys_b")
    expect(safety_number(a, b) == case["expect"], "safety number differs")
    expect(safety_number(b, a) == case["expect"], "safety number differs when swapped")


def _content_key(case: Case) -> None:
    derived = content_key(
        unhex(case["epoch_key"], "epoch_key"),
        unhex(case["space"], "space"),
        integer(case["epoch"], "epoch"),
    )
    expect(derived.hex() == case["expect"], "content key differs")


def _key_id(case: Case) -> None:
    expect(key_id(unhex(case["epoch_key"], "epoch_key")).hex() == case["expect"], "key id differs")


def _join_proof(case: Case) -> None:
    proof = join_proof(
        DeviceKey(unhex(case["seed"], "seed")),
        space=unhex(case["space"], "space"),
        member=unhex(case["member"], "member"),
        by=unhex(case["by"], "by"),
    )
    expect(proof.hex() == case["expect"], "join proof differs")


def _pad(case: Case) -> None:
    plaintext = unhex(case["plaintext"], "plaintext")
    padded = pad(plaintext)
    expect(len(padded) == case["expect"]["bucket"], "bucket differs")
    expect(padded.hex() == case["expect"]["padded"], "padded bytes differ")
    expect(unpad(padded) == plaintext, "unpad does not give the plaintext back")


def _bucket(case: Case) -> None:
    def check(bucket: int, want: Mapping[str, Any]) -> None:
        expect(bucket == want["bucket"], f"bucket {bucket}, expected {want['bucket']}")

    expect_outcome(case, lambda: bucket_size(integer(case["length"], "length")), check)


def _unpad(case: Case) -> None:
    def check(plaintext: bytes, want: Mapping[str, Any]) -> None:
        expect(plaintext.hex() == want["plaintext"], "plaintext differs")

    expect_outcome(case, lambda: unpad(unhex(case["padded"], "padded")), check)


CHECKERS: dict[str, Checker] = {
    "keys": dispatch(
        {
            "device": _device,
            "safety_number": _safety_number,
            "content_key": _content_key,
            "key_id": _key_id,
            "join_proof": _join_proof,
        }
    ),
    "padding": dispatch({"pad": _pad, "bucket": _bucket, "unpad": _unpad}),
}
