"""Every decoder, fed random and mutated bytes, raises only documented ProtocolErrors.

The default run keeps example counts moderate; ``pytest -m slow`` runs many more.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol import encoding
from protocol.entry import Entry
from protocol.epochs import KeyEnvelope, wrap_epoch_key
from protocol.errors import ProtocolError
from protocol.feeds import ForkProof, verify_fork_proof
from protocol.roster import RemoveDevice, decode_record
from protocol.vectors.generate import K1, SPACE, Author, key

_alice = Author("fuzz-alice")
_SAMPLES: dict[str, bytes] = {
    "entry": _alice.data("a sample entry with some text").to_bytes(),
    "envelope": wrap_epoch_key(
        from_key=key("fuzz-sender"),
        to=key("fuzz-recipient").public,
        space=SPACE,
        epoch=1,
        epoch_key=K1,
        ephemeral_secret=bytes(32),
    ).to_bytes(),
}
_twin = Author("fuzz-alice")
_SAMPLES["fork_proof"] = ForkProof.of(
    Entry.from_bytes(_SAMPLES["entry"]), _twin.data("another first entry")
).to_bytes()
_SAMPLES["record"] = (
    Author("fuzz-bob").roster(RemoveDevice(device=key("x").public, last_seq=4)).body
)


def _fork_proof(data: bytes) -> None:
    verify_fork_proof(ForkProof.from_bytes(data))


DECODERS: dict[str, Callable[[bytes], object]] = {
    "canonical": encoding.decode,
    "entry": Entry.from_bytes,
    "record": decode_record,
    "envelope": KeyEnvelope.from_bytes,
    "fork_proof": _fork_proof,
}
SAMPLE_OF = {"canonical": "entry", "entry": "entry", "record": "record"}
SAMPLE_OF.update({"envelope": "envelope", "fork_proof": "fork_proof"})


def feed(decoder: Callable[[bytes], object], data: bytes) -> None:
    started = time.monotonic()
    try:
        decoder(data)
    except ProtocolError:
        pass
    assert time.monotonic() - started < 2.0


@st.composite
def mutated(draw: st.DrawFn, sample: bytes) -> bytes:
    data = bytearray(sample)
    for _ in range(draw(st.integers(1, 4))):
        action = draw(st.sampled_from(["flip", "insert", "delete", "truncate", "splice"]))
        position = draw(st.integers(0, max(len(data) - 1, 0)))
        if action == "flip" and data:
            data[position] ^= 1 << draw(st.integers(0, 7))
        elif action == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=8))
        elif action == "delete" and data:
            del data[position : position + draw(st.integers(1, 8))]
        elif action == "truncate":
            del data[position:]
        else:
            data[position : position + 4] = draw(st.binary(min_size=0, max_size=4))
    return bytes(data)


# Headers that claim huge lengths, deep nesting and other traps for CBOR decoders.
TRAPS = [
    b"",
    b"\x5b\xff\xff\xff\xff\xff\xff\xff\xff",  # byte string of 2**64 - 1 bytes
    b"\x9b\x00\x00\x00\x10\x00\x00\x00\x00",  # array of 2**36 items
    b"\xbb\x00\x00\x00\x10\x00\x00\x00\x00",  # map of 2**36 pairs
    b"\x81" * 10000,  # nesting far too deep
    b"\x9f\x01\xff",  # indefinite array
    b"\xc1\x1a\x00\x00\x00\x00",  # a tag
    b"\xfb\x3f\xf0\x00\x00\x00\x00\x00\x00",  # a float
    b"\xa2\x61a\x01\x61a\x02",  # duplicate key
    b"\x1b\xff\xff\xff\xff\xff\xff\xff\xff",  # integer above the 64-bit signed range
    b"\xa1\x01\x02",  # an integer map key
]


@pytest.mark.parametrize("name", sorted(DECODERS))
@pytest.mark.parametrize("trap", TRAPS, ids=range(len(TRAPS)))
def test_traps(name: str, trap: bytes) -> None:
    feed(DECODERS[name], trap)


@pytest.mark.parametrize("name", sorted(DECODERS))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=512))
def test_random_bytes(name: str, data: bytes) -> None:
    feed(DECODERS[name], data)


@pytest.mark.parametrize("name", sorted(DECODERS))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_valid_bytes(name: str, data: st.DataObject) -> None:
    feed(DECODERS[name], data.draw(mutated(_SAMPLES[SAMPLE_OF[name]])))


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(DECODERS))
@settings(max_examples=5000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_valid_bytes_long(name: str, data: st.DataObject) -> None:
    feed(DECODERS[name], data.draw(mutated(_SAMPLES[SAMPLE_OF[name]])))


@pytest.mark.parametrize("name", sorted(DECODERS))
def test_the_samples_decode(name: str) -> None:
    DECODERS[name](_SAMPLES[SAMPLE_OF[name]])
