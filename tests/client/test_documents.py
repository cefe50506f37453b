"""The CRDT wrapper: updates, malformed bytes, pending parts, snapshots."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from client_lib.documents import (
    DocumentSet,
    MalformedUpdateError,
    SharedDocument,
    VoiceDocument,
    restore_document,
    voice_name,
    voice_owner,
)
from protocol.errors import MalformedError

MEMBER = bytes(range(16))


def _edit_voice(doc: VoiceDocument, key: str, value: bytes) -> bytes:
    with doc.local_edit() as updates:
        doc.put_record(key, value)
    assert len(updates) == 1
    return updates[0]


def test_names() -> None:
    assert voice_name(MEMBER) == "voice/" + MEMBER.hex()
    assert voice_owner(voice_name(MEMBER)) == MEMBER
    assert voice_owner("shared") is None
    for bad in ("voice/", "voice/" + "A" * 32, "Shared", "voice/" + "0" * 31, "other"):
        with pytest.raises(MalformedError):
            voice_owner(bad)


def test_local_edit_update_reaches_another_copy() -> None:
    a = VoiceDocument(voice_name(MEMBER))
    update = _edit_voice(a, "k" * 64, b"\x01\x02")
    b = VoiceDocument(voice_name(MEMBER))
    b.apply_update(update)
    assert b.raw_records() == {"k" * 64: b"\x01\x02"}
    assert a.state_vector() == b.state_vector()


def test_shared_text_notes_schedule() -> None:
    a = SharedDocument("shared")
    with a.local_edit() as updates:
        a.set_plan_text("Breathe. Step away.")
        a.set_note("n1", "first note")
        a.set_schedule({"every_days": 7, "time": "19:00"})
    b = SharedDocument("shared")
    for update in updates:
        b.apply_update(update)
    with b.local_edit() as more:
        b.set_plan_text("Breathe slowly. Step away.")
    for update in more:
        a.apply_update(update)
    assert a.plan_text() == b.plan_text() == "Breathe slowly. Step away."
    assert a.notes() == {"n1": "first note"}
    assert a.schedule() == {"every_days": 7, "time": "19:00"}


def test_deletion_only_edit_produces_an_update() -> None:
    a = SharedDocument("shared")
    with a.local_edit() as first:
        a.set_plan_text("abc")
    with a.local_edit() as second:
        a.set_plan_text("")
    assert second, "a pure deletion must still produce an update"
    b = SharedDocument("shared")
    for update in first + second:
        b.apply_update(update)
    assert b.plan_text() == ""


@pytest.mark.parametrize("bad", [b"", b"\x00", b"\xff\xff\xff", b"garbage" * 10])
def test_malformed_update_is_refused_and_changes_nothing(bad: bytes) -> None:
    doc = VoiceDocument(voice_name(MEMBER))
    doc.apply_update(_edit_voice(VoiceDocument(voice_name(MEMBER)), "a" * 64, b"x"))
    before = doc.snapshot()
    with pytest.raises(MalformedUpdateError):
        doc.apply_update(bad)
    assert doc.raw_records() == {"a" * 64: b"x"}
    assert doc.snapshot() == before


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_never_crash(data: bytes) -> None:
    doc = SharedDocument("shared")
    try:
        doc.apply_update(data)
    except MalformedUpdateError:
        pass
    doc.plan_text()
    doc.notes()
    doc.schedule()
    doc.plan_steps()


def test_snapshot_keeps_pending_updates() -> None:
    a = SharedDocument("shared")
    with a.local_edit() as first:
        a.set_plan_text("hello")
    b = SharedDocument("shared")
    for update in first:
        b.apply_update(update)
    with b.local_edit() as second:
        b.set_plan_text("hello world")
    c = SharedDocument("shared")
    for update in second:  # depends on `first`, which has not arrived
        c.apply_update(update)
    assert c.plan_text() == ""
    restored = restore_document("shared", c.snapshot())
    assert isinstance(restored, SharedDocument)
    for update in first:
        restored.apply_update(update)
    assert restored.plan_text() == "hello world"


def test_wrongly_typed_values_are_skipped() -> None:
    import pycrdt  # only to build a hostile update; the library keeps pycrdt in one module

    hostile = pycrdt.Doc()
    records = hostile.get("records", type=pycrdt.Map)
    records["x" * 64] = "text, not bytes"
    records["y" * 64] = pycrdt.Text("nested")
    records["z" * 64] = b"ok"
    doc = VoiceDocument(voice_name(MEMBER))
    doc.apply_update(bytes(hostile.get_update()))
    assert doc.raw_records() == {"z" * 64: b"ok"}


def test_document_set() -> None:
    docs = DocumentSet()
    voice = docs.voice(MEMBER)
    _edit_voice(voice, "b" * 64, b"1")
    docs.shared.set_plan_text("x")
    snaps = docs.snapshots()
    again = DocumentSet()
    again.restore(snaps)
    assert again.voice(MEMBER).raw_records() == {"b" * 64: b"1"}
    assert again.shared.plan_text() == "x"
    assert set(again.voices()) == {MEMBER}


def test_a_snapshot_of_many_updates_equals_their_merge_at_once() -> None:
    """Snapshots merge updates in rounds (MERGE_FANOUT at a time); the result is the
    same bytes as merging them all at once, with pending updates kept too."""
    import pycrdt

    from client_lib.documents import MERGE_FANOUT

    writer = VoiceDocument(voice_name(MEMBER))
    updates = [_edit_voice(writer, f"k{n}", bytes([n % 256]) * 3) for n in range(MERGE_FANOUT * 5)]
    reader = VoiceDocument(voice_name(MEMBER))
    for update in updates[1:]:  # the first is missing: every other one stays pending
        reader.apply_update(update)
    snapshot = reader.snapshot()
    assert snapshot == bytes(pycrdt.merge_updates(*updates[1:]))
    restored = restore_document(voice_name(MEMBER), snapshot)
    restored.apply_update(updates[0])
    assert restored.state_vector() == writer.state_vector()
