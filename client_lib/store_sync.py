"""The sync-state tables of the local store (part of :class:`client_lib.store.Store`).

What the replica and the sync engine remember about the network, besides the entries:
the highest entry of each feed the relay has shown (``relay_marks``, for rollback
detection), when each device was last heard from (``heard``), a small key/value table
for the sync engine (``sync_state``), forks found (``forks``), key envelopes in and out
(``envelopes_in``, ``envelopes_out``) and reported problems (``problems``). The schema
itself is in :mod:`client_lib.store`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING


@dataclass(frozen=True, slots=True, kw_only=True)
class RelayMark:
    """The highest entry of a feed the relay has shown this device."""

    device: bytes
    seq: int
    id: bytes
    at: int


@dataclass(frozen=True, slots=True, kw_only=True)
class HeardFrom:
    """When a device's feed last grew here, and to which seq."""

    device: bytes
    seq: int
    at: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ProblemRow:
    """One reported problem, as kept in ``problems``."""

    space: bytes
    at: int
    code: str
    detail: str
    dedupe: str
    device: bytes | None = None
    seq: int | None = None
    entry_id: bytes | None = None
    proof: bytes | None = None
    number: int = 0


class SyncTables:
    """Sync-state tables; mixed into :class:`client_lib.store.Store`."""

    _db: sqlite3.Connection

    if TYPE_CHECKING:  # provided by Store

        def transaction(self) -> AbstractContextManager[None]: ...

        def _one(self, sql: str, args: Iterable[object] = ()) -> sqlite3.Row | None: ...

        def _all(self, sql: str, args: Iterable[object] = ()) -> list[sqlite3.Row]: ...

        def _write(self, sql: str, args: Iterable[object] = ()) -> sqlite3.Cursor: ...

    # -- sync state --------------------------------------------------------------------

    def relay_marks(self, space: bytes) -> dict[bytes, RelayMark]:
        rows = self._all("SELECT device, seq, id, at FROM relay_marks WHERE space = ?", (space,))
        return {row["device"]: RelayMark(**{k: row[k] for k in row.keys()}) for row in rows}

    def set_relay_mark(self, space: bytes, mark: RelayMark) -> None:
        self._write(
            "INSERT OR REPLACE INTO relay_marks (space, device, seq, id, at)"
            " VALUES (?, ?, ?, ?, ?)",
            (space, mark.device, mark.seq, mark.id, mark.at),
        )

    def note_heard(self, space: bytes, device: bytes, *, seq: int, at: int) -> None:
        self._write(
            "INSERT INTO heard (space, device, seq, at) VALUES (?, ?, ?, ?) ON CONFLICT"
            " (space, device) DO UPDATE SET seq = max(seq, excluded.seq), at = excluded.at",
            (space, device, seq, at),
        )

    def heard(self, space: bytes) -> dict[bytes, HeardFrom]:
        rows = self._all("SELECT device, seq, at FROM heard WHERE space = ?", (space,))
        return {row["device"]: HeardFrom(**{k: row[k] for k in row.keys()}) for row in rows}

    def get_state(self, space: bytes, key: str) -> bytes | None:
        row = self._one("SELECT value FROM sync_state WHERE space = ? AND key = ?", (space, key))
        return bytes(row["value"]) if row else None

    def set_state(self, space: bytes, key: str, value: bytes) -> None:
        self._write(
            "INSERT OR REPLACE INTO sync_state (space, key, value) VALUES (?, ?, ?)",
            (space, key, value),
        )

    # -- forks and key envelopes ---------------------------------------------------------

    def record_fork(self, space: bytes, device: bytes, seq: int, proof: bytes) -> bool:
        """Keep the lowest fork seen of a feed; True when this lowers (or sets) it."""
        with self.transaction():
            row = self._one("SELECT seq FROM forks WHERE space = ? AND device = ?", (space, device))
            if row is not None and row["seq"] <= seq:
                return False
            self._db.execute(
                "INSERT OR REPLACE INTO forks (space, device, seq, proof) VALUES (?, ?, ?, ?)",
                (space, device, seq, proof),
            )
            return True

    def forks(self, space: bytes) -> dict[bytes, tuple[int, bytes]]:
        """Forked feeds: device -> (first forked seq, encoded fork proof)."""
        rows = self._all("SELECT device, seq, proof FROM forks WHERE space = ?", (space,))
        return {row["device"]: (row["seq"], bytes(row["proof"])) for row in rows}

    def keep_envelope_in(self, space: bytes, digest: bytes, data: bytes) -> None:
        self._write(
            "INSERT OR IGNORE INTO envelopes_in (space, digest, data) VALUES (?, ?, ?)",
            (space, digest, data),
        )

    def envelopes_in(self, space: bytes) -> list[tuple[bytes, bytes]]:
        rows = self._all("SELECT digest, data FROM envelopes_in WHERE space = ?", (space,))
        return [(bytes(row["digest"]), bytes(row["data"])) for row in rows]

    def drop_envelope_in(self, space: bytes, digest: bytes) -> None:
        self._write("DELETE FROM envelopes_in WHERE space = ? AND digest = ?", (space, digest))

    def add_envelope_out(self, space: bytes, recipient: bytes, epoch: int, data: bytes) -> None:
        self._write(
            "INSERT OR REPLACE INTO envelopes_out (space, recipient, epoch, data)"
            " VALUES (?, ?, ?, ?)",
            (space, recipient, epoch, data),
        )

    def envelopes_out(self, space: bytes | None = None) -> list[tuple[bytes, bytes, int, bytes]]:
        """Undelivered envelopes: (space, recipient, epoch, encoded envelope)."""
        sql = "SELECT space, recipient, epoch, data FROM envelopes_out"
        args: tuple[object, ...] = ()
        if space is not None:
            sql += " WHERE space = ?"
            args = (space,)
        rows = self._all(sql + " ORDER BY space, epoch, recipient", args)
        return [
            (bytes(r["space"]), bytes(r["recipient"]), int(r["epoch"]), bytes(r["data"]))
            for r in rows
        ]

    def drop_envelope_out(self, space: bytes, recipient: bytes, epoch: int) -> None:
        self._write(
            "DELETE FROM envelopes_out WHERE space = ? AND recipient = ? AND epoch = ?",
            (space, recipient, epoch),
        )

    # -- problems ----------------------------------------------------------------------

    def report_problem(self, problem: ProblemRow) -> bool:
        """Keep a problem; False when the same problem (same ``dedupe``) was kept before."""
        cursor = self._write(
            "INSERT OR IGNORE INTO problems (space, at, code, device, seq, entry_id, detail, proof,"
            " dedupe) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                problem.space,
                problem.at,
                problem.code,
                problem.device,
                problem.seq,
                problem.entry_id,
                problem.detail,
                problem.proof,
                problem.dedupe,
            ),
        )
        return cursor.rowcount > 0

    def problems(self, space: bytes | None = None, *, after: int = 0) -> list[ProblemRow]:
        """Reported problems in the order they were found, those numbered above ``after``."""
        sql = (
            "SELECT number, space, at, code, device, seq, entry_id, detail, proof, dedupe"
            " FROM problems WHERE number > ?"
        )
        args: list[object] = [after]
        if space is not None:
            sql += " AND space = ?"
            args.append(space)
        rows = self._all(sql + " ORDER BY number", args)
        return [ProblemRow(**{k: row[k] for k in row.keys()}) for row in rows]
