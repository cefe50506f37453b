"""Relay processes and fresh databases for the benchmarks, on loopback only.

A benchmark relay is started the way an operator starts one (``python -m server.cli
serve``) in its own process, on a free 127.0.0.1 port, with the batch limit raised to
100 entries and the rate limits raised out of the way (the benchmarks measure the
work, not the limiter). Each one gets a fresh database: a SQLite file in a temporary
directory, or a new PostgreSQL database that is dropped afterwards.

PostgreSQL is reached through ``ACCORD_BENCH_PG_DSN`` (default
``postgresql://postgres@127.0.0.1:5432/test``, the server CI uses). When it does not
answer, the PostgreSQL halves of the benchmarks are skipped and the report says so.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]

from server.migrate import upgrade
from server.store import open_database

REPO_ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN_DSN = os.environ.get("ACCORD_BENCH_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
#: Flags of every benchmark relay: batches of 100, and limits that never bite.
BENCH_RELAY_SETTINGS: dict[str, Any] = {
    "max_batch_entries": 100,
    "device_rate": 1_000_000.0,
    "device_burst": 10_000_000,
    "ip_rate": 1_000_000.0,
    "ip_burst": 10_000_000,
    "websockets_per_device": 8,
    "log_level": "warning",
}
BACKENDS = ("sqlite", "postgres")


class BenchSetupError(RuntimeError):
    """A relay or database for a benchmark could not be set up."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- databases ---------------------------------------------------------------------------


async def postgres_problem() -> str | None:
    """None when the benchmark PostgreSQL answers; else why not."""
    try:
        connection = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        return f"PostgreSQL at 127.0.0.1 did not answer ({type(exc).__name__})"
    await connection.close()
    return None


async def _pg_admin(statement: str) -> None:
    connection = await asyncpg.connect(PG_ADMIN_DSN, timeout=10)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@asynccontextmanager
async def fresh_database(backend: str, directory: Path) -> AsyncIterator[str]:
    """A new, migrated, empty relay database; yields its async SQLAlchemy URL.

    Raises:
        ValueError: ``backend`` is neither ``sqlite`` nor ``postgres``.
        asyncpg.PostgresError, OSError: PostgreSQL refused or did not answer.
    """
    if backend == "postgres":
        name = f"accord_bench_{secrets.token_hex(5)}"
        await _pg_admin(f'CREATE DATABASE "{name}"')
        base = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
        url = f"{base}/{name}"
    elif backend == "sqlite":
        directory.mkdir(parents=True, exist_ok=True)
        url = f"sqlite+aiosqlite:///{directory / f'relay-{secrets.token_hex(4)}.db'}"
    else:
        raise ValueError(f"unknown backend {backend!r}")
    try:
        db = open_database(url)
        try:
            await upgrade(db.write_engine)
        finally:
            await db.dispose()
        yield url
    finally:
        if backend == "postgres":
            await _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process, from /proc (0 when unknown)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


# -- relay processes ---------------------------------------------------------------------


@dataclass(slots=True)
class RelayProcess:
    """One relay process of a benchmark."""

    database_url: str
    log_path: Path
    port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self, settings: dict[str, Any]) -> list[str]:
        args = [sys.executable, "-m", "server.cli", "serve", "--host", "127.0.0.1"]
        args += ["--port", str(self.port), "--database-url", self.database_url]
        for name, value in settings.items():
            args += ["--" + name.replace("_", "-"), str(value)]
        return args

    def start(self, settings: dict[str, Any], timeout: float = 30.0) -> None:
        """Start the process and wait until ``/healthz`` answers.

        Raises:
            BenchSetupError: it exited or did not become healthy in time.
        """
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
        env.pop("ACCORD_DATABASE_URL", None)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.command(settings),
                cwd=REPO_ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BenchSetupError(f"the relay exited early:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=2) as answer:
                    if answer.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.05)
        self.stop()
        raise BenchSetupError(f"the relay did not become healthy:\n{self.log_tail()}")

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM, then SIGKILL if it does not stop in time."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def cpu_seconds(self) -> float:
        """CPU seconds (user + system) the process has used so far (0 when unknown)."""
        if self.process is None:
            return 0.0
        return process_cpu_seconds(self.process.pid)

    def log_tail(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")[-3000:]
        except FileNotFoundError:
            return ""


@dataclass(slots=True)
class BareFanoutProcess(RelayProcess):
    """The bare pass-through of :mod:`bench.bare_fanout`, run like a relay."""

    def command(self, settings: dict[str, Any]) -> list[str]:
        return [sys.executable, "-m", "bench.bare_fanout", "--port", str(self.port)]


@asynccontextmanager
async def bare_fanout(directory: Path) -> AsyncIterator[RelayProcess]:
    """The fan-out transport floor (no database), stopped at the end."""
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    process = BareFanoutProcess(database_url="", log_path=directory / f"bare-{port}.log", port=port)
    await asyncio.to_thread(process.start, {})
    try:
        yield process
    finally:
        await asyncio.to_thread(process.stop)


@asynccontextmanager
async def running_relays(
    database_url: str,
    directory: Path,
    *,
    count: int = 1,
    process: Callable[..., RelayProcess] = RelayProcess,
    **settings: Any,
) -> AsyncIterator[list[RelayProcess]]:
    """``count`` relay processes on one database, stopped at the end. ``process``
    makes each one (a :class:`RelayProcess` or a subclass)."""
    merged = {**BENCH_RELAY_SETTINGS, **settings}
    directory.mkdir(parents=True, exist_ok=True)
    relays: list[RelayProcess] = []
    try:
        for _ in range(count):
            port = free_port()
            relay = process(
                database_url=database_url, log_path=directory / f"relay-{port}.log", port=port
            )
            relays.append(relay)
            await asyncio.to_thread(relay.start, merged)
        yield relays
    finally:
        for relay in relays:
            await asyncio.to_thread(relay.stop)


@asynccontextmanager
async def relay_on(
    backend: str, directory: Path, *, count: int = 1, **settings: Any
) -> AsyncIterator[list[RelayProcess]]:
    """A fresh database of ``backend`` and ``count`` relay processes serving it."""
    async with fresh_database(backend, directory) as url:
        async with running_relays(url, directory, count=count, **settings) as relays:
            yield relays
