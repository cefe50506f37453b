"""Every typed key of the relay's aiohttp application and requests, in one place."""

from __future__ import annotations

import weakref
from dataclasses import dataclass

from aiohttp import web

from server.auth import Principal
from server.config import RelayConfig
from server.fanout import Fanout, Hub
from server.metrics import RelayMetrics
from server.ratelimit import RateLimiter
from server.store import Database


@dataclass(frozen=True, slots=True, kw_only=True)
class Limiters:
    """The token buckets of one relay process."""

    device: RateLimiter
    ip: RateLimiter
    pairing: RateLimiter


@dataclass(slots=True)
class Lifecycle:
    """Whether the relay is stopping (new WebSockets and long-polls are then refused)."""

    stopping: bool = False


CONFIG = web.AppKey("config", RelayConfig)
DATABASE = web.AppKey("database", Database)
HUB = web.AppKey("hub", Hub)
FANOUT = web.AppKey("fanout", Fanout)
METRICS = web.AppKey("metrics", RelayMetrics)
LIMITERS = web.AppKey("limiters", Limiters)
LIFECYCLE = web.AppKey("lifecycle", Lifecycle)
WEBSOCKETS = web.AppKey("websockets", weakref.WeakSet[web.WebSocketResponse])
#: Open WebSockets per (space, device), counted from the moment one passes the limit check.
SOCKET_SLOTS = web.AppKey("socket_slots", dict[tuple[bytes, bytes], int])

__all__ = [
    "CONFIG",
    "DATABASE",
    "FANOUT",
    "HUB",
    "LIFECYCLE",
    "LIMITERS",
    "METRICS",
    "SOCKET_SLOTS",
    "WEBSOCKETS",
    "Lifecycle",
    "Limiters",
    "Principal",
]
