"""Small helpers shared by the vector checkers of feeds, roster, entries and envelopes.

Vector files write bytes as lowercase hex, ``null`` for absent bytes, and an expected
failure as ``{"error": CODE}`` (SPEC.md section 12).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from protocol.checks import Case, Checker, VectorMismatch, expect
from protocol.errors import AccordError

_T = TypeVar("_T")


def unhex(value: object, what: str) -> bytes:
    """Bytes from a lowercase hex string of a vector."""
    if not isinstance(value, str) or value != value.lower():
        raise VectorMismatch(f"{what} must be lowercase hex")
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise VectorMismatch(f"{what} is not hex") from None


def unhex_or_none(value: object, what: str) -> bytes | None:
    return None if value is None else unhex(value, what)


def integer(value: object, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise VectorMismatch(f"{what} must be an integer")
    return value


def hex_list(value: object, what: str) -> list[bytes]:
    if not isinstance(value, list):
        raise VectorMismatch(f"{what} must be an array of hex strings")
    return [unhex(item, what) for item in value]


def hex_map(value: object, what: str) -> dict[bytes, int]:
    """A JSON object from hex keys to integers (a have-vector)."""
    if not isinstance(value, dict):
        raise VectorMismatch(f"{what} must be an object")
    return {unhex(k, what): integer(v, what) for k, v in value.items()}


def outcome(action: Callable[[], _T]) -> tuple[_T | None, str | None]:
    """Run ``action``; return its result, or the code of the Accord error it raised."""
    try:
        return action(), None
    except AccordError as error:
        return None, error.code.value


def expect_outcome(
    case: Case, action: Callable[[], _T], check_result: Callable[[_T, Mapping[str, Any]], None]
) -> None:
    """Compare ``action`` against ``case["expect"]``: an ``error`` code, or a result
    that ``check_result`` compares."""
    wanted = case["expect"]
    if not isinstance(wanted, dict):
        raise VectorMismatch("expect must be an object")
    result, code = outcome(action)
    if "error" in wanted:
        expect(code == wanted["error"], f"expected error {wanted['error']!r}, got {code or 'none'}")
        return
    expect(code is None, f"expected success, got error {code!r}")
    check_result(result, wanted)  # type: ignore[arg-type]


def dispatch(checks: Mapping[str, Checker]) -> Checker:
    """A checker that runs the check a case names in its ``check`` field."""

    def run(case: Case) -> None:
        name = case.get("check")
        checker = checks.get(name) if isinstance(name, str) else None
        if checker is None:
            raise VectorMismatch(f"unknown check {name!r}")
        checker(case)

    return run
