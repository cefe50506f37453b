"""Fixtures of the pairing tests that talk to a real relay: its URL (SQLite and
PostgreSQL, through the session's shared relays) and a proxy in front of it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from pairing_relay_helpers import RelayProxy


@pytest.fixture
def relay_url(shared_relay: Any) -> str:
    return str(shared_relay.url)


@pytest.fixture
async def proxy(relay_url: str) -> AsyncIterator[RelayProxy]:
    proxy = RelayProxy(upstream=relay_url)
    await proxy.start()
    yield proxy
    await proxy.stop()
