"""The docs and the code agree: SPEC.md section 10's tables, the OpenAPI paths, the routes."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from server.app import create_app
from server.config import RelayConfig
from server.errors import STATUS_BY_CODE, RelayErrorCode

ROOT = Path(__file__).resolve().parents[2]
SPEC = (ROOT / "protocol" / "SPEC.md").read_text(encoding="utf-8")


def spec_codes(heading: str) -> dict[str, int]:
    """The ``| `code` | status | ...`` rows of one subsection of SPEC.md."""
    section = SPEC.split(heading, 1)[1].split("\n### ", 1)[0].split("\n## ", 1)[0]
    return {
        match.group(1): int(match.group(2))
        for match in re.finditer(r"^\| `([a-z_]+)` \| (\d{3}) \|", section, re.MULTILINE)
    }


def test_relay_table_matches_the_code() -> None:
    documented = spec_codes("### 10.2 Relay codes")
    assert documented == {code.value: STATUS_BY_CODE[code] for code in RelayErrorCode}


def test_protocol_statuses_match_the_code() -> None:
    documented = spec_codes("### 10.1 Protocol codes")
    assert documented
    for code, status in documented.items():
        assert STATUS_BY_CODE[code] == status, code


def test_openapi_describes_every_route() -> None:
    document = yaml.safe_load((ROOT / "protocol" / "openapi.yaml").read_text(encoding="utf-8"))
    described = {
        (method.upper(), path)
        for path, operations in document["paths"].items()
        for method in operations
        if method in {"get", "post", "put", "delete"}
    }
    app = create_app(RelayConfig())
    served = {
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.method in {"GET", "POST", "PUT", "DELETE"} and route.resource is not None
    }
    assert described == served


def test_the_domain_core_imports_no_transport() -> None:
    """The core modules know nothing of HTTP or WebSockets; the relay never touches CRDTs."""
    import ast

    core = ["auth", "spaces", "pairing", "envelopes", "fanout", "roster_index", "store", "models"]
    for name in core:
        tree = ast.parse((ROOT / "server" / f"{name}.py").read_text(encoding="utf-8"))
        imported = {
            alias.name.split(".")[0]
            for node in ast.walk(tree)
            if isinstance(node, ast.Import)
            for alias in node.names
        } | {
            (node.module or "").split(".")[0]
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom)
        }
        assert not imported & {"aiohttp", "pycrdt", "client_lib", "clients"}, name
