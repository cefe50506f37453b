"""Shared fixtures: real relays on loopback ports, on SQLite and on PostgreSQL.

Fixture API (use these from any test directory):

``relay_db_url``
    A fresh, migrated, empty relay database, parametrized ``sqlite`` (a temp file) and
    ``postgres`` (a new database on 127.0.0.1:5432, dropped after the test). Yields an
    async SQLAlchemy URL string.

``relay``
    A relay *process* of its own (``python -m server.cli serve``) on a free loopback
    port, on a fresh ``relay_db_url``. Yields a :class:`RelayProcess`: ``.url``,
    ``.ws_url(space_b64)``, ``.database_url``, ``.kill()`` (SIGKILL), ``.stop()``
    (SIGTERM, graceful), ``.start()``, ``.restart()``, ``.logs()``.

``shared_relay``
    One relay process per backend for the whole session, for tests that only need
    isolation by space (every test makes its own random space ids). Much faster than
    ``relay``; do not kill it and do not assert on its global metrics.
    ``relay_pool.get("sqlite" | "postgres")`` gives the same relays without the
    parametrization.

``start_relay``
    A factory: ``start_relay(database_url, **settings)`` starts another relay process
    (for example a second one on the same PostgreSQL database) and stops it at the end.
    ``settings`` are ``serve`` flags without dashes: ``start_relay(url, device_rate=1)``.

Rate limits are set very high in test relays unless a test passes its own.

PostgreSQL: when it is not reachable the ``postgres`` cases are skipped, unless
``ACCORD_TEST_POSTGRES=require`` (CI sets it) makes that an error. Start it with
``pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start``.
Select one backend with ``-m postgres`` or ``-m "not postgres"``.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN_DSN = os.environ.get("ACCORD_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
#: Settings of every test relay unless a test overrides them.
TEST_RELAY_SETTINGS: dict[str, Any] = {
    "device_rate": 10_000.0,
    "device_burst": 100_000,
    "ip_rate": 10_000.0,
    "ip_burst": 100_000,
    "pairing_rate": 1_000.0,
    "pairing_burst": 10_000,
    "websockets_per_device": 64,
}
BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]

T = TypeVar("T")


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion on a private event loop in another thread
    (safe from sync fixtures, whether or not a loop runs in this thread)."""
    result: list[T] = []
    error: list[BaseException] = []

    def target() -> None:
        try:
            result.append(asyncio.run(coro))
        except BaseException as exc:
            error.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result[0]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- databases ------------------------------------------------------------------------

_pg_state: dict[str, str | None] = {}


def postgres_problem() -> str | None:
    """None when the test PostgreSQL answers; else why not (checked once per session)."""
    if "problem" not in _pg_state:

        async def probe() -> None:
            import asyncpg

            connection = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
            await connection.close()

        try:
            run_sync(probe())
            _pg_state["problem"] = None
        except Exception as exc:
            _pg_state["problem"] = f"PostgreSQL at {PG_ADMIN_DSN} is not reachable: {exc!r}"
    return _pg_state["problem"]


def _need_postgres() -> None:
    problem = postgres_problem()
    if problem is None:
        return
    if os.environ.get("ACCORD_TEST_POSTGRES") == "require":
        pytest.fail(problem)
    pytest.skip(problem)


async def _pg_admin(statement: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(PG_ADMIN_DSN, timeout=10)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def create_postgres_database() -> str:
    """A new empty database on the test server; returns its async URL."""
    name = f"accord_t_{secrets.token_hex(6)}"
    run_sync(_pg_admin(f'CREATE DATABASE "{name}"'))
    base = PG_ADMIN_DSN.rsplit("/", 1)[0]
    return f"{base.replace('postgresql://', 'postgresql+asyncpg://', 1)}/{name}"


def drop_postgres_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    run_sync(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def migrate_database(url: str) -> None:
    """Apply the relay's migrations to ``url`` (in this process)."""
    from server.migrate import upgrade
    from server.store import open_database

    async def go() -> None:
        db = open_database(url)
        try:
            await upgrade(db.write_engine)
        finally:
            await db.dispose()

    run_sync(go())


def make_database(
    backend: str, directory: Path, *, migrate: bool = True
) -> tuple[str, Callable[[], None]]:
    """A fresh database for ``backend``; returns its URL and a function that removes it."""
    if backend == "postgres":
        _need_postgres()
        url = create_postgres_database()
        cleanup = lambda: drop_postgres_database(url)  # noqa: E731
    else:
        directory.mkdir(parents=True, exist_ok=True)
        url = f"sqlite+aiosqlite:///{directory / f'relay-{secrets.token_hex(4)}.db'}"
        cleanup = lambda: None  # noqa: E731
    if migrate:
        try:
            migrate_database(url)
        except BaseException:
            cleanup()
            raise
    return url, cleanup


@pytest.fixture(params=BACKENDS)
def relay_backend(request: pytest.FixtureRequest) -> str:
    """``sqlite`` or ``postgres``: the backend of this test case."""
    return str(request.param)


@pytest.fixture
def relay_db_url(relay_backend: str, tmp_path: Path) -> Iterator[str]:
    """A fresh, migrated relay database URL for this test (see the module docstring)."""
    url, cleanup = make_database(relay_backend, tmp_path / "db")
    try:
        yield url
    finally:
        cleanup()


# -- relay processes --------------------------------------------------------------------


class RelayProcess:
    """A relay started as its own process, the way an operator runs it."""

    def __init__(self, database_url: str, log_dir: Path, **settings: Any) -> None:
        self.database_url = database_url
        self.settings = {**TEST_RELAY_SETTINGS, **settings}
        self.port = int(self.settings.pop("port", 0)) or free_port()
        self.host = "127.0.0.1"
        self.log_path = log_dir / f"relay-{self.port}-{secrets.token_hex(3)}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def ws_url(self, space_b64: str) -> str:
        return f"ws://{self.host}:{self.port}/v1/spaces/{space_b64}/ws"

    @property
    def pid(self) -> int:
        if self.process is None:
            raise RuntimeError("the relay is not running")
        return self.process.pid

    def command(self) -> list[str]:
        args = [sys.executable, "-m", "server.cli", "serve", "--host", self.host]
        args += ["--port", str(self.port), "--database-url", self.database_url]
        for name, value in self.settings.items():
            flag = "--" + name.replace("_", "-")
            for item in value if isinstance(value, list | tuple) else [value]:
                args += [flag, str(item)]
        return args

    def start(self, timeout: float = 30.0) -> None:
        """Start the process and wait until ``/healthz`` answers 200."""
        if self.process is not None and self.process.poll() is None:
            raise RuntimeError("the relay is already running")
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
        env.pop("ACCORD_DATABASE_URL", None)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.command(), cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the relay exited early:\n{self.logs()[-4000:]}")
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=2) as answer:
                    if answer.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                pass
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"the relay did not become healthy:\n{self.logs()[-4000:]}")

    def kill(self) -> None:
        """SIGKILL: the process dies at once, with no shutdown at all."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM (a graceful stop); returns the exit status."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.process.returncode

    def restart(self) -> None:
        self.stop()
        self.start()

    def logs(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""


@pytest.fixture
def start_relay(tmp_path: Path) -> Iterator[Callable[..., RelayProcess]]:
    """Factory: ``start_relay(database_url, **settings)`` -> a running :class:`RelayProcess`."""
    started: list[RelayProcess] = []

    def start(database_url: str, **settings: Any) -> RelayProcess:
        process = RelayProcess(database_url, tmp_path, **settings)
        started.append(process)
        process.start()
        return process

    yield start
    for process in started:
        process.stop(timeout=10)


@pytest.fixture
def relay(relay_db_url: str, start_relay: Callable[..., RelayProcess]) -> RelayProcess:
    """A relay process of this test's own, on a fresh database (see the module docstring)."""
    return start_relay(relay_db_url)


class RelayPool:
    """The session's shared relays, one per backend, started on first use."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._relays: dict[str, RelayProcess] = {}
        self._cleanups: list[Callable[[], None]] = []

    def get(self, backend: str) -> RelayProcess:
        """The shared relay of ``backend`` (``sqlite`` or ``postgres``)."""
        if backend not in self._relays:
            directory = self.directory / backend
            directory.mkdir(parents=True, exist_ok=True)
            url, cleanup = make_database(backend, directory)
            self._cleanups.append(cleanup)
            process = RelayProcess(url, directory)
            process.start()
            self._relays[backend] = process
        return self._relays[backend]

    def close(self) -> None:
        for process in self._relays.values():
            process.stop(timeout=10)
        for cleanup in self._cleanups:
            cleanup()


@pytest.fixture(scope="session")
def relay_pool(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RelayPool]:
    """The session's shared relays (see :class:`RelayPool`)."""
    pool = RelayPool(tmp_path_factory.mktemp("shared-relays"))
    try:
        yield pool
    finally:
        pool.close()


@pytest.fixture(params=BACKENDS)
def shared_relay(request: pytest.FixtureRequest, relay_pool: RelayPool) -> RelayProcess:
    """One relay process per backend for the session (see the module docstring)."""
    return relay_pool.get(str(request.param))


# -- pairing through a relay (tests/pairing) ---------------------------------------------
# Kept here rather than in a tests/pairing/conftest.py: test modules import this file as
# ``conftest``, and a second file of that name would shadow it.


@pytest.fixture
def relay_url(shared_relay: RelayProcess) -> str:
    """The URL of the session's shared relay (SQLite and PostgreSQL)."""
    return str(shared_relay.url)


@pytest.fixture
async def proxy(relay_url: str) -> Any:
    """A pairing proxy in front of the relay that can rewrite what passes
    (tests/pairing/pairing_relay_helpers.py)."""
    from pairing_relay_helpers import RelayProxy

    proxy = RelayProxy(upstream=relay_url)
    await proxy.start()
    yield proxy
    await proxy.stop()


def copy_sqlite_database(url: str, to: Path) -> Callable[[], None]:
    """Copy an SQLite database's files to ``to``; returns a function putting them back
    (a relay "restored from an older copy" in the rollback tests)."""
    path = Path(url.split("///", 1)[1])
    to.mkdir(parents=True, exist_ok=True)
    saved = []
    for suffix in ("", "-wal", "-shm"):
        source = Path(str(path) + suffix)
        if source.exists():
            shutil.copy2(source, to / (path.name + suffix))
            saved.append(suffix)

    def restore() -> None:
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
        for suffix in saved:
            shutil.copy2(to / (path.name + suffix), Path(str(path) + suffix))

    return restore
