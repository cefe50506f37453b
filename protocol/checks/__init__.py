"""Known-answer checks behind ``python -m protocol.conformance``.

Each module here exposes ``CHECKERS``: a map from a vector file's ``kind`` to a function
that takes one case (a dict decoded from JSON) and raises :class:`VectorMismatch` when the
implementation's answer differs from the vector's. SPEC.md section 12 documents each kind.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class VectorMismatch(Exception):
    """The implementation disagrees with a vector case."""


Case = dict[str, Any]
Checker = Callable[[Case], None]


def expect(condition: bool, message: str) -> None:
    """Raise :class:`VectorMismatch` with ``message`` unless ``condition`` holds."""
    if not condition:
        raise VectorMismatch(message)
