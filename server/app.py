"""The relay's aiohttp application: ``create_app(config)``.

* Resources (database, fan-out, sweeper) are async context managers in
  ``app.cleanup_ctx``: opened in order at startup, closed in reverse at shutdown.
* Middlewares, outermost first: metrics, CORS, error mapping (the one place an error
  becomes an HTTP response), per-address rate limit.
* On shutdown, every open WebSocket gets 1001 (going away); requests in flight finish,
  so an entry the relay acknowledged is committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from importlib import resources
from pathlib import Path

from aiohttp import web
from sqlalchemy import text

from protocol.errors import AccordError
from server import appkeys, auth, http_pairing, http_spaces, pairing, ws
from server.config import RelayConfig, default_database_path, redacted_url
from server.errors import (
    EntryRefused,
    RateLimitedError,
    RelayError,
    RelayErrorCode,
    describe,
    error_body,
    status_of,
)
from server.fanout import Fanout, Hub
from server.http_common import client_address
from server.logs import route_of
from server.metrics import RelayMetrics
from server.migrate import check_schema
from server.ratelimit import RateLimiter
from server.store import is_database_unavailable, open_database

logger = logging.getLogger("accord.relay")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
SWEEP_SECONDS = 30.0
_UNLIMITED_ROUTES = frozenset({"/healthz", "/metrics"})


def _error_response(
    code: str, message: str, extra: dict[str, object] | None = None
) -> web.Response:
    return web.json_response(error_body(code, message, **(extra or {})), status=status_of(code))


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Map every failure to ``{"error": {"code", "message"}}`` with its status (SPEC 9.1)."""
    metrics = request.app[appkeys.METRICS]
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        http_code = {
            404: RelayErrorCode.NOT_FOUND,
            405: RelayErrorCode.METHOD_NOT_ALLOWED,
            413: RelayErrorCode.BODY_TOO_LARGE,
        }.get(exc.status, RelayErrorCode.BAD_REQUEST)
        metrics.errors.inc(code=http_code.value)
        return _error_response(http_code.value, exc.reason)
    except (RelayError, AccordError, EntryRefused) as exc:
        code, message, extra = describe(exc)
        metrics.errors.inc(code=code)
        response = _error_response(code, message, extra)
        if isinstance(exc, RateLimitedError):
            response.headers["Retry-After"] = str(exc.retry_after)
        return response
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        if is_database_unavailable(exc):
            logger.warning(
                "database unavailable",
                extra={"event": "db_unavailable", "error_type": type(exc).__name__},
            )
            code, message = RelayErrorCode.UNAVAILABLE.value, "the database is unavailable"
        else:
            logger.exception(
                "unexpected error", extra={"event": "internal_error", "route": route_of(request)}
            )
            code, message = RelayErrorCode.INTERNAL.value, "internal error"
        metrics.errors.inc(code=code)
        return _error_response(code, message)


@web.middleware
async def address_limit_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The per-address rate limit, for every route but the health and metrics probes."""
    if request.path not in _UNLIMITED_ROUTES:
        request.app[appkeys.LIMITERS].ip.take(client_address(request))
    return await handler(request)


@web.middleware
async def metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    response = await handler(request)
    request.app[appkeys.METRICS].requests.inc(
        route=route_of(request), method=request.method, status=str(response.status)
    )
    return response


_CORS_HEADERS = "Authorization, Content-Type"
_CORS_METHODS = "GET, POST, PUT, DELETE, OPTIONS"


@web.middleware
async def cors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """CORS for the configured origins only; with none configured it does nothing."""
    allowed = request.app[appkeys.CONFIG].cors_origins
    origin = request.headers.get("Origin")
    if not allowed or origin is None or (origin not in allowed and "*" not in allowed):
        return await handler(request)
    if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
        response: web.StreamResponse = web.Response(status=204)
        response.headers["Access-Control-Allow-Methods"] = _CORS_METHODS
        response.headers["Access-Control-Allow-Headers"] = _CORS_HEADERS
        response.headers["Access-Control-Max-Age"] = "600"
    else:
        response = await handler(request)
    if not response.prepared:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Vary"] = "Origin"
        response.headers["Access-Control-Expose-Headers"] = "Retry-After"
    return response


# -- resources ---------------------------------------------------------------------


async def database_ctx(app: web.Application) -> AsyncIterator[None]:
    config = app[appkeys.CONFIG]
    if config.is_embedded:
        default_database_path().parent.mkdir(parents=True, exist_ok=True)
    url = config.resolved_database_url()
    db = open_database(url)
    try:
        await check_schema(db.write_engine, may_create=db.is_sqlite)
        app[appkeys.DATABASE] = db
        logger.info("database ready", extra={"event": "database", "database": redacted_url(url)})
        yield
    finally:
        await db.dispose()


async def fanout_ctx(app: web.Application) -> AsyncIterator[None]:
    db = app[appkeys.DATABASE]
    metrics = app[appkeys.METRICS]
    hub = Hub(db, metrics)
    fanout = Fanout(db, hub, metrics)
    app[appkeys.HUB] = hub
    app[appkeys.FANOUT] = fanout
    await fanout.start()
    try:
        yield
    finally:
        await fanout.stop()


async def sweeper_ctx(app: web.Application) -> AsyncIterator[None]:
    """Delete expired challenges, tokens and pairing channels now and then."""

    async def sweep_forever() -> None:
        while True:
            try:
                async with app[appkeys.DATABASE].writing() as session:
                    await auth.purge_expired(session)
                    await pairing.purge_expired(session)
            except Exception as exc:
                logger.warning(
                    "sweep failed", extra={"event": "sweep", "error_type": type(exc).__name__}
                )
            await asyncio.sleep(SWEEP_SECONDS)

    task = asyncio.get_running_loop().create_task(sweep_forever())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def on_shutdown(app: web.Application) -> None:
    app[appkeys.LIFECYCLE].stopping = True
    app[appkeys.HUB].stop_waiting()
    await ws.close_all(app)


# -- small routes -------------------------------------------------------------------


async def healthz(request: web.Request) -> web.Response:
    if request.app[appkeys.LIFECYCLE].stopping:
        raise RelayError(RelayErrorCode.UNAVAILABLE, "the relay is stopping")
    async with request.app[appkeys.DATABASE].reading() as session:
        await session.execute(text("SELECT 1"))
    return web.json_response({"status": "ok"})


async def metrics(request: web.Request) -> web.Response:
    body = request.app[appkeys.METRICS].render()
    return web.Response(
        text=body,
        content_type="text/plain",
        charset="utf-8",
        headers={"X-Content-Type-Options": "nosniff"},
    )


def openapi_text() -> str:
    """The OpenAPI document shipped in the protocol package."""
    shipped = resources.files("protocol") / "openapi.yaml"
    if shipped.is_file():
        return shipped.read_text(encoding="utf-8")
    return (Path(__file__).resolve().parent.parent / "protocol" / "openapi.yaml").read_text(
        encoding="utf-8"
    )


async def openapi(request: web.Request) -> web.Response:
    return web.Response(text=openapi_text(), content_type="application/yaml", charset="utf-8")


def create_app(config: RelayConfig) -> web.Application:
    """A relay application for ``config``; nothing is opened until it starts."""
    limits = config.limits
    app = web.Application(
        client_max_size=limits.max_body_bytes,
        middlewares=[
            metrics_middleware,
            cors_middleware,
            error_middleware,
            address_limit_middleware,
        ],
    )
    app[appkeys.CONFIG] = config
    app[appkeys.METRICS] = RelayMetrics()
    app[appkeys.LIFECYCLE] = appkeys.Lifecycle()
    app[appkeys.WEBSOCKETS] = weakref.WeakSet()
    app[appkeys.SOCKET_SLOTS] = {}
    app[appkeys.LIMITERS] = appkeys.Limiters(
        device=RateLimiter(
            rate=limits.device_rate,
            burst=limits.device_burst,
            code=RelayErrorCode.RATE_LIMITED,
            what="from this device",
        ),
        ip=RateLimiter(
            rate=limits.ip_rate,
            burst=limits.ip_burst,
            code=RelayErrorCode.IP_RATE_LIMITED,
            what="from this address",
        ),
        pairing=RateLimiter(
            rate=limits.pairing_rate,
            burst=limits.pairing_burst,
            code=RelayErrorCode.IP_RATE_LIMITED,
            what="for pairing channels from this address",
        ),
    )
    app.cleanup_ctx.extend([database_ctx, fanout_ctx, sweeper_ctx])
    app.on_shutdown.append(on_shutdown)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/v1/openapi.yaml", openapi)
    app.router.add_routes(http_spaces.routes)
    app.router.add_routes(http_pairing.routes)
    app.router.add_routes(ws.routes)
    return app
