"""The local store: schema, entries, outbox, snapshots, problems."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from client_lib.errors import SchemaVersionError, StoreCorruptError
from client_lib.store import ProblemRow, RelayMark, Store, StoredEntry, WaitingEntry

SPACE = b"s" * 16
DEVICE = b"d" * 32
KEY = b"k" * 32


def _entry(seq: int) -> StoredEntry:
    return StoredEntry(
        id=bytes([seq]) * 32,
        space=SPACE,
        device=DEVICE,
        seq=seq,
        type="data",
        epoch=0,
        rank=seq,
        content="applied",
        raw=b"raw%d" % seq,
        received_at=1000 + seq,
    )


def test_entries_heads_outbox(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "s.db", snapshot_key=KEY)
    with store.transaction():
        for seq in (1, 2, 3):
            store.insert_entry(_entry(seq))
            store.add_outbox(_entry(seq).id, SPACE, at=seq)
    head = store.heads(SPACE)[DEVICE]
    assert (head.seq, head.id) == (3, _entry(3).id)
    assert [e.seq for e in store.pending_outbox(SPACE)] == [1, 2, 3]
    assert store.mark_acknowledged([_entry(1).id, _entry(2).id, b"x" * 32]) == 2
    assert [e.seq for e in store.pending_outbox()] == [3]
    with pytest.raises(sqlite3.IntegrityError):
        store.insert_entry(_entry(2))


def test_transaction_rolls_back_on_error(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "s.db", snapshot_key=KEY)
    with pytest.raises(RuntimeError), store.transaction():
        store.insert_entry(_entry(1))
        store.add_outbox(_entry(1).id, SPACE, at=1)
        raise RuntimeError("crash in the middle")
    assert store.entry(_entry(1).id) is None
    assert store.pending_outbox() == []


def test_snapshots_are_encrypted_and_bound(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = Store.open(path, snapshot_key=KEY)
    store.save_snapshots(SPACE, {"shared": b"plain state of the plan"}, upto=7, at=1)
    assert store.load_snapshots(SPACE) == (7, {"shared": b"plain state of the plan"})
    store.close()
    assert b"plain state of the plan" not in path.read_bytes()
    other = Store.open(path, snapshot_key=b"o" * 32)
    with pytest.raises(StoreCorruptError):
        other.load_snapshots(SPACE)


def test_waiting_and_problems_are_kept_once(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "s.db", snapshot_key=KEY)
    waiting = WaitingEntry(
        id=b"w" * 32, space=SPACE, device=DEVICE, seq=5, reason="gap", raw=b"r", received_at=1
    )
    assert store.put_waiting(waiting)
    assert not store.put_waiting(waiting)
    assert store.waiting(SPACE) == [waiting]
    problem = ProblemRow(space=SPACE, at=1, code="fork", detail="two entries", dedupe="fork:x")
    assert store.report_problem(problem)
    assert not store.report_problem(problem)
    assert [p.code for p in store.problems(SPACE)] == ["fork"]


def test_sync_state(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "s.db", snapshot_key=KEY)
    store.set_relay_mark(SPACE, RelayMark(device=DEVICE, seq=4, id=b"i" * 32, at=9))
    assert store.relay_marks(SPACE)[DEVICE].seq == 4
    store.note_heard(SPACE, DEVICE, seq=3, at=10)
    store.note_heard(SPACE, DEVICE, seq=2, at=11)
    assert store.heard(SPACE)[DEVICE].seq == 3
    store.set_state(SPACE, "cursor", b"abc")
    assert store.get_state(SPACE, "cursor") == b"abc"


def test_schema_version_is_checked(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    Store.open(path, snapshot_key=KEY).close()
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version=99")
    db.close()
    with pytest.raises(SchemaVersionError):
        Store.open(path, snapshot_key=KEY)


def test_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    path.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(StoreCorruptError):
        Store.open(path, snapshot_key=KEY)
