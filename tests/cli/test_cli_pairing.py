"""`accord pair --self` and `accord join` end to end: the linked device reads the journal.

Real subprocesses and a real relay on loopback (SQLite and PostgreSQL), as in test_cli.py.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from test_cli import Cli


def _link_by_qr(
    cli: Cli, tmp_path: Path, *, name: str, profile: str, by: tuple[str, ...] = ()
) -> tuple[str, str]:
    """Run `accord pair --self` on a device and `accord join` on a new profile; return
    both outputs."""
    png = tmp_path / f"invite-{profile}.png"
    inviter = cli.start("pair", "--self", "--png", str(png), "--yes", *by)
    for _ in range(200):
        if png.exists() and png.stat().st_size > 0:
            break
        time.sleep(0.05)
    assert png.exists(), inviter.stderr.read() if inviter.stderr else ""
    joined = cli.run(
        "join", "--qr-image", str(png), "--name", name, "--profile", profile, "--no-passphrase"
    )
    out, err = inviter.communicate(timeout=60)
    assert inviter.returncode == 0, out + err
    return out, joined.stdout


def test_a_device_linked_with_pair_self_reads_and_writes_the_journal(
    tmp_path: Path, shared_relay: Any
) -> None:
    cli = Cli(tmp_path / "home")
    phone = ("--profile", "phone")
    cli.run("init", "--name", "Alex", "--relay", shared_relay.url, "--no-passphrase")
    cli.run("journal", "Written on the laptop before the phone existed.")
    # Not synced on purpose: `accord pair` sends what is waiting before it makes a code.

    inviter_out, joiner_out = _link_by_qr(cli, tmp_path, name="Alex’s phone", profile="phone")
    assert "would also read your journal" in inviter_out
    assert "It shares your space, your journal and private answers" in inviter_out
    assert "Your journal and private answers are on this device too." in joiner_out
    assert "not part of" not in joiner_out

    assert "Written on the laptop before the phone existed." in cli.run("journal", *phone).stdout

    cli.run("journal", "Written on the phone.", *phone)
    cli.run("sync", *phone)
    cli.run("sync")
    laptop_view = cli.json("journal")
    assert isinstance(laptop_view, list)
    assert [entry["text"] for entry in laptop_view] == [
        "Written on the laptop before the phone existed.",
        "Written on the phone.",
    ]
    # The phone is Alex: one member with two devices, in the shared space's roster too.
    devices = cli.json("devices", *phone)
    assert isinstance(devices, list) and len(devices) == 2
    assert len({device["member"] for device in devices}) == 1


def test_a_third_device_linked_from_the_second_reads_everything(
    tmp_path: Path, shared_relay: Any
) -> None:
    cli = Cli(tmp_path / "home")
    cli.run("init", "--name", "Alex", "--relay", shared_relay.url, "--no-passphrase")
    cli.run("journal", "From the first device.")
    _link_by_qr(cli, tmp_path, name="Alex’s phone", profile="phone")
    cli.run("journal", "From the second device.", "--profile", "phone")
    _, joiner_out = _link_by_qr(
        cli, tmp_path, name="Alex’s tablet", profile="tablet", by=("--profile", "phone")
    )
    assert "Your journal and private answers are on this device too." in joiner_out
    entries = cli.json("journal", "--profile", "tablet")
    assert isinstance(entries, list)
    texts = [entry["text"] for entry in entries]
    assert texts == ["From the first device.", "From the second device."]
