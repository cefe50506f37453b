"""protocol/ stays sans-I/O: no module under it imports a transport, a database,
the CRDT engine, the relay or the client library (DESIGN.md section 2)."""

from __future__ import annotations

import ast
from pathlib import Path

PROTOCOL = Path(__file__).resolve().parents[2] / "protocol"
#: Modules (and everything below them) that protocol/ must never import.
FORBIDDEN = {
    "socket",
    "ssl",
    "selectors",
    "asyncio",
    "aiohttp",
    "sqlalchemy",
    "aiosqlite",
    "asyncpg",
    "sqlite3",
    "pycrdt",
    "server",
    "client_lib",
    "clients",
    "urllib.request",
    "http.client",
    "http.server",
    "subprocess",
}


def forbidden(names: set[str]) -> set[str]:
    """The names in ``names`` that are, or lie below, a forbidden module."""
    return {
        name
        for name in names
        if any(name == bad or name.startswith(bad + ".") for bad in FORBIDDEN)
    }


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module)
            roots.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "__import__"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            roots.add(node.args[0].value)
    return roots


def test_protocol_imports_no_io() -> None:
    files = sorted(PROTOCOL.rglob("*.py"))
    assert len(files) > 10
    offenders = {
        str(path.relative_to(PROTOCOL)): sorted(forbidden(imported_modules(path)))
        for path in files
        if forbidden(imported_modules(path))
    }
    assert offenders == {}


def test_the_checker_sees_a_forbidden_import(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import asyncio.tasks\nfrom server.app import x\nfrom . import y\n"
        "from urllib import request\nimport urllib.parse\n"
    )
    assert forbidden(imported_modules(sample)) == {
        "asyncio.tasks",
        "server.app",
        "server.app.x",
        "urllib.request",
    }
