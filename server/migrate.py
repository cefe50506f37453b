"""Schema migrations: Alembic, configured in code so an installed relay needs no files.

``accord-relay migrate`` calls :func:`upgrade`. ``accord-relay serve`` calls
:func:`check_schema` first: it migrates a brand-new SQLite database by itself and
refuses every other database whose schema is not at the newest revision, naming the
command that fixes it.
"""

from __future__ import annotations

from enum import StrEnum
from importlib import resources

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine


class SchemaState(StrEnum):
    EMPTY = "empty"  # no tables at all: a new database
    CURRENT = "current"  # at the newest revision this relay knows
    BEHIND = "behind"  # an older revision, or tables without a revision
    AHEAD = "ahead"  # a revision this relay does not know (a newer relay migrated it)


class SchemaError(RuntimeError):
    """The database schema is not one this relay can serve; the message says what to run."""


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic's configuration for the relay's migrations, with no ini file needed."""
    config = Config()
    location = resources.files("server") / "migrations"
    config.set_main_option("script_location", str(location))
    config.attributes["quiet"] = True
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest revision among the shipped migrations."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:  # pragma: no cover - the package always ships revision 0001
        raise SchemaError("the relay package ships no migrations")
    return head


def _state(connection: Connection) -> SchemaState:
    tables = set(inspect(connection).get_table_names())
    if not tables:
        return SchemaState.EMPTY
    current = MigrationContext.configure(connection).get_current_revision()
    if current is None:
        return SchemaState.BEHIND
    script = ScriptDirectory.from_config(alembic_config())
    if current == script.get_current_head():
        return SchemaState.CURRENT
    known = {rev.revision for rev in script.walk_revisions()}
    return SchemaState.BEHIND if current in known else SchemaState.AHEAD


async def schema_state(engine: AsyncEngine) -> SchemaState:
    """Where the database's schema stands against this relay's migrations."""
    async with engine.connect() as connection:
        return await connection.run_sync(_state)


def _upgrade(connection: Connection, revision: str) -> None:
    command.upgrade(alembic_config(connection), revision)


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Apply the migrations up to ``revision`` in one transaction (where the database can)."""
    async with engine.begin() as connection:
        await connection.run_sync(_upgrade, revision)


async def check_schema(engine: AsyncEngine, *, may_create: bool) -> SchemaState:
    """Make sure the schema is current before serving.

    ``may_create``: an empty database is migrated here (the embedded SQLite default).

    Raises:
        SchemaError: the schema is behind, ahead, or empty when ``may_create`` is false.
    """
    state = await schema_state(engine)
    if state is SchemaState.CURRENT:
        return state
    if state is SchemaState.EMPTY and may_create:
        await upgrade(engine)
        return state
    if state is SchemaState.AHEAD:
        raise SchemaError(
            "the database was migrated by a newer relay; run a relay at least that new"
        )
    raise SchemaError(
        "the database schema is not up to date; run `accord-relay migrate` "
        "(with the same --database-url) and start the relay again"
    )
