"""Benchmark 1: cold replay. A fresh device loads and verifies a whole history.

Three measurements of the same entries, in the same run:

* **raw limit**: what libsodium through PyNaCl needs and nothing else: one Ed25519
  verification per entry (of the very bytes the entry signs) and one
  XChaCha20-Poly1305 decryption per data entry (of its very ciphertext and header),
  with every input prepared beforehand.
* **protocol path**: :mod:`protocol.entry` as a client uses it: decode each entry,
  check its space, author, signature and chain link, derive the content key, decrypt
  and unpad (``open``), and hash it for the next link.
* **full client path**: a fresh device (a real :class:`~client_lib.account.Account`
  with its local store) takes the key envelope and then the whole history in one
  ``Replica.ingest_many``, as the sync engine hands it over: verify, chain, fold the
  roster, decrypt, check and merge the CRDT updates, store, snapshot. After it, every
  record of the history must be readable, or the run stops with an error.

The full path is run on growing sizes until one takes longer than the budget (its
cost may grow faster than the history), on two histories: both partners writing (the
realistic one) and only one writing. A cProfile of each says where the time goes.
"""

from __future__ import annotations

import functools
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nacl.bindings as sodium

from bench.history import History
from bench.machine import Timing, best_of, interleaved, ratio
from bench.profiling import profile
from bench.sweep import sweep
from client_lib.account import Account
from client_lib.events import Accepted, ContentState, Waiting
from client_lib.keystore import FAST_FOR_TESTS, SpaceKind
from protocol.crypto import content_key
from protocol.entry import Entry, EntryType, check_link, entry_id, open, verify_entry

TARGET_RATIO = 2.0


class ReplayIncomplete(RuntimeError):
    """A replay ended without every entry applied: its time would mean nothing."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplaySettings:
    #: History sizes (data entries) for the raw limit and the protocol path.
    sizes: tuple[int, ...] = (10_000, 100_000)
    repeats: int = 3
    #: Sizes tried through the full client path, smallest first.
    full_sizes: tuple[int, ...] = (250, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 100_000)
    #: A full-path size is tried only when the previous one, scaled up, fits this budget.
    full_budget_s: float = 120.0
    #: History size profiled through the full client path.
    profile_size: int = 500


# -- the raw limit --------------------------------------------------------------------


def _raw_inputs(history: History) -> tuple[list[tuple[bytes, bytes]], list[tuple[bytes, ...]]]:
    signed: list[tuple[bytes, bytes]] = []
    boxes: list[tuple[bytes, ...]] = []
    for raw in history.entries:
        entry = Entry.from_bytes(raw)
        signed.append((entry.sig + entry.signing_bytes(), entry.device))
        if entry.type is EntryType.DATA and entry.nonce is not None:
            key = content_key(history.epoch_key, entry.space, entry.epoch)
            boxes.append((entry.body, entry.header_bytes(), entry.nonce, key))
    return signed, boxes


def raw_work(history: History) -> Callable[[], None]:
    """The bare signature checks and decryptions of ``history``, inputs prepared."""
    signed, boxes = _raw_inputs(history)
    verify = sodium.crypto_sign_open
    decrypt = sodium.crypto_aead_xchacha20poly1305_ietf_decrypt

    def work() -> None:
        for message, key in signed:
            verify(message, key)
        for ciphertext, header, nonce, key in boxes:
            decrypt(ciphertext, header, nonce, key)

    return work


def raw_limit(history: History, *, repeats: int) -> Timing:
    """The time of the bare signature checks and decryptions of ``history``."""
    return best_of(raw_work(history), repeats=repeats)


def _opened_into(opened: list[int], history: History) -> None:
    opened.append(protocol_replay(history))


def _data_entries(history: History) -> int:
    return sum(1 for raw in history.entries if Entry.from_bytes(raw).type is EntryType.DATA)


# -- the protocol path ----------------------------------------------------------------


def protocol_replay(history: History) -> int:
    """Verify, chain and decrypt every entry with :mod:`protocol.entry`; returns how
    many data entries were opened.

    Raises:
        ProtocolError: an entry does not verify (the history is broken).
    """
    space = history.space
    devices = history.writer_devices
    keys = {0: history.epoch_key}
    heads: dict[bytes, bytes] = {}
    opened = 0
    for raw in history.entries:
        entry = Entry.from_bytes(raw)
        previous = heads.get(entry.device)
        if entry.type is EntryType.DATA:
            open(entry, space=space, devices=devices, prev_id=previous, epoch_keys=keys)
            opened += 1
        else:
            verify_entry(entry, space=space, devices=devices)
            check_link(entry, previous)
        heads[entry.device] = entry_id(raw)
    return opened


# -- the full client path -------------------------------------------------------------


def _fresh_device(history: History, base: Path) -> Account:
    return Account.create(
        "fresh",
        display_name="Sam",
        no_passphrase=True,
        base=base,
        limits=FAST_FOR_TESTS,
        device_key=history.joiner_key,
        member_id=history.joiner_member,
        found_private_space=False,
    )


def check_complete(account: Account, history: History) -> None:
    """Raise :class:`ReplayIncomplete` unless every record of ``history`` is readable."""
    records = account.replica(history.space).voice_records()
    held = sum(len(items) for items in records.values())
    if held != history.expected_records:
        raise ReplayIncomplete(
            f"the fresh device holds {held} records; the history has {history.expected_records}"
        )


def full_replay(history: History, *, profiled: bool = False) -> tuple[Timing, dict[str, Any]]:
    """Load ``history`` into a fresh device; returns the time and what happened.

    Raises:
        ReplayIncomplete: a record of the history is not readable afterwards.
    """
    with tempfile.TemporaryDirectory(prefix="accord-bench-replay-") as directory:
        account = _fresh_device(history, Path(directory))
        try:
            replica = account.adopt_space(history.space, kind=SpaceKind.SHARED, label="us")
            for envelope in history.envelopes:
                replica.accept_key_envelope(envelope)
            events: list[object] = []

            def work() -> None:
                events.extend(replica.ingest_many(history.entries))

            details: dict[str, Any] = {}
            if profiled:
                wall, cpu = time.perf_counter(), time.process_time()
                details["profile"] = profile(work)
                timing = Timing(
                    wall=time.perf_counter() - wall, cpu=time.process_time() - cpu, runs=1
                )
            else:
                timing = best_of(work, repeats=1)
            check_complete(account, history)
            details["applied"] = sum(
                1
                for event in events
                if isinstance(event, Accepted) and event.content is ContentState.APPLIED
            )
            reasons: dict[str, int] = {}
            for event in events:
                if isinstance(event, Waiting):
                    reasons[event.reason.value] = reasons.get(event.reason.value, 0) + 1
            details["waited"] = sum(reasons.values())
            details["wait_reasons"] = reasons
        finally:
            account.close()
    return timing, details


# -- the benchmark --------------------------------------------------------------------


def _row(
    history: History, measured: Timing, limit: Timing, *, by_cpu: bool = False
) -> dict[str, Any]:
    """A result row; the ratio is of CPU times when ``by_cpu`` (work that never waits,
    where CPU time is the steadier measure on a shared machine), else of wall times."""
    count = len(history.entries)
    spent, bare = (measured.cpu, limit.cpu) if by_cpu else (measured.wall, limit.wall)
    return {
        "entries": count,
        "data_entries": len(history.generated),
        "time": measured.to_json(),
        "raw_limit": limit.to_json(),
        "ratio_of": "cpu" if by_cpu else "wall",
        "per_entry_us": round(spent / count * 1e6, 1),
        "raw_per_entry_us": round(bare / count * 1e6, 1),
        "ratio": ratio(spent, bare),
    }


def _full_sweep(
    history: History,
    settings: ReplaySettings,
    log: Callable[[str], None],
    label: str,
) -> dict[str, Any]:
    def measure(size: int) -> tuple[float, dict[str, Any]]:
        part = history.prefix(size)
        limit = raw_limit(part, repeats=3)
        measured, details = full_replay(part)
        row = _row(part, measured, limit) | {
            "waited": details["waited"],
            "wait_reasons": details["wait_reasons"],
        }
        log(
            f"  full path, {label}: {size} entries in {measured.wall:.1f} s "
            f"({row['per_entry_us'] / 1000:.2f} ms/entry, {row['ratio']}x raw)"
        )
        return measured.wall, row

    sizes = [size for size in settings.full_sizes if size <= len(history.generated)]
    return {"history": label} | sweep(
        sizes, budget_s=settings.full_budget_s, measure=measure
    ).to_json()


def run(
    *,
    two_writers: History,
    one_writer: History,
    settings: ReplaySettings,
    log: Callable[[str], None],
) -> dict[str, Any]:
    """Benchmark 1; ``two_writers`` and ``one_writer`` are at least the largest size."""
    protocol_rows: list[dict[str, Any]] = []
    for size in settings.sizes:
        part = two_writers.prefix(size)
        repeats = settings.repeats if size <= 20_000 else 2
        opened: list[int] = []
        limit, measured = interleaved(
            [raw_work(part), functools.partial(_opened_into, opened, part)], repeats=repeats
        )
        if opened[-1] != _data_entries(part):
            raise ReplayIncomplete("the protocol path did not open every data entry")
        row = _row(part, measured, limit, by_cpu=True)
        protocol_rows.append(row)
        log(
            f"  protocol path: {size} entries in {measured.cpu:.2f} s CPU, raw {limit.cpu:.2f} s "
            f"({row['ratio']}x)"
        )
    full = [
        _full_sweep(two_writers, settings, log, "both partners writing"),
        _full_sweep(one_writer, settings, log, "one partner writing"),
    ]
    profiles = {}
    for label, history in (
        ("both partners writing", two_writers),
        ("one partner writing", one_writer),
    ):
        size = min(settings.profile_size, len(history.generated))
        _, details = full_replay(history.prefix(size), profiled=True)
        profiles[label] = details["profile"] | {"data_entries": size}
    protocol_profile = profile(lambda: protocol_replay(two_writers.prefix(settings.sizes[0])))
    return {
        "target_ratio": TARGET_RATIO,
        "protocol_path": protocol_rows,
        "full_path": full,
        "profiles": {
            "full_path": profiles,
            "protocol_path": protocol_profile | {"data_entries": settings.sizes[0]},
        },
    }
