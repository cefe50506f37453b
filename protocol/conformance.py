"""Conformance runner: check this implementation against vector files.

Usage::

    python -m protocol.conformance protocol/vectors/*.json

Each file is JSON: ``{"kind": KIND, "description": TEXT, "cases": [CASE, ...]}``
(SPEC.md section 12). Every case is run through the checker for its file's kind. The
runner prints one line per failure and ends with ``N passed, N failed``; it exits 0 only
when nothing failed.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import sys
from collections.abc import Sequence
from pathlib import Path

from protocol import checks
from protocol.checks import Checker, VectorMismatch
from protocol.errors import AccordError


def load_checkers() -> dict[str, Checker]:
    """Every checker of every module in :mod:`protocol.checks`, by kind."""
    found: dict[str, Checker] = {}
    for info in pkgutil.iter_modules(checks.__path__):
        module = importlib.import_module(f"{checks.__name__}.{info.name}")
        found.update(getattr(module, "CHECKERS", {}))
    return found


def run_file(path: Path, checkers: dict[str, Checker]) -> tuple[int, list[str]]:
    """Run one vector file; return the number passed and a message per failure."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return 0, [f"{path}: cannot read the vector file: {exc}"]
    if not isinstance(document, dict) or not isinstance(document.get("cases"), list):
        return 0, [f"{path}: not a vector file (no 'cases' list)"]
    kind = document.get("kind")
    checker = checkers.get(kind) if isinstance(kind, str) else None
    if checker is None:
        return 0, [f"{path}: unknown vector kind {kind!r}"]
    passed = 0
    failures: list[str] = []
    for index, case in enumerate(document["cases"]):
        name = case.get("name", f"#{index}") if isinstance(case, dict) else f"#{index}"
        try:
            if not isinstance(case, dict):
                raise VectorMismatch("a case must be a JSON object")
            checker(case)
        except VectorMismatch as exc:
            failures.append(f"{path.name}: {name}: {exc}")
        except (AccordError, KeyError, TypeError, ValueError) as exc:
            failures.append(f"{path.name}: {name}: {type(exc).__name__}: {exc}")
        else:
            passed += 1
    return passed, failures


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        print("usage: python -m protocol.conformance FILE...", file=sys.stderr)
        return 2
    checkers = load_checkers()
    total_passed = 0
    total_failed = 0
    for name in args:
        passed, failures = run_file(Path(name), checkers)
        total_passed += passed
        total_failed += len(failures)
        for failure in failures:
            print(f"FAIL {failure}")
    print(f"{total_passed} passed, {total_failed} failed")
    return 0 if total_failed == 0 and total_passed > 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
