"""The pairing vectors: committed files are what the generator builds, the conformance
runner passes them, and the key schedule matches SPEC.md when recomputed from raw
libsodium calls rather than through our helpers."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import cbor2
import nacl.bindings as sodium
import nacl.hash
import pytest
from nacl.encoding import RawEncoder
from pairing_vectors import VECTORS, build, render

from protocol.conformance import load_checkers, main, run_file
from protocol.pairing import transition_table
from protocol.pairing_codes import WORDS

SPEC = Path(__file__).resolve().parents[2] / "protocol" / "SPEC.md"


def _blake(data: bytes, person: bytes, key: bytes = b"", size: int = 32) -> bytes:
    return bytes(
        nacl.hash.blake2b(
            data, digest_size=size, key=key, person=person.ljust(16, b"\0"), encoder=RawEncoder
        )
    )


def _session(name: str) -> dict[str, Any]:
    document = json.loads((VECTORS / "pairing-session.json").read_text(encoding="utf-8"))
    return next(case for case in document["cases"] if case["name"] == name)


@pytest.mark.parametrize("name", sorted(build()))
def test_committed_vectors_are_what_the_generator_builds(name: str) -> None:
    committed = (VECTORS / name).read_text(encoding="utf-8")
    assert committed == render(build()[name]), "run: python tests/pairing/pairing_vectors.py"


@pytest.mark.parametrize("name", sorted(build()))
def test_the_conformance_runner_passes_the_pairing_vectors(name: str) -> None:
    passed, failures = run_file(VECTORS / name, load_checkers())
    assert failures == []
    assert passed > 0


def test_the_conformance_runner_catches_a_wrong_vector(tmp_path: Path) -> None:
    document = build()["pairing-session.json"]
    document["cases"][0]["expect"]["sas"] = "000000"
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    assert main([str(path)]) == 1


def test_the_qr_key_schedule_matches_the_spec_from_raw_libsodium() -> None:
    case = _session("QR code, partner pairing, approved")
    inputs, want = case["inputs"], case["expect"]
    e_i = bytes.fromhex(inputs["inviter_ephemeral_secret"])
    e_j = bytes.fromhex(inputs["joiner_ephemeral_secret"])
    k = sodium.crypto_scalarmult_base(e_i)
    j = sodium.crypto_scalarmult_base(e_j)
    transcript = cbor2.dumps(
        {
            "v": 1,
            "mode": "qr",
            "relay": inputs["relay"],
            "channel": inputs["channel"],
            "expires": inputs["expires"],
            "purpose": inputs["purpose"],
            "inviter_key": k,
            "joiner_key": j,
        },
        canonical=True,
    )
    assert transcript.hex() == want["transcript"]
    th = _blake(transcript, b"accord:pair-tx")
    shared = sodium.crypto_scalarmult(e_j, k)
    assert shared == sodium.crypto_scalarmult(e_i, j)
    root = _blake(shared + th, b"accord:pair-qr", key=bytes.fromhex(inputs["secret"]))
    assert root.hex() == want["root"]
    assert _blake(th, b"accord:pair-macj", key=root).hex() == want["mac"]
    sas = int.from_bytes(_blake(th, b"accord:pair-sas", key=root, size=8), "big") % 10**6
    assert f"{sas:06d}" == want["sas"]

    # The hello is {type, v, mode, mac, key} and its MAC proves knowledge of s.
    hello = cbor2.loads(bytes.fromhex(want["messages"][1]["bytes"]))
    assert hello == {
        "type": "hello",
        "v": 1,
        "mode": "qr",
        "key": j,
        "mac": bytes.fromhex(want["mac"]),
    }

    # The offer opens with the inviter-to-joiner key, nonce = seq as 24 big-endian bytes.
    i2j = _blake(th, b"accord:pair-i2j", key=root)
    sealed = cbor2.loads(bytes.fromhex(want["messages"][2]["bytes"]))
    assert sealed["type"] == "sealed" and sealed["seq"] == 0
    ad = cbor2.dumps({"type": "sealed", "seq": 0}, canonical=True)
    padded = sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(
        sealed["box"], ad, (0).to_bytes(24, "big"), i2j
    )
    assert len(padded) % 256 == 0
    offer = cbor2.loads(sodium.sodium_unpad(padded, 256))
    assert offer["type"] == "offer" and offer["name"] == inputs["offer"]["name"]


def test_the_code_key_schedule_matches_the_spec() -> None:
    case = _session("typed code, partner pairing, approved")
    want = case["expect"]
    messages = want["messages"]
    pake_i = cbor2.loads(bytes.fromhex(messages[0]["bytes"]))["pake"]
    pake_j = cbor2.loads(bytes.fromhex(messages[1]["bytes"]))["pake"]
    transcript = cbor2.dumps(
        {
            "v": 1,
            "mode": "code",
            "channel": case["inputs"]["channel"],
            "nameplate": case["inputs"]["nameplate"],
            "pake_inviter": pake_i,
            "pake_joiner": pake_j,
        },
        canonical=True,
    )
    assert transcript.hex() == want["transcript"]
    th = _blake(transcript, b"accord:pair-tx")
    root = _blake(th, b"accord:pair-code", key=bytes.fromhex(want["spake_key"]))
    assert root.hex() == want["root"]
    sas = int.from_bytes(_blake(th, b"accord:pair-sas", key=root, size=8), "big") % 10**6
    assert f"{sas:06d}" == want["sas"]


def test_spec_section_11_prints_the_transition_table_and_the_word_list() -> None:
    spec = SPEC.read_text(encoding="utf-8")
    assert transition_table() in spec
    section = spec[spec.index("## 11. Pairing") : spec.index("## 12. Test vectors")]
    rows = [line for line in section.splitlines() if re.fullmatch(r"[0-9a-f]{2}  .*", line)]
    listed = [word for row in rows for word in row.split()[1:]]
    assert tuple(listed) == WORDS
    assert [int(row[:2], 16) for row in rows] == list(range(0, 256, 8))
