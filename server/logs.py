"""Structured logs: one JSON object per line on stderr.

What a log line may carry is decided here, not at each call site:

* the access log names the *route template* (``/v1/spaces/{space}/entries``), never
  the raw path or query string, so no token, channel id or space id lands in a log;
* ``extra`` fields are copied only when their name is in :data:`ALLOWED_FIELDS`;
* nothing ever logs a request or message body.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

logger = logging.getLogger("accord.relay")

#: The only ``extra`` fields a log line may carry.
ALLOWED_FIELDS = frozenset(
    {
        "event",
        "route",
        "method",
        "status",
        "code",
        "duration_ms",
        "host",
        "port",
        "database",
        "count",
        "stored",
        "duplicate",
        "websockets",
        "reason",
        "error_type",
        "pid",
    }
)


class JsonLineFormatter(logging.Formatter):
    """Formats a record as one JSON object: time, level, logger, message, allowed extras."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in ALLOWED_FIELDS:
            if name in record.__dict__:
                line[name] = record.__dict__[name]
        if record.exc_info and record.exc_info[0] is not None:
            # The exception type and a traceback of code locations; exception messages
            # may quote input, so they are left out.
            line["error_type"] = record.exc_info[0].__name__
            line["traceback"] = _locations(record.exc_info[2])
        return json.dumps(line, separators=(",", ":"), default=str)


def _locations(tb: Any) -> list[str]:
    places = []
    while tb is not None:
        code = tb.tb_frame.f_code
        places.append(f"{code.co_filename}:{tb.tb_lineno}:{code.co_name}")
        tb = tb.tb_next
    return places[-12:]


def configure_logging(level: str) -> None:
    """Send every ``accord`` and ``aiohttp`` log line to stderr as JSON."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLineFormatter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # aiohttp's own access logger is replaced by AccessLogger below.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    # Alembic narrates every step at INFO; the CLI reports the outcome itself.
    logging.getLogger("alembic").setLevel(max(root.level, logging.WARNING))


def route_of(request: web.BaseRequest) -> str:
    """The route template that matched ``request``, or ``unmatched``."""
    match_info = getattr(request, "match_info", None)
    route = getattr(match_info, "route", None)
    resource = getattr(route, "resource", None)
    canonical = getattr(resource, "canonical", None)
    return canonical if isinstance(canonical, str) else "unmatched"


class AccessLogger(AbstractAccessLogger):
    """One line per request: route template, method, status and duration."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info(
            "request",
            extra={
                "event": "request",
                "route": route_of(request),
                "method": request.method,
                "status": response.status,
                "duration_ms": round(time * 1000, 1),
            },
        )

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)
