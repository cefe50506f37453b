"""``accord-relay``: run the relay, or migrate its database.

    accord-relay serve                 # 127.0.0.1:8787, embedded SQLite, no settings needed
    accord-relay serve --database-url postgresql://relay@db/relay --host 0.0.0.0
    accord-relay migrate --database-url postgresql://relay@db/relay
    accord-relay check                 # is the schema current? (exit 0 yes, 1 no)

Every flag also has an environment variable, ``ACCORD_<NAME>``; limits use
``ACCORD_LIMIT_<NAME>`` (see server/config.py and docs/deploy.md).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import fields
from typing import Any

from aiohttp import web
from sqlalchemy.exc import DBAPIError

from server.app import create_app
from server.config import (
    ConfigError,
    Limits,
    RelayConfig,
    default_database_path,
    from_environment,
    redacted_url,
    with_overrides,
)
from server.logs import AccessLogger, configure_logging
from server.migrate import SchemaError, SchemaState, check_schema, schema_state, upgrade
from server.store import is_database_unavailable, open_database

logger = logging.getLogger("accord.relay")


def _add_database_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database-url",
        help="SQLAlchemy URL: sqlite:///path.db or postgresql://user@host/db "
        "(env ACCORD_DATABASE_URL; default: embedded SQLite in the user's data directory)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="accord-relay",
        description="Accord's zero-knowledge relay: stores signed, encrypted entries.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the relay")
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default 8787)")
    _add_database_flag(serve)
    serve.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    serve.add_argument(
        "--cors-origin",
        action="append",
        dest="cors_origins",
        help="an origin allowed to call the relay from a browser (repeatable; default none)",
    )
    serve.add_argument(
        "--trusted-proxy",
        action="append",
        dest="trusted_proxies",
        help="address or network of a load balancer whose X-Forwarded-For is believed",
    )
    serve.add_argument("--token-ttl", type=int, help="seconds a bearer token lives (3600)")
    serve.add_argument("--pairing-ttl", type=int, help="seconds a pairing channel lives (<=120)")
    serve.add_argument(
        "--shutdown-timeout", type=float, help="seconds requests get to finish on stop (10)"
    )
    limits = serve.add_argument_group("limits")
    for item in fields(Limits):
        kind = float if isinstance(item.default, float) else int
        limits.add_argument(
            "--" + item.name.replace("_", "-"),
            type=kind,
            dest=item.name,
            help=f"(default {item.default})",
        )

    migrate = commands.add_parser("migrate", help="bring the database schema up to date")
    _add_database_flag(migrate)

    check = commands.add_parser("check", help="say whether the database schema is current")
    _add_database_flag(check)
    return parser


def _config(args: argparse.Namespace) -> RelayConfig:
    overrides: dict[str, Any] = {}
    for name in ("host", "port", "database_url", "log_level", "token_ttl", "pairing_ttl"):
        overrides[name] = getattr(args, name, None)
    overrides["shutdown_timeout"] = getattr(args, "shutdown_timeout", None)
    for name in ("cors_origins", "trusted_proxies"):
        value = getattr(args, name, None)
        overrides[name] = tuple(value) if value else None
    for item in fields(Limits):
        overrides[item.name] = getattr(args, item.name, None)
    return with_overrides(from_environment(), **overrides)


async def _prepare(config: RelayConfig) -> None:
    if config.is_embedded:
        default_database_path().parent.mkdir(parents=True, exist_ok=True)
    db = open_database(config.resolved_database_url())
    try:
        await check_schema(db.write_engine, may_create=db.is_sqlite)
    finally:
        await db.dispose()


async def _migrate(config: RelayConfig) -> str:
    if config.is_embedded:
        default_database_path().parent.mkdir(parents=True, exist_ok=True)
    db = open_database(config.resolved_database_url())
    try:
        before = await schema_state(db.write_engine)
        if before is SchemaState.AHEAD:
            raise SchemaError("the database was migrated by a newer relay; nothing to do here")
        await upgrade(db.write_engine)
        return (
            "created the schema"
            if before is SchemaState.EMPTY
            else (
                "already up to date"
                if before is SchemaState.CURRENT
                else "migrated to the newest schema"
            )
        )
    finally:
        await db.dispose()


async def _check(config: RelayConfig) -> SchemaState:
    db = open_database(config.resolved_database_url())
    try:
        return await schema_state(db.write_engine)
    finally:
        await db.dispose()


def _fail(message: str, status: int = 1) -> int:
    print(f"accord-relay: {message}", file=sys.stderr)
    return status


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``accord-relay``; returns the process exit status."""
    args = build_parser().parse_args(argv)
    try:
        config = _config(args)
    except ConfigError as exc:
        return _fail(str(exc), 2)
    configure_logging(config.log_level)
    where = redacted_url(config.resolved_database_url())
    try:
        if args.command == "migrate":
            print(f"accord-relay: {asyncio.run(_migrate(config))} ({where})")
            return 0
        if args.command == "check":
            state = asyncio.run(_check(config))
            print(f"accord-relay: schema {state.value} ({where})")
            return 0 if state is SchemaState.CURRENT else 1
        asyncio.run(_prepare(config))
    except SchemaError as exc:
        return _fail(str(exc))
    except Exception as exc:
        if is_database_unavailable(exc):
            return _fail(f"cannot reach the database {where}: {type(exc).__name__}")
        if isinstance(exc, DBAPIError):
            # The database's own first line ("database ... does not exist", "password
            # authentication failed ..."); it never holds the password itself.
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
            return _fail(f"cannot use the database {where}: {reason}")
        raise
    logger.info(
        "relay starting",
        extra={
            "event": "start",
            "host": config.host,
            "port": config.port,
            "database": where,
            "pid": os.getpid(),
        },
    )
    web.run_app(
        create_app(config),
        host=config.host,
        port=config.port,
        access_log_class=AccessLogger,
        access_log=logging.getLogger("accord.relay.access"),
        print=None,
        shutdown_timeout=config.shutdown_timeout,
    )
    logger.info("relay stopped", extra={"event": "stop", "pid": os.getpid()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
