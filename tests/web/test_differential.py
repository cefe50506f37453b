"""The JavaScript and Python implementations answer alike on random inputs.

The web client's fuzzers (clients/web/test/fuzz/) write random agreement-rule cases and
random concurrent roster histories as vector files whose `expect` is the JavaScript
answer; the Python conformance runner must agree with every case. Two real divergences
(SPEC 6.1 epoch floors, 5.4 bans) were found this way and are now in
protocol/vectors/roster-histories.json.
"""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pytest
from web_helpers import REPO, run_node


def python_runner(path: Path) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "protocol.conformance", str(path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    return result.stdout


def generate(tmp_path: Path, script: str, *args: int) -> Path:
    result = run_node([f"test/fuzz/{script}", *map(str, args)])
    assert result.returncode == 0, result.stderr
    path = tmp_path / f"{script}.json"
    path.write_text(result.stdout)
    return path


def test_random_rule_cases_get_the_same_answer(tmp_path: Path) -> None:
    out = python_runner(generate(tmp_path, "rule-cases.js", 7, 300))
    assert out.rstrip().endswith("300 passed, 0 failed")


def test_random_roster_histories_fold_the_same(tmp_path: Path) -> None:
    out = python_runner(generate(tmp_path, "roster-scenarios.js", 14, 8, 45))
    assert out.rstrip().endswith("16 passed, 0 failed")


@pytest.mark.slow
def test_many_random_cases_agree(tmp_path: Path) -> None:
    seed = random.randrange(1, 1_000_000)
    rules = python_runner(generate(tmp_path, "rule-cases.js", seed, 3000))
    assert rules.rstrip().endswith("3000 passed, 0 failed"), f"seed {seed}"
    rosters = python_runner(generate(tmp_path, "roster-scenarios.js", seed, 100, 60))
    assert rosters.rstrip().endswith("200 passed, 0 failed"), f"seed {seed}"
