"""Vector checks for roster records and the roster fold (SPEC.md 12.5, kind ``roster``).

A ``fold`` case is folded with the entries in the given order and again reversed; both
must give the expected roster and refusals.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from protocol.checks import Case, Checker, expect
from protocol.checks.helpers import dispatch, expect_outcome, hex_list, unhex
from protocol.entry import Entry
from protocol.roster import Record, Roster, decode_record, encode_record, fold


def _state(roster: Roster) -> dict[str, Any]:
    return {
        "members": {
            m.hex(): [d.hex() for d in roster.devices_of(m)] for m in sorted(roster.members)
        },
        "cuts": {
            d.hex(): roster.cut_of(d)
            for d in sorted(roster.known_devices)
            if roster.cut_of(d) is not None
        },
        "epoch": roster.epoch,
        "epoch_key_ids": {str(n): k.hex() for n, k in sorted(roster.epoch_key_ids.items())},
        "rotation_due": roster.rotation_due,
    }


def _fold(case: Case) -> None:
    space = unhex(case["space"], "space")
    entries = [Entry.from_bytes(raw) for raw in hex_list(case["entries"], "entries")]
    want = dict(case["expect"])
    accepts = want.pop("accepts", [])
    want_refused = sorted([eid, code] for eid, code in want.pop("refused"))
    for name, order in [("given", entries), ("reversed", entries[::-1])]:
        roster, refusals = fold(order, space=space)
        got = _state(roster)
        for field, value in want.items():
            expect(got.get(field) == value, f"{name} order: {field} is {got.get(field)!r}")
        refused = sorted([r.entry.id.hex(), r.code.value] for r in refusals)
        expect(refused == want_refused, f"{name} order: refused {refused}")
        for device, seq, accepted in accepts:
            expect(
                roster.accepts(unhex(device, "device"), seq) is accepted,
                f"{name} order: accepts({device[:8]}..., {seq}) is not {accepted}",
            )


def _record(case: Case) -> None:
    raw = unhex(case["record"], "record")

    def check(record: Record, want: Mapping[str, Any]) -> None:
        expect(record.to_map()["op"] == want["op"], "op differs")
        expect(encode_record(record) == raw, "the record does not re-encode to its bytes")

    expect_outcome(case, lambda: decode_record(raw), check)


CHECKERS: dict[str, Checker] = {"roster": dispatch({"fold": _fold, "record": _record})}
