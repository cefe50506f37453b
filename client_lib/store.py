"""The local store: one SQLite database per profile (stdlib ``sqlite3``, WAL).

Theory of operation:

* ``entries`` holds every verified entry that joined its feed's chain: raw bytes, id,
  space, device, seq, type, epoch, causal rank, and whether its content was applied
  or refused (a signed link whose content broke a rule still keeps the chain whole).
  ``UNIQUE (space, device, seq)`` makes a stored fork impossible.
* ``waiting`` holds entries that are authentic as far as can be told but cannot be
  placed yet: a gap before them, an author not in the roster yet, an epoch key not
  here yet. They are kept, never lost, until what they wait for arrives.
* ``outbox`` names this device's own entries the relay has not acknowledged.
* ``snapshots`` holds each document's state, encrypted with the keystore's store key
  (XChaCha20-Poly1305, the space and document name as associated data), with the
  ``local_order`` of the last entry it includes, so a restart replays only newer entries.
* ``relay_marks``, ``heard`` and ``sync_state`` are the sync state: the highest
  (seq, id) the relay has shown for each feed (to detect a rollback), when each
  device was last heard from, and a small key/value table the sync engine may use.
* ``forks`` keeps, per feed, the first seq at which two signed entries were seen and
  the encoded fork proof; ``envelopes_in`` holds key envelopes that cannot be opened
  yet (their epoch is not announced here yet), ``envelopes_out`` the envelopes this
  device made that the relay has not taken yet.
* ``problems`` keeps every reported problem (a typed event) once.

Durability: ``journal_mode=WAL`` and ``synchronous=FULL``, so a committed transaction
survives a crash or power loss. Every public write runs in one transaction; callers
that must make several writes atomically wrap them in :meth:`Store.transaction`.
The schema version is SQLite's ``user_version``; a database from another version is
refused with :class:`SchemaVersionError` rather than guessed at.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import nacl.bindings as sodium
import nacl.exceptions

from client_lib.errors import SchemaVersionError, StoreCorruptError
from client_lib.store_sync import HeardFrom, ProblemRow, RelayMark, SyncTables
from protocol.crypto import KEY_BYTES, NONCE_BYTES, random_bytes

__all__ = [
    "SCHEMA_VERSION",
    "FeedHead",
    "HeardFrom",
    "ProblemRow",
    "RelayMark",
    "Store",
    "StoredEntry",
    "WaitingEntry",
]

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE spaces (
    space BLOB PRIMARY KEY,
    created_at INTEGER NOT NULL
);
CREATE TABLE entries (
    local_order INTEGER PRIMARY KEY AUTOINCREMENT,
    id BLOB NOT NULL UNIQUE,
    space BLOB NOT NULL,
    device BLOB NOT NULL,
    seq INTEGER NOT NULL,
    type TEXT NOT NULL,
    epoch INTEGER NOT NULL,
    rank INTEGER NOT NULL,
    content TEXT NOT NULL,
    raw BLOB NOT NULL,
    received_at INTEGER NOT NULL,
    UNIQUE (space, device, seq)
);
CREATE INDEX entries_by_content ON entries (space, content);
CREATE TABLE feed_heads (
    space BLOB NOT NULL,
    device BLOB NOT NULL,
    seq INTEGER NOT NULL,
    id BLOB NOT NULL,
    epoch INTEGER NOT NULL,
    rank INTEGER NOT NULL,
    PRIMARY KEY (space, device)
);
CREATE INDEX entries_by_space ON entries (space, local_order);
CREATE TABLE waiting (
    id BLOB PRIMARY KEY,
    space BLOB NOT NULL,
    device BLOB NOT NULL,
    seq INTEGER NOT NULL,
    reason TEXT NOT NULL,
    raw BLOB NOT NULL,
    received_at INTEGER NOT NULL
);
CREATE INDEX waiting_by_feed ON waiting (space, device, seq);
CREATE TABLE outbox (
    id BLOB PRIMARY KEY REFERENCES entries (id),
    space BLOB NOT NULL,
    queued_at INTEGER NOT NULL
);
CREATE TABLE snapshots (
    space BLOB NOT NULL,
    doc TEXT NOT NULL,
    state BLOB NOT NULL,
    PRIMARY KEY (space, doc)
);
CREATE TABLE snapshot_marks (
    space BLOB PRIMARY KEY,
    upto INTEGER NOT NULL,
    taken_at INTEGER NOT NULL
);
CREATE TABLE relay_marks (
    space BLOB NOT NULL,
    device BLOB NOT NULL,
    seq INTEGER NOT NULL,
    id BLOB NOT NULL,
    at INTEGER NOT NULL,
    PRIMARY KEY (space, device)
);
CREATE TABLE heard (
    space BLOB NOT NULL,
    device BLOB NOT NULL,
    seq INTEGER NOT NULL,
    at INTEGER NOT NULL,
    PRIMARY KEY (space, device)
);
CREATE TABLE sync_state (
    space BLOB NOT NULL,
    key TEXT NOT NULL,
    value BLOB NOT NULL,
    PRIMARY KEY (space, key)
);
CREATE TABLE forks (
    space BLOB NOT NULL,
    device BLOB NOT NULL,
    seq INTEGER NOT NULL,
    proof BLOB NOT NULL,
    PRIMARY KEY (space, device)
);
CREATE TABLE envelopes_in (
    space BLOB NOT NULL,
    digest BLOB NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (space, digest)
);
CREATE TABLE envelopes_out (
    space BLOB NOT NULL,
    recipient BLOB NOT NULL,
    epoch INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (space, recipient, epoch)
);
CREATE TABLE problems (
    number INTEGER PRIMARY KEY AUTOINCREMENT,
    space BLOB NOT NULL,
    at INTEGER NOT NULL,
    code TEXT NOT NULL,
    device BLOB,
    seq INTEGER,
    entry_id BLOB,
    detail TEXT NOT NULL,
    proof BLOB,
    dedupe TEXT NOT NULL,
    UNIQUE (space, dedupe)
);
"""


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredEntry:
    """One row of ``entries``: a verified entry in its feed's chain."""

    id: bytes
    space: bytes
    device: bytes
    seq: int
    type: str
    epoch: int
    rank: int
    content: str  # ContentState value: "applied", "refused", "held" or "roster"
    raw: bytes
    received_at: int
    local_order: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class WaitingEntry:
    """One row of ``waiting``: an entry kept until what it waits for arrives."""

    id: bytes
    space: bytes
    device: bytes
    seq: int
    reason: str
    raw: bytes
    received_at: int


@dataclass(frozen=True, slots=True, kw_only=True)
class EntryRef:
    """What placing a later entry needs of a stored one."""

    id: bytes
    rank: int
    epoch: int


@dataclass(frozen=True, slots=True, kw_only=True)
class FeedHead:
    """The last entry of one feed that this device holds in its chain."""

    device: bytes
    seq: int
    id: bytes
    epoch: int
    rank: int


_SELECT_ENTRIES = (
    "SELECT id, space, device, seq, type, epoch, rank, content, raw, received_at, local_order"
    " FROM entries WHERE "
)


def _entry(row: sqlite3.Row) -> StoredEntry:
    return StoredEntry(**{key: row[key] for key in row.keys()})


class Store(SyncTables):
    """The local database of one profile. Thread-safe: calls are serialized."""

    def __init__(self, connection: sqlite3.Connection, snapshot_key: bytes) -> None:
        self._db = connection
        self._snapshot_key = snapshot_key
        self._lock = threading.RLock()
        self._depth = 0

    @classmethod
    def open(cls, path: Path, *, snapshot_key: bytes) -> Store:
        """Open (creating if needed) the store at ``path``.

        Raises:
            ValueError: ``snapshot_key`` is not a 32-byte key.
            SchemaVersionError: the database was written by another schema version.
            StoreCorruptError: the file is not a readable SQLite database.
        """
        if len(snapshot_key) != KEY_BYTES:
            raise ValueError(f"a snapshot key is {KEY_BYTES} bytes")
        try:
            db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA foreign_keys=ON")
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version == 0:
                tables = db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
                if tables:
                    raise SchemaVersionError("the local database has no schema version")
                db.execute("BEGIN IMMEDIATE")
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
                db.execute("COMMIT")
            elif version != SCHEMA_VERSION:
                raise SchemaVersionError(
                    f"the local database has schema version {version}; "
                    f"this version of Accord reads {SCHEMA_VERSION}"
                )
        except sqlite3.DatabaseError as exc:
            raise StoreCorruptError(f"the local database cannot be read: {exc}") from None
        return cls(db, snapshot_key)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Run the block as one transaction; nested uses join the outer one."""
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            self._db.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield
            except BaseException:
                self._depth = 0
                self._db.execute("ROLLBACK")
                raise
            self._depth = 0
            self._db.execute("COMMIT")

    def _one(self, sql: str, args: Iterable[object] = ()) -> sqlite3.Row | None:
        with self._lock:
            row: sqlite3.Row | None = self._db.execute(sql, tuple(args)).fetchone()
            return row

    def _all(self, sql: str, args: Iterable[object] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return list(self._db.execute(sql, tuple(args)).fetchall())

    def _select_entries(self, condition: str, args: Iterable[object]) -> list[StoredEntry]:
        """Entries matching ``condition`` (a constant SQL fragment with ``?`` parameters)."""
        sql = _SELECT_ENTRIES + condition
        return [_entry(row) for row in self._all(sql, args)]

    def _write(self, sql: str, args: Iterable[object] = ()) -> sqlite3.Cursor:
        with self.transaction():
            return self._db.execute(sql, tuple(args))

    # -- spaces ------------------------------------------------------------------------

    def add_space(self, space: bytes, *, at: int) -> None:
        self._write("INSERT OR IGNORE INTO spaces (space, created_at) VALUES (?, ?)", (space, at))

    def spaces(self) -> list[bytes]:
        return [row["space"] for row in self._all("SELECT space FROM spaces ORDER BY space")]

    # -- entries -----------------------------------------------------------------------

    def insert_entry(self, entry: StoredEntry) -> int:
        """Add a verified entry to its feed; returns its ``local_order``.

        Raises:
            sqlite3.IntegrityError: the id or the (space, device, seq) is already stored.
        """
        with self.transaction():
            cursor = self._db.execute(
                "INSERT INTO entries (id, space, device, seq, type, epoch, rank, content, raw,"
                " received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    entry.id,
                    entry.space,
                    entry.device,
                    entry.seq,
                    entry.type,
                    entry.epoch,
                    entry.rank,
                    entry.content,
                    entry.raw,
                    entry.received_at,
                ),
            )
            self._db.execute(
                "INSERT INTO feed_heads (space, device, seq, id, epoch, rank)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (space, device) DO UPDATE SET"
                " seq = excluded.seq, id = excluded.id, epoch = excluded.epoch,"
                " rank = excluded.rank WHERE excluded.seq > feed_heads.seq",
                (entry.space, entry.device, entry.seq, entry.id, entry.epoch, entry.rank),
            )
        return int(cursor.lastrowid or 0)

    def entry(self, entry_id: bytes) -> StoredEntry | None:
        found = self._select_entries("id = ?", (entry_id,))
        return found[0] if found else None

    def has_entry(self, entry_id: bytes) -> bool:
        """Whether an entry with this id is stored (without reading it)."""
        return self._one("SELECT 1 FROM entries WHERE id = ?", (entry_id,)) is not None

    def ref_at(self, space: bytes, device: bytes, seq: int) -> EntryRef | None:
        """The id, rank and epoch of the entry stored at (device, seq), without its bytes."""
        row = self._one(
            "SELECT id, rank, epoch FROM entries WHERE space = ? AND device = ? AND seq = ?",
            (space, device, seq),
        )
        return EntryRef(id=row["id"], rank=row["rank"], epoch=row["epoch"]) if row else None

    def entries(
        self, space: bytes, *, after: int = 0, type: str | None = None
    ) -> list[StoredEntry]:
        """The entries of a space in local order, those with ``local_order > after``."""
        if type is None:
            return self._select_entries(
                "space = ? AND local_order > ? ORDER BY local_order", (space, after)
            )
        return self._select_entries(
            "space = ? AND local_order > ? AND type = ? ORDER BY local_order", (space, after, type)
        )

    def feed_entries(self, space: bytes, device: bytes, *, after_seq: int = 0) -> list[StoredEntry]:
        """The entries of one feed with ``seq > after_seq``, in feed order."""
        return self._select_entries(
            "space = ? AND device = ? AND seq > ? ORDER BY seq", (space, device, after_seq)
        )

    def heads(self, space: bytes) -> dict[bytes, FeedHead]:
        """The last stored entry of every feed of a space (chains have no holes)."""
        rows = self._all(
            "SELECT device, seq, id, epoch, rank FROM feed_heads WHERE space = ?", (space,)
        )
        return {row["device"]: FeedHead(**{k: row[k] for k in row.keys()}) for row in rows}

    def feed_head(self, space: bytes, device: bytes) -> FeedHead | None:
        """The last stored entry of one feed, or None when none is held."""
        row = self._one(
            "SELECT device, seq, id, epoch, rank FROM feed_heads WHERE space = ? AND device = ?",
            (space, device),
        )
        return FeedHead(**{k: row[k] for k in row.keys()}) if row else None

    def set_content(self, entry_id: bytes, content: str) -> None:
        """Record what became of an entry's content (a ContentState value)."""
        self._write("UPDATE entries SET content = ? WHERE id = ?", (content, entry_id))

    def last_order(self, space: bytes) -> int:
        row = self._one("SELECT max(local_order) FROM entries WHERE space = ?", (space,))
        return int(row[0] or 0) if row else 0

    # -- waiting -----------------------------------------------------------------------

    def put_waiting(self, entry: WaitingEntry) -> bool:
        """Keep an entry that cannot be placed yet; False when it was already kept."""
        cursor = self._write(
            "INSERT OR IGNORE INTO waiting (id, space, device, seq, reason, raw, received_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                entry.id,
                entry.space,
                entry.device,
                entry.seq,
                entry.reason,
                entry.raw,
                entry.received_at,
            ),
        )
        return cursor.rowcount > 0

    def is_waiting(self, entry_id: bytes) -> bool:
        return self._one("SELECT 1 FROM waiting WHERE id = ?", (entry_id,)) is not None

    def waiting(self, space: bytes) -> list[WaitingEntry]:
        rows = self._all(
            "SELECT id, space, device, seq, reason, raw, received_at FROM waiting"
            " WHERE space = ? ORDER BY device, seq, received_at",
            (space,),
        )
        return [WaitingEntry(**{k: row[k] for k in row.keys()}) for row in rows]

    def waiting_at(self, space: bytes, device: bytes, seq: int) -> list[WaitingEntry]:
        """Waiting entries at one (device, seq): more than one is a fork."""
        rows = self._all(
            "SELECT id, space, device, seq, reason, raw, received_at FROM waiting"
            " WHERE space = ? AND device = ? AND seq = ?",
            (space, device, seq),
        )
        return [WaitingEntry(**{k: row[k] for k in row.keys()}) for row in rows]

    def remove_waiting(self, entry_id: bytes) -> None:
        self._write("DELETE FROM waiting WHERE id = ?", (entry_id,))

    # -- outbox ------------------------------------------------------------------------

    def add_outbox(self, entry_id: bytes, space: bytes, *, at: int) -> None:
        self._write(
            "INSERT OR IGNORE INTO outbox (id, space, queued_at) VALUES (?, ?, ?)",
            (entry_id, space, at),
        )

    def pending_outbox(self, space: bytes | None = None) -> list[StoredEntry]:
        """Own entries not yet acknowledged, oldest first (feed order)."""
        sql = (
            "SELECT e.id, e.space, e.device, e.seq, e.type, e.epoch, e.rank, e.content, e.raw,"
            " e.received_at, e.local_order FROM outbox AS o JOIN entries AS e ON e.id = o.id"
        )
        args: tuple[object, ...] = ()
        if space is not None:
            sql += " WHERE o.space = ?"
            args = (space,)
        return [_entry(row) for row in self._all(sql + " ORDER BY e.local_order", args)]

    def mark_acknowledged(self, entry_ids: Iterable[bytes]) -> int:
        """Drop acknowledged entries from the outbox; returns how many were there."""
        removed = 0
        with self.transaction():
            for entry_id in entry_ids:
                removed += self._db.execute("DELETE FROM outbox WHERE id = ?", (entry_id,)).rowcount
        return removed

    # -- snapshots ---------------------------------------------------------------------

    def _seal(self, space: bytes, doc: str, state: bytes) -> bytes:
        nonce = random_bytes(NONCE_BYTES)
        aad = space + doc.encode("utf-8")
        return nonce + bytes(
            sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(state, aad, nonce, self._snapshot_key)
        )

    def _unseal(self, space: bytes, doc: str, sealed: bytes) -> bytes:
        aad = space + doc.encode("utf-8")
        try:
            return bytes(
                sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(
                    sealed[NONCE_BYTES:], aad, sealed[:NONCE_BYTES], self._snapshot_key
                )
            )
        except (nacl.exceptions.CryptoError, ValueError):
            raise StoreCorruptError("a document snapshot does not decrypt") from None

    def save_snapshots(self, space: bytes, states: dict[str, bytes], *, upto: int, at: int) -> None:
        """Replace the snapshots of a space's documents, as of ``local_order`` ``upto``."""
        with self.transaction():
            self._db.execute("DELETE FROM snapshots WHERE space = ?", (space,))
            for doc, state in sorted(states.items()):
                self._db.execute(
                    "INSERT INTO snapshots (space, doc, state) VALUES (?, ?, ?)",
                    (space, doc, self._seal(space, doc, state)),
                )
            self._db.execute(
                "INSERT OR REPLACE INTO snapshot_marks (space, upto, taken_at) VALUES (?, ?, ?)",
                (space, upto, at),
            )

    def load_snapshots(self, space: bytes) -> tuple[int, dict[str, bytes]]:
        """``(upto, {doc: state})``; ``(0, {})`` when no snapshot was taken.

        Raises:
            StoreCorruptError: a snapshot does not decrypt with this profile's key.
        """
        mark = self._one("SELECT upto FROM snapshot_marks WHERE space = ?", (space,))
        if mark is None:
            return 0, {}
        rows = self._all("SELECT doc, state FROM snapshots WHERE space = ?", (space,))
        return int(mark["upto"]), {
            row["doc"]: self._unseal(space, row["doc"], row["state"]) for row in rows
        }
