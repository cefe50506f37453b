"""Database access: engines, sessions and the small differences between SQLite and PostgreSQL.

* PostgreSQL (asyncpg): one engine. Appends lock their space's row, so the writers of
  one space queue up while different spaces write in parallel.
* SQLite (aiosqlite, WAL): a *write* engine with a single connection whose transactions
  start with ``BEGIN IMMEDIATE`` (writers queue on the pool instead of failing with
  "database is locked"), and a *read* engine whose transactions see a snapshot.
  ``synchronous=FULL``: an acknowledged entry survives a crash of the process and of
  the machine.

Every session is opened for one request or one task and never shared
(``expire_on_commit=False``, no lazy loads: the code reads only what it selected).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry

SQLITE_BUSY_TIMEOUT_MS = 15000


def now() -> int:
    """The current time in whole seconds since the Unix epoch (the relay's clock)."""
    return int(time.time())


def _sqlite_on_connect(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
    # Let SQLAlchemy's "begin" event emit BEGIN itself (pysqlite's own transaction
    # handling would delay it), then set the pragmas every connection needs.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.close()


def _make_sqlite_engine(url: str, *, immediate: bool) -> AsyncEngine:
    options: dict[str, Any] = {}
    if immediate:
        options.update(pool_size=1, max_overflow=0, pool_timeout=60)
    engine = create_async_engine(url, **options)
    event.listen(engine.sync_engine, "connect", _sqlite_on_connect)
    begin_sql = "BEGIN IMMEDIATE" if immediate else "BEGIN"

    def _begin(connection: Any) -> None:
        connection.exec_driver_sql(begin_sql)

    event.listen(engine.sync_engine, "begin", _begin)
    return engine


@dataclass(slots=True)
class Database:
    """The relay's database: a session factory for reads and one for writes."""

    url: str
    read_engine: AsyncEngine
    write_engine: AsyncEngine
    read_sessions: async_sessionmaker[AsyncSession]
    write_sessions: async_sessionmaker[AsyncSession]

    @property
    def is_postgres(self) -> bool:
        return self.write_engine.dialect.name == "postgresql"

    @property
    def is_sqlite(self) -> bool:
        return self.write_engine.dialect.name == "sqlite"

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncSession]:
        """A session in a transaction for reads only (rolled back at the end)."""
        async with self.read_sessions() as session, session.begin():
            yield session

    @asynccontextmanager
    async def writing(self) -> AsyncIterator[AsyncSession]:
        """A session in a write transaction, committed when the block ends normally."""
        async with self.write_sessions() as session, session.begin():
            yield session

    async def dispose(self) -> None:
        await self.write_engine.dispose()
        if self.read_engine is not self.write_engine:
            await self.read_engine.dispose()


def open_database(url: str) -> Database:
    """Engines and session factories for an async SQLAlchemy URL (nothing is connected yet)."""
    backend = make_url(url).get_backend_name()
    if backend == "sqlite":
        write_engine = _make_sqlite_engine(url, immediate=True)
        read_engine = _make_sqlite_engine(url, immediate=False)
    else:
        write_engine = create_async_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)
        read_engine = write_engine
    return Database(
        url=url,
        read_engine=read_engine,
        write_engine=write_engine,
        read_sessions=async_sessionmaker(read_engine, expire_on_commit=False),
        write_sessions=async_sessionmaker(write_engine, expire_on_commit=False),
    )


def is_database_unavailable(exc: BaseException) -> bool:
    """True when ``exc`` means the database cannot be reached or is overloaded right now."""
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(
        exc,
        sa_exc.OperationalError
        | sa_exc.InterfaceError
        | sa_exc.TimeoutError
        | ConnectionError
        | OSError
        | TimeoutError,
    )
