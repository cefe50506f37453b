"""schemathesis against protocol/openapi.yaml on a running relay (SQLite and PostgreSQL).

Two passes over every operation: anonymous, and with a real device token and the
space it belongs to (so the fuzzed bodies reach the entry, fetch and key handlers).
The checks: no 5xx, every status documented, every response matching its schema and
content type, and schema-violating requests refused with a 4xx.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import schemathesis
from conftest import BACKENDS, run_sync
from hypothesis import HealthCheck, settings
from relay_helpers import Device, RelayAPI, b64, new_space
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

SPEC = Path(__file__).resolve().parents[2] / "protocol" / "openapi.yaml"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
EXAMPLES = 12


schema = schemathesis.openapi.from_path(SPEC)
_signed_in: dict[str, tuple[str, str]] = {}


def signed_in(relay: Any) -> tuple[str, str]:
    """A space on ``relay`` and a token of its founder (made once per relay)."""

    async def make() -> tuple[str, str]:
        async with aiohttp.ClientSession() as http:
            api = RelayAPI(http, relay.url)
            founder = await api.founded(Device(space=new_space()))
            assert (await api.append(founder, founder.data(), founder.data()))[0] == 200
            return b64(founder.space), str(founder.token)

    if relay.url not in _signed_in:
        _signed_in[relay.url] = run_sync(make())
    return _signed_in[relay.url]


@pytest.mark.parametrize("backend", BACKENDS)
@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_anonymous(case: Any, backend: str, relay_pool: Any) -> None:
    shared_relay = relay_pool.get(backend)
    if case.path.endswith("/messages") and case.method == "GET":
        case.query = {**(case.query or {}), "wait": 0}
    case.call_and_validate(base_url=shared_relay.url, checks=CHECKS, timeout=30)


@pytest.mark.parametrize("backend", BACKENDS)
@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_signed_in(case: Any, backend: str, relay_pool: Any) -> None:
    shared_relay = relay_pool.get(backend)
    space, token = signed_in(shared_relay)
    if case.path_parameters and "space" in case.path_parameters:
        case.path_parameters["space"] = space
    if case.path.endswith("/messages") and case.method == "GET":
        case.query = {**(case.query or {}), "wait": 0}
    case.call_and_validate(
        base_url=shared_relay.url,
        headers={"Authorization": f"Bearer {token}"},
        # The path and header are overwritten with valid ones here, so a case generated
        # to be invalid there may rightly succeed: that check runs in the anonymous pass.
        checks=[check for check in CHECKS if check is not negative_data_rejection],
        timeout=30,
    )


def test_openapi_is_served(shared_relay: Any) -> None:
    async def get() -> str:
        async with (
            aiohttp.ClientSession() as http,
            http.get(shared_relay.url + "/v1/openapi.yaml") as answer,
        ):
            assert answer.status == 200
            assert answer.content_type == "application/yaml"
            return await answer.text()

    assert asyncio.run(get()) == SPEC.read_text(encoding="utf-8")
