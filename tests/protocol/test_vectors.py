"""The non-rule vector files pass, and the generator reproduces them byte for byte."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from protocol.checks import VectorMismatch
from protocol.conformance import load_checkers, main, run_file
from protocol.vectors.generate import write_all

VECTORS = Path(__file__).resolve().parents[2] / "protocol" / "vectors"
OURS = ["keys.json", "padding.json", "entries.json", "feeds.json", "roster.json", "envelopes.json"]


@pytest.mark.parametrize("name", OURS)
def test_vector_file_passes(name: str) -> None:
    passed, failures = run_file(VECTORS / name, load_checkers())
    assert failures == []
    assert passed >= 5


def test_generator_reproduces_the_committed_files(tmp_path: Path) -> None:
    written = write_all(tmp_path)
    assert sorted(path.name for path in written) == sorted(OURS)
    for path in written:
        assert path.read_bytes() == (VECTORS / path.name).read_bytes(), path.name


def test_conformance_runner_prints_the_total(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(VECTORS / name) for name in OURS]) == 0
    assert capsys.readouterr().out.strip().endswith("passed, 0 failed")


@pytest.mark.parametrize("name", OURS)
def test_a_wrong_expectation_is_caught(name: str, tmp_path: Path) -> None:
    """Each checker really compares: flip one expected value and the case fails."""
    document = json.loads((VECTORS / name).read_text(encoding="utf-8"))
    case = document["cases"][0]
    _corrupt(case["expect"])
    path = tmp_path / name
    path.write_text(json.dumps(document), encoding="utf-8")
    passed, failures = run_file(path, load_checkers())
    assert len(failures) == 1
    assert passed == len(document["cases"]) - 1


def _corrupt(expected: object) -> None:
    if isinstance(expected, dict):
        key = sorted(expected)[0]
        value = expected[key]
        if isinstance(value, (dict, list)) and value:
            _corrupt(value)
        else:
            expected[key] = _changed(value)
    elif isinstance(expected, list):
        expected[0] = (
            _changed(expected[0]) if not isinstance(expected[0], (dict, list)) else expected[0]
        )
        if isinstance(expected[0], (dict, list)):
            _corrupt(expected[0])
    else:
        raise VectorMismatch("cannot corrupt a scalar in place")


def _changed(value: object) -> object:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, str):
        return ("0" if value[:1] != "0" else "1") + value[1:]
    return "changed"
