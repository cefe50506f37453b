"""Static checks: mypy --strict on protocol/ and client_lib/, and ruff over the repository.

Both run as ``sys.executable -m ...`` so they use whichever environment runs pytest.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=600
    )


def test_mypy_strict_on_protocol_and_client_lib() -> None:
    result = run("mypy", "protocol", "client_lib")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_check() -> None:
    result = run("ruff", "check", ".")
    assert result.returncode == 0, result.stdout + result.stderr
