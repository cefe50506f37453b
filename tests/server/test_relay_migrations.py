"""Migrations on SQLite and PostgreSQL, and `accord-relay` refusing a database that is behind."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from conftest import PG_ADMIN_DSN, REPO_ROOT, make_database, postgres_problem, run_sync
from sqlalchemy import text

from server.migrate import SchemaState, alembic_config, head_revision, schema_state
from server.models import Base
from server.store import open_database


def cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run ``accord-relay`` (as ``python -m server.cli``) with only ``env`` of ours set."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("ACCORD_")}
    environment.update({"PYTHONPATH": str(REPO_ROOT), **(env or {})})
    return subprocess.run(
        [sys.executable, "-m", "server.cli", *args],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


async def _state(url: str) -> SchemaState:
    db = open_database(url)
    try:
        return await schema_state(db.write_engine)
    finally:
        await db.dispose()


async def _model_differences(url: str) -> list[Any]:
    db = open_database(url)
    try:
        async with db.write_engine.connect() as connection:

            def compare(sync_connection: Any) -> list[Any]:
                context = MigrationContext.configure(sync_connection, opts={"compare_type": True})
                return list(compare_metadata(context, Base.metadata))

            return await connection.run_sync(compare)
    finally:
        await db.dispose()


def test_migrations_match_the_models(relay_db_url: str) -> None:
    assert run_sync(_state(relay_db_url)) is SchemaState.CURRENT
    assert run_sync(_model_differences(relay_db_url)) == []


def test_migrate_up_down_and_up_again(relay_backend: str, tmp_path: Path) -> None:
    url, cleanup = make_database(relay_backend, tmp_path, migrate=False)
    try:
        assert run_sync(_state(url)) is SchemaState.EMPTY
        result = cli("migrate", "--database-url", url)
        assert result.returncode == 0, result.stderr
        assert "created the schema" in result.stdout
        result = cli("migrate", "--database-url", url)
        assert result.returncode == 0 and "already up to date" in result.stdout
        assert run_sync(_state(url)) is SchemaState.CURRENT

        async def downgrade() -> None:
            db = open_database(url)
            try:
                async with db.write_engine.begin() as connection:
                    await connection.run_sync(
                        lambda sync: command.downgrade(alembic_config(sync), "base")
                    )
            finally:
                await db.dispose()

        run_sync(downgrade())
        assert run_sync(_state(url)) is SchemaState.BEHIND  # only alembic_version is left
        result = cli("migrate", "--database-url", url)
        assert result.returncode == 0, result.stderr
        assert run_sync(_state(url)) is SchemaState.CURRENT
    finally:
        cleanup()


def test_cli_refuses_a_database_that_is_behind(relay_backend: str, tmp_path: Path) -> None:
    url, cleanup = make_database(relay_backend, tmp_path, migrate=False)
    try:
        if relay_backend == "sqlite":
            # An SQLite database with tables but no revision: not new, so not migrated silently.
            async def make_old() -> None:
                db = open_database(url)
                try:
                    async with db.write_engine.begin() as connection:
                        await connection.execute(text("CREATE TABLE spaces (id BLOB)"))
                finally:
                    await db.dispose()

            run_sync(make_old())
        result = cli("serve", "--database-url", url, "--port", "1")
        assert result.returncode == 1
        assert "accord-relay migrate" in result.stderr
        assert cli("check", "--database-url", url).returncode == 1
        if relay_backend == "postgres":
            result = cli("migrate", "--database-url", url)
            assert result.returncode == 0, result.stderr
            assert "created the schema" in result.stdout
            check = cli("check", "--database-url", url)
            assert check.returncode == 0 and "schema current" in check.stdout
    finally:
        cleanup()


def test_cli_refuses_a_newer_schema(relay_backend: str, tmp_path: Path) -> None:
    url, cleanup = make_database(relay_backend, tmp_path)
    try:

        async def stamp_future() -> None:
            db = open_database(url)
            try:
                async with db.write_engine.begin() as connection:
                    await connection.execute(
                        text("UPDATE alembic_version SET version_num = '9999_future'")
                    )
            finally:
                await db.dispose()

        run_sync(stamp_future())
        assert run_sync(_state(url)) is SchemaState.AHEAD
        result = cli("serve", "--database-url", url, "--port", "1")
        assert result.returncode == 1 and "newer relay" in result.stderr
    finally:
        cleanup()


def test_cli_rejects_bad_settings(tmp_path: Path) -> None:
    result = cli("serve", "--database-url", "mysql://x@y/z")
    assert result.returncode == 2 and "not supported" in result.stderr
    result = cli("serve", "--pairing-ttl", "600")
    assert result.returncode == 2 and "pairing_ttl" in result.stderr
    result = cli("serve", env={"ACCORD_PORT": "eighty"})
    assert result.returncode == 2 and "port" in result.stderr
    result = cli("serve", "--database-url", "postgresql+asyncpg://nobody@127.0.0.1:1/none")
    assert result.returncode == 1 and "cannot reach the database" in result.stderr
    if postgres_problem() is None:
        missing = PG_ADMIN_DSN.rsplit("/", 1)[0] + "/accord_no_such_database"
        result = cli("migrate", "--database-url", missing)
        assert result.returncode == 1
        assert "cannot use the database" in result.stderr and "does not exist" in result.stderr


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def test_serve_with_no_settings_at_all(tmp_path: Path) -> None:
    """`accord-relay serve` on a fresh machine: 127.0.0.1:8787, SQLite in the data dir."""
    if not _port_free(8787):
        pytest.skip("port 8787 is in use on this machine")
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "XDG_DATA_HOME": str(tmp_path / "data")}
    for name in list(env):
        if name.startswith("ACCORD_"):
            del env[name]
    process = subprocess.Popen(
        [sys.executable, "-m", "server.cli", "serve"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen("http://127.0.0.1:8787/healthz", timeout=2) as answer:
                    assert answer.status == 200
                    break
            except OSError:
                assert process.poll() is None, process.stdout.read() if process.stdout else ""
                assert time.monotonic() < deadline, "the relay did not answer /healthz"
                time.sleep(0.1)
        assert (tmp_path / "data" / "accord-relay" / "relay.db").exists()
    finally:
        process.terminate()
        output = process.communicate(timeout=20)[0].decode()
    assert process.returncode == 0, output
    # Structured logs: every line is one JSON object.
    lines = [line for line in output.splitlines() if line.strip()]
    assert lines and all(isinstance(json.loads(line), dict) for line in lines)


def test_head_revision_is_shipped() -> None:
    assert head_revision() == "0001_initial"
