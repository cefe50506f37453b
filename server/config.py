"""The relay's settings: defaults that just work, overridable by flags and environment.

Every setting has a command-line flag (``accord-relay serve --help``) and an environment
variable ``ACCORD_<NAME>`` (for example ``ACCORD_DATABASE_URL``). Flags win over the
environment, the environment over the defaults. With no settings at all the relay
listens on 127.0.0.1:8787 and keeps an embedded SQLite database in the user's data
directory.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import platformdirs
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from protocol.entry import MAX_ENTRY_BYTES

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8787
APP_NAME = "accord-relay"
#: Pairing channels never live longer than this (DESIGN.md section 8).
MAX_PAIRING_TTL = 120


class ConfigError(ValueError):
    """A setting has a value the relay cannot use."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    """Sizes and rates the relay enforces (SPEC.md section 9.9)."""

    max_body_bytes: int = 8 * 1024 * 1024
    max_entry_bytes: int = MAX_ENTRY_BYTES
    max_batch_entries: int = 64
    max_fetch_entries: int = 256
    max_have_devices: int = 1024
    max_envelopes: int = 256
    #: Sustained requests per second and burst, per device (token bucket).
    device_rate: float = 50.0
    device_burst: int = 300
    #: Sustained requests per second and burst, per client address.
    ip_rate: float = 100.0
    ip_burst: int = 600
    #: Pairing channel creations and claims per second and burst, per client address.
    pairing_rate: float = 0.2
    pairing_burst: int = 10
    websockets_per_device: int = 4
    pairing_message_bytes: int = 16 * 1024
    pairing_messages: int = 16
    pairing_wait_seconds: float = 25.0
    #: Seconds a request body may take to arrive in full (a slow-loris guard).
    body_read_seconds: float = 30.0

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if value <= 0:
                raise ConfigError(f"limit {item.name} must be positive, not {value}")
        if self.max_entry_bytes > MAX_ENTRY_BYTES:
            raise ConfigError(f"max_entry_bytes cannot exceed the protocol's {MAX_ENTRY_BYTES}")


@dataclass(frozen=True, slots=True, kw_only=True)
class RelayConfig:
    """Everything :func:`server.app.create_app` needs to build a relay."""

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    #: SQLAlchemy URL; ``None`` means the embedded SQLite database in the data directory.
    database_url: str | None = None
    log_level: str = "info"
    #: Origins allowed by CORS, for a web client; empty means CORS is off.
    cors_origins: tuple[str, ...] = ()
    #: Peers whose X-Forwarded-For header is believed (a load balancer's address).
    trusted_proxies: tuple[str, ...] = ()
    token_ttl: int = 3600
    challenge_ttl: int = 120
    pairing_ttl: int = MAX_PAIRING_TTL
    #: Seconds given to open requests and WebSockets when the relay stops.
    shutdown_timeout: float = 10.0
    limits: Limits = field(default_factory=Limits)

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"port {self.port} is out of range")
        if self.log_level.lower() not in {"debug", "info", "warning", "error"}:
            raise ConfigError(f"log level {self.log_level!r} is not debug/info/warning/error")
        if not 1 <= self.pairing_ttl <= MAX_PAIRING_TTL:
            raise ConfigError(f"pairing_ttl must be 1..{MAX_PAIRING_TTL} seconds")
        if self.token_ttl < 60 or self.token_ttl > 24 * 3600:
            raise ConfigError("token_ttl must be between 60 seconds and one day")
        if self.challenge_ttl < 5 or self.challenge_ttl > 600:
            raise ConfigError("challenge_ttl must be between 5 and 600 seconds")
        if self.database_url is not None:
            normalize_database_url(self.database_url)

    @property
    def is_embedded(self) -> bool:
        """True when the database is the default one in the user's data directory."""
        return self.database_url is None

    def resolved_database_url(self) -> str:
        """The SQLAlchemy async URL the relay connects to."""
        if self.database_url is None:
            return f"sqlite+aiosqlite:///{default_database_path()}"
        return normalize_database_url(self.database_url)


def default_database_path() -> Path:
    """Where the embedded SQLite database lives: the user's data directory."""
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False)) / "relay.db"


def normalize_database_url(raw: str) -> str:
    """Give a database URL its async driver: aiosqlite for SQLite, asyncpg for PostgreSQL.

    Raises:
        ConfigError: not a URL, or a database other than SQLite and PostgreSQL.
    """
    try:
        url: URL = make_url(raw)
    except ArgumentError:
        raise ConfigError("the database URL is not a valid URL") from None
    backend = url.get_backend_name()
    if backend == "sqlite":
        if not url.database or url.database == ":memory:":
            raise ConfigError("an SQLite database URL must name a file")
        url = url.set(drivername="sqlite+aiosqlite")
    elif backend == "postgresql":
        url = url.set(drivername="postgresql+asyncpg")
    else:
        raise ConfigError(f"database {backend!r} is not supported: use SQLite or PostgreSQL")
    return url.render_as_string(hide_password=False)


def redacted_url(raw: str) -> str:
    """A database URL safe to log: the password replaced by ``***``."""
    try:
        return make_url(raw).render_as_string(hide_password=True)
    except ArgumentError:
        return "<invalid url>"


_ENV_FIELDS: dict[str, type] = {
    "host": str,
    "port": int,
    "database_url": str,
    "log_level": str,
    "cors_origins": tuple,
    "trusted_proxies": tuple,
    "token_ttl": int,
    "challenge_ttl": int,
    "pairing_ttl": int,
    "shutdown_timeout": float,
}


def _convert(name: str, kind: type, raw: str) -> Any:
    try:
        if kind is tuple:
            return tuple(part.strip() for part in raw.split(",") if part.strip())
        if kind is int:
            return int(raw)
        if kind is float:
            return float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a {kind.__name__}, not {raw!r}") from None
    return raw


def from_environment(environ: Mapping[str, str] | None = None) -> RelayConfig:
    """Settings from ``ACCORD_*`` environment variables over the defaults.

    Limits use ``ACCORD_LIMIT_<NAME>`` (for example ``ACCORD_LIMIT_DEVICE_RATE``).

    Raises:
        ConfigError: a variable cannot be converted or is out of range.
    """
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for name, kind in _ENV_FIELDS.items():
        raw = env.get(f"ACCORD_{name.upper()}")
        if raw is not None and raw != "":
            values[name] = _convert(name, kind, raw)
    limit_values: dict[str, Any] = {}
    for item in fields(Limits):
        raw = env.get(f"ACCORD_LIMIT_{item.name.upper()}")
        if raw:
            kind = float if isinstance(item.default, float) else int
            limit_values[item.name] = _convert(item.name, kind, raw)
    if limit_values:
        values["limits"] = Limits(**limit_values)
    return RelayConfig(**values)


def with_overrides(config: RelayConfig, **overrides: Any) -> RelayConfig:
    """``config`` with the non-None ``overrides`` applied (flags over environment).

    Raises:
        ConfigError: an override is out of range.
    """
    chosen = {key: value for key, value in overrides.items() if value is not None}
    limit_names = {item.name for item in fields(Limits)}
    limit_changes = {key: chosen.pop(key) for key in list(chosen) if key in limit_names}
    if limit_changes:
        chosen["limits"] = replace(config.limits, **limit_changes)
    return replace(config, **chosen)
