"""Regenerate the non-rule vector files of this folder (SPEC.md section 12).

Usage, from the repository root::

    python -m protocol.vectors.generate

Deterministic: every seed, nonce, epoch key and ephemeral secret below is derived from a
fixed label, so running it twice writes the same bytes. The feed, roster and envelope
scenarios live in :mod:`protocol.vectors.generate_feeds`. It writes ``keys.json``,
``padding.json``, ``entries.json``, ``feeds.json``, ``roster.json`` and
``envelopes.json``, and never touches ``rule-*.json``. The expected answers are what
this implementation computes; ``python -m protocol.conformance`` then checks them, and a
second implementation checks itself against them.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nacl.bindings as sodium

from protocol import encoding
from protocol.crypto import (
    DeviceKey,
    blake2b,
    content_key,
    fingerprint,
    key_id,
    member_id_of,
    safety_number,
)
from protocol.entry import (
    Entry,
    EntryType,
    SeenHead,
    bucket_size,
    pad,
    seal,
    seal_roster,
)
from protocol.entry import open as open_entry
from protocol.epochs import KeyEnvelope, wrap_epoch_key
from protocol.errors import ProtocolError
from protocol.roster import Found, Record, encode_record, join_proof

HERE = Path(__file__).resolve().parent


def fixed(label: str, size: int = 32) -> bytes:
    """Deterministic bytes for a label: BLAKE2b of the label, personalised."""
    return blake2b(label.encode(), person=b"accord:vectors", size=size)


def key(label: str) -> DeviceKey:
    return DeviceKey.generate(fixed("seed/" + label))


def h(data: bytes | None) -> str | None:
    return None if data is None else data.hex()


SPACE = fixed("space/main", 16)
OTHER_SPACE = fixed("space/other", 16)
K0 = fixed("epoch-key/0")
K1 = fixed("epoch-key/1")
K2 = fixed("epoch-key/2")


class Author:
    """Writes one device's feed: keeps seq and prev, derives nonces from labels."""

    def __init__(self, label: str, space: bytes = SPACE) -> None:
        self.label = label
        self.key = key(label)
        self.space = space
        self.seq = 0
        self.head: bytes | None = None

    @property
    def public(self) -> bytes:
        return self.key.public

    @property
    def member(self) -> bytes:
        return member_id_of(self.public)

    def at(self) -> SeenHead:
        if self.head is None:
            raise ValueError("an empty feed has no head")
        return SeenHead(device=self.public, seq=self.seq, id=self.head)

    @staticmethod
    def _sorted(seen: tuple[SeenHead, ...]) -> tuple[SeenHead, ...]:
        return tuple(sorted(seen, key=lambda head: head.device))

    def _push(self, entry: Entry) -> Entry:
        self.seq, self.head = entry.seq, entry.id
        return entry

    def data(
        self, text: str, *, epoch: int = 0, epoch_key: bytes = K0, seen: tuple[SeenHead, ...] = ()
    ) -> Entry:
        return self._push(
            seal(
                device_key=self.key,
                space=self.space,
                seq=self.seq + 1,
                prev=self.head,
                epoch=epoch,
                epoch_key=epoch_key,
                plaintext=text.encode(),
                seen=self._sorted(seen),
                nonce=fixed(f"nonce/{self.label}/{self.seq + 1}/{text}", 24),
            )
        )

    def roster(self, record: Record, *, epoch: int = 0, seen: tuple[SeenHead, ...] = ()) -> Entry:
        return self._push(
            seal_roster(
                device_key=self.key,
                space=self.space,
                seq=self.seq + 1,
                prev=self.head,
                epoch=epoch,
                record=encode_record(record),
                seen=self._sorted(seen),
            )
        )


def sign_as(device_key: DeviceKey, unsigned: Entry) -> Entry:
    return dataclasses.replace(unsigned, sig=device_key.sign(unsigned.signing_bytes()))


def error_code(action: Callable[[], object]) -> str:
    try:
        action()
    except ProtocolError as error:
        return error.code.value
    raise AssertionError("expected a protocol error")


def document(kind: str, description: str, cases: list[dict[str, Any]]) -> dict[str, Any]:
    return {"kind": kind, "description": description, "cases": cases}


# -- keys.json --------------------------------------------------------------------------


def keys_vectors() -> dict[str, Any]:
    cases: list[dict[str, Any]] = []
    for label, seed in [
        ("zero seed", bytes(32)),
        ("ones seed", b"\x01" * 32),
        ("labelled seed", fixed("seed/alice")),
    ]:
        device = DeviceKey.generate(seed)
        cases.append(
            {
                "name": f"device: {label}",
                "check": "device",
                "seed": seed.hex(),
                "expect": {
                    "ed25519_public": device.public.hex(),
                    "x25519_public": device.x25519_public.hex(),
                    "member_id": member_id_of(device.public).hex(),
                    "fingerprint": fingerprint(device.public),
                },
            }
        )
    a = [key("alice").public, key("alice-laptop").public]
    b = [key("blake").public]
    for name, left, right in [("one device each", a[:1], b), ("two and one", a, b)]:
        cases.append(
            {
                "name": f"safety number: {name}",
                "check": "safety_number",
                "keys_a": [k.hex() for k in left],
                "keys_b": [k.hex() for k in right],
                "expect": safety_number(left, right),
            }
        )
    for epoch, epoch_key in [(0, K0), (1, K1), (7, K2)]:
        cases.append(
            {
                "name": f"content key: epoch {epoch}",
                "check": "content_key",
                "epoch_key": epoch_key.hex(),
                "space": SPACE.hex(),
                "epoch": epoch,
                "expect": content_key(epoch_key, SPACE, epoch).hex(),
            }
        )
        cases.append(
            {
                "name": f"key id: epoch key {epoch}",
                "check": "key_id",
                "epoch_key": epoch_key.hex(),
                "expect": key_id(epoch_key).hex(),
            }
        )
    alice, blake = key("alice"), key("blake")
    cases.append(
        {
            "name": "join proof: blake joins as a new member, written by alice",
            "check": "join_proof",
            "seed": fixed("seed/blake").hex(),
            "space": SPACE.hex(),
            "member": member_id_of(blake.public).hex(),
            "by": alice.public.hex(),
            "expect": join_proof(
                blake, space=SPACE, member=member_id_of(blake.public), by=alice.public
            ).hex(),
        }
    )
    return document("keys", "Identities, hashes and key derivations (SPEC 3)", cases)


# -- padding.json -----------------------------------------------------------------------


def padding_vectors() -> dict[str, Any]:
    cases: list[dict[str, Any]] = []
    for length in (0, 1, 255, 256, 700):
        plaintext = bytes(i % 251 for i in range(length))
        cases.append(
            {
                "name": f"pad {length} bytes",
                "check": "pad",
                "plaintext": plaintext.hex(),
                "expect": {"bucket": bucket_size(length), "padded": pad(plaintext).hex()},
            }
        )
    for length in (0, 255, 256, 511, 512, 65535, 1048575):
        cases.append(
            {
                "name": f"bucket of {length}",
                "check": "bucket",
                "length": length,
                "expect": {"bucket": bucket_size(length)},
            }
        )
    cases.append(
        {
            "name": "bucket of 1048576 is oversized",
            "check": "bucket",
            "length": 1048576,
            "expect": {"error": "oversized"},
        }
    )
    short = b"hello"
    bad = [
        ("length not a bucket size", pad(short)[:-1] + b"\x00" * 45),
        ("below the smallest bucket", short + b"\x80" + bytes(122)),
        ("no 0x80 marker", bytes(256)),
        ("non-zero byte after the marker", short + b"\x80" + bytes(249) + b"\x01"),
        ("padded to a larger bucket than needed", sodium.sodium_pad(short, 512)),
    ]
    cases.append(
        {
            "name": "unpad a 5-byte plaintext",
            "check": "unpad",
            "padded": pad(short).hex(),
            "expect": {"plaintext": short.hex()},
        }
    )
    for name, padded in bad:
        cases.append(
            {
                "name": f"unpad refuses: {name}",
                "check": "unpad",
                "padded": bytes(padded).hex(),
                "expect": {"error": "bad_padding"},
            }
        )
    return document("padding", "Size buckets and ISO/IEC 7816-4 padding (SPEC 4.4)", cases)


# -- entries.json -----------------------------------------------------------------------


def _seal_case(name: str, author: Author, text: str, entry: Entry, epoch_key: bytes) -> Any:
    return {
        "name": name,
        "check": "seal",
        "seed": fixed("seed/" + author.label).hex(),
        "space": entry.space.hex(),
        "seq": entry.seq,
        "prev": h(entry.prev),
        "epoch": entry.epoch,
        "epoch_key": epoch_key.hex(),
        "nonce": h(entry.nonce),
        "plaintext": text.encode().hex(),
        "seen": [[s.device.hex(), s.seq, s.id.hex()] for s in entry.seen],
        "expect": {
            "entry": entry.to_bytes().hex(),
            "id": entry.id.hex(),
            "header": entry.header_bytes().hex(),
            "padded_length": bucket_size(len(text.encode())),
        },
    }


def _open_case(
    name: str,
    raw: bytes,
    *,
    devices: list[bytes],
    prev_id: bytes | None,
    keys: dict[int, bytes],
    expect: dict[str, Any],
    space: bytes = SPACE,
    min_epoch: int = 0,
) -> dict[str, Any]:
    return {
        "name": name,
        "check": "open",
        "entry": raw.hex(),
        "space": space.hex(),
        "devices": [d.hex() for d in devices],
        "prev_id": h(prev_id),
        "epoch_keys": {str(epoch): k.hex() for epoch, k in sorted(keys.items())},
        "min_epoch": min_epoch,
        "expect": expect,
    }


def entries_vectors() -> dict[str, Any]:
    alice, blake = Author("alice"), Author("blake")
    b1 = blake.data("blake's first entry")
    a1 = alice.data("")
    a2 = alice.data("x" * 300, seen=(blake.at(),))
    a3 = alice.data("y" * 255, epoch=1, epoch_key=K1)
    devices = [alice.public, blake.public]
    keys = {0: K0, 1: K1}
    cases: list[dict[str, Any]] = [
        _seal_case("seal: first entry, empty plaintext", alice, "", a1, K0),
        _seal_case("seal: second entry, 300 bytes, one seen head", alice, "x" * 300, a2, K0),
        _seal_case("seal: epoch 1, 255 bytes (largest of bucket 256)", alice, "y" * 255, a3, K1),
        _seal_case("seal: another device", blake, "blake's first entry", b1, K0),
    ]
    founder = Author("rosa")
    found = founder.roster(Found(member=founder.member, device=founder.public))
    cases.append(
        {
            "name": "seal a roster entry: founding record",
            "check": "seal_roster",
            "seed": fixed("seed/rosa").hex(),
            "space": SPACE.hex(),
            "seq": 1,
            "prev": None,
            "epoch": 0,
            "record": found.body.hex(),
            "seen": [],
            "expect": {"entry": found.to_bytes().hex(), "id": found.id.hex()},
        }
    )
    for entry, prev, text in [(a1, None, ""), (a2, a1.id, "x" * 300), (a3, a2.id, "y" * 255)]:
        cases.append(
            _open_case(
                f"open entry {entry.seq}",
                entry.to_bytes(),
                devices=devices,
                prev_id=prev,
                keys=keys,
                expect={"plaintext": text.encode().hex()},
            )
        )
    a2_raw = a2.to_bytes()
    flipped_sig = dataclasses.replace(a2, sig=bytes([a2.sig[0] ^ 1]) + a2.sig[1:])
    flipped_body = dataclasses.replace(a2, body=a2.body[:-1] + bytes([a2.body[-1] ^ 1]))
    wrong_bucket = _wrong_bucket_entry(alice.key)
    oversized = dict(a1.header_map(), body=a1.body, sig=a1.sig)
    oversized["seen"] = [[fixed(f"dev/{i}"), 1, fixed(f"id/{i}")] for i in range(257)]
    oversized["seen"].sort()
    v2 = dict(a1.header_map(), body=a1.body, sig=a1.sig, v=2)
    missing = dict(a1.header_map(), body=a1.body)
    negative: list[tuple[str, bytes, dict[str, Any]]] = [
        ("bad signature: a flipped signature byte", flipped_sig.to_bytes(), {}),
        ("bad signature: a flipped ciphertext byte", flipped_body.to_bytes(), {}),
        ("unknown device", a2_raw, {"devices": [blake.public]}),
        ("wrong space", a2_raw, {"space": OTHER_SPACE}),
        ("bad padding: a 10-byte plaintext padded to 512", wrong_bucket.to_bytes(), {}),
        ("decrypt failed: the wrong epoch key", a2_raw, {"keys": {0: K1, 1: K1}}),
        ("oversized: 257 seen heads", encoding.encode(oversized), {}),
        ("malformed: no signature field", encoding.encode(missing), {}),
        ("malformed: a trailing byte", a2_raw + b"\x00", {}),
        ("unsupported version: v = 2", encoding.encode(v2), {}),
        ("broken chain: prev is not the feed's previous entry", a2_raw, {"prev_id": b1.id}),
        (
            "wrong epoch: no key for the entry's epoch",
            a3.to_bytes(),
            {"keys": {0: K0}, "prev_id": Entry.from_bytes(a2_raw).id},
        ),
        ("wrong epoch: older than the feed's last", a2_raw, {"min_epoch": 1}),
    ]
    for name, raw, overrides in negative:
        prev_id = overrides.get("prev_id", a1.id)
        if raw == wrong_bucket.to_bytes():
            prev_id = None
        args: dict[str, Any] = {
            "devices": overrides.get("devices", devices),
            "prev_id": prev_id,
            "keys": overrides.get("keys", keys),
            "space": overrides.get("space", SPACE),
            "min_epoch": overrides.get("min_epoch", 0),
        }

        def attempt(raw: bytes = raw, args: dict[str, Any] = args) -> bytes:
            return open_entry(
                Entry.from_bytes(raw),
                space=args["space"],
                devices=args["devices"],
                prev_id=args["prev_id"],
                epoch_keys=args["keys"],
                min_epoch=args["min_epoch"],
            )

        code = error_code(attempt)
        intended = name.split(":")[0].replace(" ", "_")
        if code != intended:  # the case must fail for the reason its name gives
            raise SystemExit(f"vector {name!r} fails with {code}, not {intended}")
        cases.append(_open_case(name, raw, **args, expect={"error": code}))
    return document("entry", "Sealing and opening entries (SPEC 4.1 to 4.4)", cases)


def _wrong_bucket_entry(device_key: DeviceKey) -> Entry:
    """A correctly signed and encrypted entry whose padding uses too big a bucket."""
    plaintext = b"ten bytes!"
    padded = bytes(sodium.sodium_pad(plaintext, 512))
    nonce = fixed("nonce/wrong-bucket", 24)
    unsigned = Entry(
        type=EntryType.DATA,
        space=SPACE,
        device=device_key.public,
        seq=1,
        prev=None,
        epoch=0,
        nonce=nonce,
        body=bytes(len(padded) + 16),
    )
    body = bytes(
        sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(
            padded, unsigned.header_bytes(), nonce, content_key(K0, SPACE, 0)
        )
    )
    return sign_as(device_key, dataclasses.replace(unsigned, body=body))


# -- envelopes.json ---------------------------------------------------------------------


def envelopes_vectors() -> dict[str, Any]:
    sender, recipient, other = key("env-sender"), key("env-recipient"), key("env-other")
    ephemeral = fixed("ephemeral/1")
    envelope = wrap_epoch_key(
        from_key=sender,
        to=recipient.public,
        space=SPACE,
        epoch=1,
        epoch_key=K1,
        ephemeral_secret=ephemeral,
    )
    cases: list[dict[str, Any]] = [
        {
            "name": "wrap: a deterministic envelope (fixed ephemeral secret)",
            "check": "wrap",
            "sender_seed": fixed("seed/env-sender").hex(),
            "recipient": recipient.public.hex(),
            "space": SPACE.hex(),
            "epoch": 1,
            "epoch_key": K1.hex(),
            "ephemeral_secret": ephemeral.hex(),
            "expect": {"envelope": envelope.to_bytes().hex()},
        }
    ]

    def resign(env: KeyEnvelope, by: DeviceKey, **changes: Any) -> bytes:
        unsigned = dataclasses.replace(env, sig=b"", **changes)
        return dataclasses.replace(unsigned, sig=by.sign(unsigned.signing_bytes())).to_bytes()

    forged_epoch = dataclasses.replace(envelope, epoch=2).to_bytes()
    by_other = resign(envelope, other)  # claims sender, signed by another key
    other_key_id = resign(envelope, sender, key_id=key_id(K2))
    to_other = wrap_epoch_key(
        from_key=sender,
        to=other.public,
        space=SPACE,
        epoch=1,
        epoch_key=K1,
        ephemeral_secret=ephemeral,
    )
    misaddressed = resign(to_other, sender, recipient=recipient.public)
    unsigned_map = dict(envelope.unsigned_map(), sig=envelope.sig, v=2)
    trusted = [sender.public]
    unwraps: list[tuple[str, bytes, DeviceKey, list[bytes], dict[str, Any]]] = [
        (
            "unwrap: the recipient opens it",
            envelope.to_bytes(),
            recipient,
            trusted,
            {"epoch_key": K1.hex()},
        ),
        (
            "unwrap refused: a field changed after signing",
            forged_epoch,
            recipient,
            trusted,
            {"error": "bad_signature"},
        ),
        (
            "unwrap refused: signed by a key other than its sender",
            by_other,
            recipient,
            trusted,
            {"error": "bad_signature"},
        ),
        (
            "unwrap refused: the sender is not an active device",
            envelope.to_bytes(),
            recipient,
            [other.public],
            {"error": "unknown_device"},
        ),
        (
            "unwrap refused: another device tries to open it",
            envelope.to_bytes(),
            other,
            trusted,
            {"error": "decrypt_failed"},
        ),
        (
            "unwrap refused: the box is sealed to another device",
            misaddressed,
            recipient,
            trusted,
            {"error": "decrypt_failed"},
        ),
        (
            "unwrap refused: the key inside has another key id",
            other_key_id,
            recipient,
            trusted,
            {"error": "wrong_epoch"},
        ),
        (
            "unwrap refused: version 2",
            encoding.encode(unsigned_map),
            recipient,
            trusted,
            {"error": "unsupported_version"},
        ),
        (
            "unwrap refused: not an envelope",
            encoding.encode({"v": 1}),
            recipient,
            trusted,
            {"error": "malformed"},
        ),
    ]
    seeds = {recipient.public: "env-recipient", other.public: "env-other"}
    for name, raw, opener, senders, expect in unwraps:
        cases.append(
            {
                "name": name,
                "check": "unwrap",
                "envelope": raw.hex(),
                "recipient_seed": fixed("seed/" + seeds[opener.public]).hex(),
                "trusted_senders": [s.hex() for s in senders],
                "space": SPACE.hex(),
                "expect": expect,
            }
        )
    cases.append(
        {
            "name": "unwrap refused: an envelope for another space",
            "check": "unwrap",
            "envelope": envelope.to_bytes().hex(),
            "recipient_seed": fixed("seed/env-recipient").hex(),
            "trusted_senders": [sender.public.hex()],
            "space": OTHER_SPACE.hex(),
            "expect": {"error": "wrong_space"},
        }
    )
    return document("envelope", "Key envelopes (SPEC 6.2)", cases)


def write_all(target: Path = HERE) -> list[Path]:
    """Write every non-rule vector file into ``target``; return their paths."""
    from protocol.vectors.generate_feeds import feeds_vectors, roster_vectors

    documents = {
        "keys.json": keys_vectors(),
        "padding.json": padding_vectors(),
        "entries.json": entries_vectors(),
        "feeds.json": feeds_vectors(),
        "roster.json": roster_vectors(),
        "envelopes.json": envelopes_vectors(),
    }
    written = []
    for name, content in documents.items():
        path = target / name
        path.write_text(json.dumps(content, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    for written_path in write_all():
        print(written_path.name)
