"""A bounded run of the atheris harness (tests/system/fuzz_atheris.py) in CI.

The harness runs in its own process for :data:`SECONDS` seconds, from seeds of every
decoder; libFuzzer exits 0 when the time is up without a finding. A finding (an
exception other than a documented ProtocolError, a hang or a crash) fails the test
with the fuzzer's report and the input it saved. Longer runs are made by hand; see the
harness's docstring.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

HARNESS = Path(__file__).resolve().parent / "fuzz_atheris.py"
SECONDS = 20

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("atheris") is None,
    reason="atheris is not installed (pip install -e '.[dev]')",
)


def run_harness(*flags: str, cwd: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(HARNESS), *flags],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_every_seed_decodes(tmp_path: Path) -> None:
    result = run_harness("--check-seeds", cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "seeds decode" in result.stdout


def test_a_bounded_atheris_run_finds_nothing(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    result = run_harness(
        f"-max_total_time={SECONDS}",
        "-timeout=10",
        "-rss_limit_mb=2048",
        f"-artifact_prefix={tmp_path}/",
        str(corpus),
        cwd=tmp_path,
        timeout=SECONDS + 120,
    )
    findings = [
        p.name for p in tmp_path.iterdir() if p.name.startswith(("crash-", "timeout-", "oom-"))
    ]
    assert result.returncode == 0 and not findings, (findings, result.stderr[-6000:])
    assert "Done" in result.stderr, result.stderr[-3000:]
    runs = int(result.stderr.rsplit("Done ", 1)[1].split()[0])
    assert runs > 1000, runs
