"""Coverage-guided fuzzing (atheris, libFuzzer) of every decoder of untrusted bytes.

Each input picks a decoder with its first byte and feeds it the rest. A decoder may
only return, or raise a :class:`protocol.errors.ProtocolError` (a documented code);
any other exception, a hang (``-timeout``) or a crash is a finding, and libFuzzer
writes the input that caused it to ``crash-*`` / ``timeout-*`` (``-artifact_prefix``).

Decoders: the canonical encoding (``encoding.decode``), entries (``Entry.from_bytes``),
roster records (``roster.decode_record``), key envelopes (``KeyEnvelope.from_bytes``),
fork proofs (decoded and verified), agreement records (``record_from_bytes``), voice
records as a reader checks them (``read_voice_record``), pairing messages in clear and
sealed (``decode_clear``, ``decode_inner``), typed pairing codes and QR invite URIs,
and entry payloads (``Payload.from_bytes``).

Run it by hand (from the repository root)::

    .venv/bin/python tests/system/fuzz_atheris.py -atheris_runs=200000
    .venv/bin/python tests/system/fuzz_atheris.py -max_total_time=3600 corpus/

With no corpus directory it starts from a temporary one seeded with valid samples of
every decoder; give a directory to keep what it learns between runs (an empty one is
seeded first). ``--check-seeds``
only checks that every seed decodes. Any libFuzzer flag works (``-jobs=2``,
``-max_len=4096``, ``-timeout=5``...). CI runs it for about 20 seconds
(tests/system/test_atheris_run.py).
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import atheris

with atheris.instrument_imports(include=["protocol", "client_lib"]):
    from client_lib.payload import DocUpdate, Payload
    from client_lib.records import read_voice_record, record_bytes, record_key
    from protocol import encoding
    from protocol.agreement_records import (
        Affirmation,
        Kind,
        Level,
        Pause,
        Resume,
        draft_version,
        record_from_bytes,
    )
    from protocol.entry import Entry
    from protocol.epochs import KeyEnvelope, wrap_epoch_key
    from protocol.errors import ProtocolError
    from protocol.feeds import ForkProof, verify_fork_proof
    from protocol.pairing_codes import Purpose, parse_code, parse_invite_uri
    from protocol.pairing_messages import Decline, Offer, decode_clear, decode_inner
    from protocol.pairing_messages import encode_message as encode_pairing
    from protocol.roster import RemoveDevice, decode_record
    from protocol.vectors.generate import K1, SPACE, Author, key

MEMBER = bytes(range(16))
NOW = 1_767_225_600


def _fork_proof(data: bytes) -> object:
    proof = ForkProof.from_bytes(data)
    verify_fork_proof(proof)
    return proof


def _voice_record(data: bytes) -> object:
    return read_voice_record(record_key_of(data), data, owner=MEMBER)


def record_key_of(data: bytes) -> str:
    """The key a reader would find ``data`` under (so the decoder gets past the key)."""
    try:
        return record_key(record_from_bytes(data), data)
    except ProtocolError:
        return "0" * 64


def _text(parse: Callable[[str], object]) -> Callable[[bytes], object]:
    def decode(data: bytes) -> object:
        return parse(data.decode("utf-8", errors="replace"))

    return decode


DECODERS: list[tuple[str, Callable[[bytes], object]]] = [
    ("canonical", encoding.decode),
    ("entry", Entry.from_bytes),
    ("roster_record", decode_record),
    ("envelope", KeyEnvelope.from_bytes),
    ("fork_proof", _fork_proof),
    ("agreement_record", record_from_bytes),
    ("voice_record", _voice_record),
    ("pairing_clear", decode_clear),
    ("pairing_inner", decode_inner),
    ("pairing_code", _text(parse_code)),
    ("invite_uri", _text(lambda text: parse_invite_uri(text, now=NOW))),
    ("payload", Payload.from_bytes),
]


def samples() -> dict[str, list[bytes]]:
    """Valid inputs of every decoder, made with the real encoders."""
    alice = Author("atheris-alice")
    entry = alice.data("a sample entry").to_bytes()
    twin = Author("atheris-alice").data("another first entry")
    version = draft_version(
        item=bytes(16),
        kind=Kind.LIMIT,
        level=Level.ASK,
        title="A limit",
        author=MEMBER,
        created_at=NOW,
    )
    records = [
        version,
        Affirmation(member=MEMBER, version=version.id, item=bytes(16), at=NOW),
        Pause(member=MEMBER, id=bytes(16), at=NOW),
        Resume(member=MEMBER, id=bytes(range(16)), at=NOW, lifts=(bytes(16),)),
    ]
    offer = Offer(
        purpose=Purpose.PARTNER,
        space=SPACE,
        inviter=key("atheris-inviter").public,
        member=None,
        name="Alex",
    )
    vectors = Path(__file__).resolve().parents[2] / "protocol" / "vectors"
    clear: list[bytes] = []
    uris: list[bytes] = []
    codes: list[bytes] = []
    for case in json.loads((vectors / "pairing-session.json").read_text())["cases"]:
        expect = case["expect"]
        clear += [bytes.fromhex(m["bytes"]) for m in expect["messages"]]
        uris.append(expect["uri"].encode())
        codes.append(expect["code"].encode())
    # The valid inner pairing messages of the vectors (those with a private space).
    inner = [
        bytes.fromhex(case["message"])
        for case in json.loads((vectors / "pairing-message.json").read_text())["cases"]
        if "error" not in case
    ]
    payload = Payload(at=NOW, updates=(DocUpdate(doc="shared", update=b"\x00\x00"),))
    return {
        "canonical": [entry, encoding.encode({"a": [1, -2, b"x", None, True]})],
        "entry": [entry],
        "roster_record": [
            Author("atheris-bob").roster(RemoveDevice(device=key("x").public, last_seq=4)).body
        ],
        "envelope": [
            wrap_epoch_key(
                from_key=key("atheris-sender"),
                to=key("atheris-recipient").public,
                space=SPACE,
                epoch=1,
                epoch_key=K1,
            ).to_bytes()
        ],
        "fork_proof": [ForkProof.of(Entry.from_bytes(entry), twin).to_bytes()],
        "agreement_record": [record_bytes(r) for r in records],
        "voice_record": [record_bytes(r) for r in records],
        "pairing_clear": clear,
        "pairing_inner": [encode_pairing(offer), encode_pairing(Decline()), *inner],
        "pairing_code": codes,
        "invite_uri": uris,
        "payload": [payload.to_bytes()],
    }


def write_seeds(directory: Path) -> None:
    """One file per sample, prefixed with its decoder's index."""
    found = samples()
    for index, (name, _decoder) in enumerate(DECODERS):
        for number, sample in enumerate(found.get(name, [])):
            (directory / f"{name}-{number}").write_bytes(bytes([index]) + sample)


def test_one_input(data: bytes) -> None:
    if not data:
        return
    _name, decoder = DECODERS[data[0] % len(DECODERS)]
    try:
        decoder(data[1:])
    except ProtocolError:
        pass


def check_seeds() -> int:
    """Every seed is accepted by its decoder (so the fuzzer starts from valid inputs);
    returns how many there are.

    Raises:
        ProtocolError: a seed that its decoder refuses.
    """
    found = samples()
    count = 0
    for name, decoder in DECODERS:
        assert found[name], name
        for sample in found[name]:
            decoder(sample)
            count += 1
    return count


def main(argv: list[str]) -> None:
    if "--check-seeds" in argv:
        print(f"{check_seeds()} seeds decode")
        return
    args = list(argv)
    corpora = [Path(arg) for arg in args[1:] if not arg.startswith("-")]
    if not corpora:
        corpora = [Path(tempfile.mkdtemp(prefix="accord-atheris-"))]
        args.append(str(corpora[0]))
    if corpora[0].is_dir() and not any(corpora[0].iterdir()):
        write_seeds(corpora[0])  # an empty corpus starts from the valid samples
    if not any(arg.startswith("-timeout=") for arg in args):
        args.append("-timeout=10")
    atheris.Setup(args, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
