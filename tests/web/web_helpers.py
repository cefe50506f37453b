"""Helpers for the web client's tests: where node, npm and Chromium are, and how to run them.

These tests drive the JavaScript client in clients/web. They skip only when the machine
lacks `node` or `/usr/bin/chromium`, and fail instead under CI (`.ci/run` installs both).
A missing `node_modules` is installed once with `npm ci` (from the lockfile), so the
README's one test command works on a fresh checkout.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import NoReturn

import pytest

REPO = Path(__file__).resolve().parents[2]
WEB = REPO / "clients" / "web"
VECTORS = REPO / "protocol" / "vectors"
CHROMIUM = Path("/usr/bin/chromium")


def _missing(reason: str) -> NoReturn:
    """Skip for lack of a tool on a developer's machine; fail in CI, where `.ci/run`
    installs every tool, so a missing one is never reported as a pass."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason}, and CI must run these tests")
    pytest.skip(reason)


def require_node() -> str:
    """The path of `node`, or skip the test with the reason (fail in CI)."""
    node = shutil.which("node")
    if node is None:
        _missing("node is not installed (CI installs nodejs and runs npm ci in clients/web)")
    if not (WEB / "node_modules").is_dir():
        npm = shutil.which("npm")
        if npm is None:
            pytest.fail("clients/web/node_modules is missing and npm is not installed")
        done = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=WEB,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if done.returncode != 0:
            pytest.fail(f"`npm ci` in clients/web failed:\n{done.stderr[-2000:]}")
    return node


def require_chromium() -> Path:
    """The Chromium binary, or skip the test with the reason (fail in CI)."""
    if not CHROMIUM.exists():
        _missing("/usr/bin/chromium is not installed (CI installs it with apt-get)")
    return CHROMIUM


def run_node(
    args: list[str], timeout: float = 300, **kwargs: object
) -> subprocess.CompletedProcess[str]:
    """Run node in clients/web with the given arguments."""
    node = require_node()
    return subprocess.run(
        [node, *args],
        cwd=WEB,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        **kwargs,  # type: ignore[arg-type]
    )


def count_vector_cases(directory: Path) -> int:
    """How many cases the vector files in `directory` hold."""
    return sum(
        len(json.loads(path.read_text())["cases"]) for path in sorted(directory.glob("*.json"))
    )
