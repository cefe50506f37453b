"""The JavaScript conformance runner (clients/web, `npm test`) against protocol/vectors.

The runner is an independent implementation written from SPEC.md: it must pass every
case of every vector file, and it must fail loudly when an expectation is wrong or a kind
is unknown, so that a green run means something.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from web_helpers import VECTORS, WEB, count_vector_cases, run_node

SUMMARY = re.compile(r"^(\d+) passed, (\d+) failed$", re.MULTILINE)


def summary(output: str) -> tuple[int, int]:
    found = SUMMARY.findall(output)
    assert found, f"no summary line in:\n{output}"
    passed, failed = found[-1]
    return int(passed), int(failed)


def test_every_vector_case_passes_in_javascript() -> None:
    result = run_node(["test/conformance.js", str(VECTORS)])
    passed, failed = summary(result.stdout)
    assert failed == 0, result.stdout
    assert result.returncode == 0, result.stdout + result.stderr
    assert passed == count_vector_cases(VECTORS)


def copy_vectors(tmp_path: Path) -> Path:
    target = tmp_path / "vectors"
    target.mkdir()
    for path in VECTORS.glob("*.json"):
        shutil.copy(path, target / path.name)
    return target


def test_a_wrong_rule_expectation_fails(tmp_path: Path) -> None:
    vectors = copy_vectors(tmp_path)
    path = vectors / "rule-basic.json"
    document = json.loads(path.read_text())
    case = document["cases"][0]
    item = next(iter(case["expect"]["items"].values()))
    item["level"] = "no" if item["level"] != "no" else "yes"
    path.write_text(json.dumps(document))
    result = run_node(["test/conformance.js", str(vectors)])
    assert result.returncode != 0
    assert summary(result.stdout)[1] == 1
    assert case["name"] in result.stdout


def test_a_wrong_ciphertext_expectation_fails(tmp_path: Path) -> None:
    vectors = copy_vectors(tmp_path)
    path = vectors / "entries.json"
    document = json.loads(path.read_text())
    case = next(c for c in document["cases"] if c["check"] == "open" and "plaintext" in c["expect"])
    case["expect"]["plaintext"] = "00" + case["expect"]["plaintext"]
    path.write_text(json.dumps(document))
    result = run_node(["test/conformance.js", str(vectors)])
    assert result.returncode != 0
    assert case["name"] in result.stdout


def test_an_unknown_kind_is_a_failure_with_a_reason(tmp_path: Path) -> None:
    vectors = copy_vectors(tmp_path)
    (vectors / "zz-new.json").write_text(
        json.dumps(
            {"kind": "not-yet-known", "description": "", "cases": [{"name": "a"}, {"name": "b"}]}
        )
    )
    result = run_node(["test/conformance.js", str(vectors)])
    assert result.returncode != 0
    assert 'kind "not-yet-known" is not implemented' in result.stdout
    assert summary(result.stdout)[1] == 2


def test_the_web_client_unit_tests_pass() -> None:
    tests = sorted(str(path.relative_to(WEB)) for path in (WEB / "test").glob("*.test.js"))
    assert tests, "no unit tests found in clients/web/test"
    result = run_node(["--test", *tests])
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"^# fail 0$", result.stdout, re.MULTILINE), result.stdout
