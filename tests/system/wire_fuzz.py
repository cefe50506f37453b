"""Building blocks for fuzzing the relay at its HTTP and WebSocket boundary.

* :func:`documented_codes` reads the error code tables of SPEC.md section 10, so the
  fuzz tests check answers against the written spec, not against the relay's code.
* :func:`mutated` turns a valid byte string (an entry, an envelope, a signature...)
  into a near miss: flipped bits, insertions, deletions, truncations, splices.
* :data:`json_values` draws any JSON value.
* :class:`Samples` holds real, valid wire values made by the protocol core.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

SPEC = Path(__file__).resolve().parents[2] / "protocol" / "SPEC.md"


def documented_codes() -> dict[str, int]:
    """Every error code of SPEC.md section 10 with its HTTP status."""
    text = SPEC.read_text(encoding="utf-8")
    start = text.index("## 10. Error codes")
    end = text.index("## 11.", start)
    codes: dict[str, int] = {}
    for match in re.finditer(r"^\| `([a-z_]+)` \| (\d{3}) \|", text[start:end], re.MULTILINE):
        codes[match.group(1)] = int(match.group(2))
    return codes


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@st.composite
def mutated(draw: st.DrawFn, sample: bytes) -> bytes:
    """``sample`` with one to four random edits."""
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
        elif action == "splice" and data:
            other = draw(st.integers(0, len(data) - 1))
            data[position:position] = data[other : other + draw(st.integers(1, 16))]
    return bytes(data)


json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=10), inner, max_size=5)
    ),
    max_leaves=12,
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Samples:
    """Valid wire values of one real space on the relay under test."""

    space: bytes
    token: str
    device: bytes
    entries: tuple[bytes, ...]  # valid encoded entries (the next ones of the feed)
    envelope: bytes
    signature: bytes
    channel: str
    side_token: str
    nameplate: str

    def blobs(self) -> st.SearchStrategy[bytes]:
        """Valid values, their near misses, and random bytes."""
        valid = st.sampled_from(
            [*self.entries, self.envelope, self.signature, self.space, self.device]
        )
        return st.one_of(valid, valid.flatmap(mutated), st.binary(max_size=300))

    def field_values(self) -> st.SearchStrategy[Any]:
        """What a fuzzed JSON field may hold: base64 of blobs, or any JSON at all."""
        return st.one_of(self.blobs().map(b64), json_values)

    def field(self, name: str) -> st.SearchStrategy[Any]:
        """A value for the field ``name``: mostly the right kind of value or a near miss
        of it (so the request gets past the JSON checks to the decoders), sometimes
        anything at all."""
        right: dict[str, st.SearchStrategy[bytes]] = {
            "space": st.just(self.space),
            "device": st.just(self.device),
            "entry": st.sampled_from(self.entries),
            "entries": st.sampled_from(self.entries),
            "envelopes": st.just(self.envelope),
            "sig": st.just(self.signature),
            "challenge": st.binary(min_size=32, max_size=32),
            "body": st.binary(max_size=64),
        }
        exact = right.get(name)
        if exact is None:
            return st.one_of(json_values, json_scalars, self.field_values())
        near = st.one_of(exact, exact, exact.flatmap(mutated))
        return st.one_of(*[near.map(b64)] * 6, self.field_values())


def decode_error(body: bytes) -> tuple[str, str] | None:
    """``(code, message)`` of a relay error body, None if it is not one."""
    import json

    try:
        data = json.loads(body)
    except ValueError:
        return None
    error = data.get("error") if isinstance(data, dict) else None
    if not isinstance(error, dict):
        return None
    code, message = error.get("code"), error.get("message")
    if not isinstance(code, str) or not isinstance(message, str):
        return None
    return code, message
