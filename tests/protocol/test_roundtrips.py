"""Round trips through every codec of the core, over generated values."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import encoding
from protocol.crypto import DeviceKey
from protocol.entry import Entry, SeenHead, decrypt, seal, seal_roster
from protocol.epochs import KeyEnvelope, unwrap_epoch_key, wrap_epoch_key
from protocol.roster import (
    AddDevice,
    AddMember,
    Found,
    NewEpoch,
    Record,
    RemoveDevice,
    RemoveMember,
    decode_record,
    encode_record,
)

b16 = st.binary(min_size=16, max_size=16)
b32 = st.binary(min_size=32, max_size=32)
b64 = st.binary(min_size=64, max_size=64)
uint = st.integers(0, 2**63 - 1)
keys = st.builds(DeviceKey, b32)

values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.binary(max_size=64)
    | st.text(max_size=32),
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(values)
def test_canonical_encoding_round_trips(value: object) -> None:
    data = encoding.encode(value)
    assert encoding.decode(data) == value
    assert encoding.encode(encoding.decode(data)) == data


seen_heads = st.lists(
    st.tuples(b32, st.integers(1, 2**40), b32), max_size=4, unique_by=lambda t: t[0]
)


@settings(max_examples=40, deadline=None)
@given(
    key=keys,
    space=b16,
    seq=st.integers(1, 2**40),
    epoch=st.integers(0, 2**20),
    epoch_key=b32,
    plaintext=st.binary(max_size=2000),
    heads=seen_heads,
    nonce=st.binary(min_size=24, max_size=24),
)
def test_entries_round_trip(
    key: DeviceKey,
    space: bytes,
    seq: int,
    epoch: int,
    epoch_key: bytes,
    plaintext: bytes,
    heads: list[tuple[bytes, int, bytes]],
    nonce: bytes,
) -> None:
    seen = tuple(SeenHead(device=d, seq=s, id=i) for d, s, i in sorted(heads) if d != key.public)
    prev = None if seq == 1 else bytes(32)
    entry = seal(
        device_key=key,
        space=space,
        seq=seq,
        prev=prev,
        epoch=epoch,
        epoch_key=epoch_key,
        plaintext=plaintext,
        seen=seen,
        nonce=nonce,
    )
    again = Entry.from_bytes(entry.to_bytes())
    assert again == entry and again.id == entry.id
    assert decrypt(again, epoch_key) == plaintext
    roster_entry = seal_roster(
        device_key=key,
        space=space,
        seq=seq,
        prev=prev,
        epoch=epoch,
        record=plaintext[:4096],
        seen=seen,
    )
    assert Entry.from_bytes(roster_entry.to_bytes()) == roster_entry


records: st.SearchStrategy[Record] = st.one_of(
    st.builds(Found, member=b16, device=b32),
    st.builds(AddDevice, member=b16, device=b32, proof=b64),
    st.builds(AddMember, member=b16, device=b32, proof=b64),
    st.builds(RemoveDevice, device=b32, last_seq=uint),
    st.builds(
        RemoveMember,
        member=b16,
        last_seqs=st.dictionaries(b32, uint, max_size=8).map(lambda d: tuple(sorted(d.items()))),
    ),
    st.builds(NewEpoch, epoch=st.integers(1, 2**63 - 1), key_id=st.binary(min_size=8, max_size=8)),
)


@settings(max_examples=200, deadline=None)
@given(records)
def test_roster_records_round_trip(record: Record) -> None:
    data = encode_record(record)
    assert decode_record(data) == record
    assert encode_record(decode_record(data)) == data


@settings(max_examples=30, deadline=None)
@given(sender=keys, recipient=keys, space=b16, epoch=uint, epoch_key=b32)
def test_envelopes_round_trip(
    sender: DeviceKey, recipient: DeviceKey, space: bytes, epoch: int, epoch_key: bytes
) -> None:
    envelope = wrap_epoch_key(
        from_key=sender, to=recipient.public, space=space, epoch=epoch, epoch_key=epoch_key
    )
    again = KeyEnvelope.from_bytes(envelope.to_bytes())
    assert again == envelope
    opened = unwrap_epoch_key(
        again, device_key=recipient, trusted_senders={sender.public}, space=space
    )
    assert opened == epoch_key
