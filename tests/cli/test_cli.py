"""The `accord` CLI end to end: real subprocesses, a real relay on loopback.

Each test drives the installed entry point (``python -m clients.cli.main``) the way a
person or a script would, with its own ``ACCORD_HOME``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


class Cli:
    def __init__(self, home: Path) -> None:
        self.env = dict(os.environ)
        self.env["ACCORD_HOME"] = str(home)
        self.env.pop("ACCORD_PASSPHRASE", None)
        self.env["PYTHONPATH"] = str(REPO)

    def run(
        self, *args: str, ok: bool = True, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "clients.cli.main", *args],
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
        )
        if ok and result.returncode != 0:
            raise AssertionError(
                f"accord {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
            )
        return result

    def json(self, *args: str) -> object:
        return json.loads(self.run(*args, "--json").stdout)

    def start(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "clients.cli.main", *args],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
        )


def _pair_by_qr(cli: Cli, relay: str, tmp_path: Path) -> None:
    cli.run("init", "--name", "Sam", "--relay", relay, "--no-passphrase")
    cli.run("sync")
    png = tmp_path / "invite.png"
    inviter = cli.start("pair", "--png", str(png), "--yes")
    for _ in range(200):
        if png.exists() and png.stat().st_size > 0:
            break
        time.sleep(0.05)
    assert png.exists(), inviter.stderr.read() if inviter.stderr else ""
    joined = cli.run(
        "join", "--qr-image", str(png), "--name", "Alex", "--profile", "alex", "--no-passphrase"
    )
    out, err = inviter.communicate(timeout=60)
    assert inviter.returncode == 0, out + err
    sas_joiner = [line for line in joined.stdout.splitlines() if "same number" in line]
    sas_inviter = [line for line in out.splitlines() if "same number" in line]
    assert sas_joiner and sas_joiner[0].split(":")[-1] == sas_inviter[0].split(":")[-1]
    assert "The device was added" in out


def _items(cli: Cli, *profile: str) -> dict[str, dict[str, object]]:
    found = cli.json("items", *profile)
    assert isinstance(found, list)
    return {item["title"]: item for item in found}


@pytest.mark.parametrize("shared_relay", ["sqlite"], indirect=True)
def test_pair_edit_offline_sync_pause_repair(tmp_path: Path, shared_relay) -> None:
    cli = Cli(tmp_path / "home")
    alex = ("--profile", "alex")
    _pair_by_qr(cli, shared_relay.url, tmp_path)

    cli.run("items", "add", "Kissing", "--level", "ask", "--kind", "permission")
    cli.run("sync")
    cli.run("sync", *alex)
    item = _items(cli, *alex)["Kissing"]
    assert item["status"] == "pending" and item["level"] == "no"
    cli.run("items", "affirm", str(item["item"])[:8], *alex)
    cli.run("sync", *alex)
    cli.run("sync")
    assert _items(cli)["Kissing"]["status"] == "agreed"

    # Offline on both sides: a concurrent yes and no.
    cli.run("items", "change", str(item["item"])[:8], "--level", "yes")
    cli.run("items", "change", str(item["item"])[:8], "--level", "no", *alex)
    assert _items(cli, *alex)["Kissing"]["level"] == "no"  # in force at once, offline
    for args in ((), alex, ()):
        cli.run("sync", *args)
    sam_view, alex_view = _items(cli)["Kissing"], _items(cli, *alex)["Kissing"]
    assert sam_view["level"] == alex_view["level"] == "no"
    assert sam_view["status"] == alex_view["status"] == "pending"
    assert len(sam_view["heads"]) == 2

    # Pause: only the pauser resumes.
    cli.run("pause", *alex)
    cli.run("sync", *alex)
    cli.run("sync")
    listing = cli.run("items").stdout
    assert "Paused by Alex" in listing
    assert "Only the person who paused" in cli.run("resume").stdout
    cli.run("resume", *alex)
    cli.run("sync", *alex)
    cli.run("sync")
    assert "Paused by" not in cli.run("items").stdout

    # Repair: named, acknowledged by the other, closed only by the person harmed.
    named = cli.json("repair", "name", "Went past ask", "--harmed", "me", *alex)
    repair = str(named["id"])[:8]  # type: ignore[index]
    cli.run("sync", *alex)
    cli.run("sync")
    cli.run("repair", "acknowledge", repair, "I did that, and it mattered.")
    refused = cli.run("repair", "close", repair, ok=False)
    assert refused.returncode == 1 and "harmed" in refused.stderr
    assert "Traceback" not in refused.stderr
    cli.run("sync")
    cli.run("sync", *alex)
    cli.run("repair", "close", repair, "Thank you.", *alex)
    entries = cli.json("repair", *alex)
    assert entries[0]["closed"] is True  # type: ignore[index]


@pytest.mark.parametrize("shared_relay", ["sqlite"], indirect=True)
def test_export_import_and_wipe(tmp_path: Path, shared_relay) -> None:
    cli = Cli(tmp_path / "home")
    cli.run("init", "--name", "Sam", "--relay", shared_relay.url, "--no-passphrase")
    cli.run("items", "add", "Safe word: orange", "--level", "yes", "--kind", "signal")
    backup = tmp_path / "backup.accord"
    secret = {"ACCORD_PASSPHRASE": "a long backup passphrase"}
    cli.run("export", str(backup), env=secret)
    assert b"orange" not in backup.read_bytes()
    wrong = cli.run(
        "import", str(backup), "--profile", "restored", ok=False, env={"ACCORD_PASSPHRASE": "nope"}
    )
    assert wrong.returncode == 1 and "passphrase" in wrong.stderr
    cli.run("import", str(backup), "--profile", "restored", env=secret)
    assert "Safe word: orange" in _items(cli, "--profile", "restored")
    refused = cli.run("wipe", ok=False)
    assert refused.returncode == 1 and "confirmation" in refused.stderr
    cli.run("wipe", "--yes")
    gone = cli.run("items", ok=False)
    assert gone.returncode == 1 and "no profile" in gone.stderr.lower()


def test_passphrase_protects_the_profile(tmp_path: Path) -> None:
    cli = Cli(tmp_path / "home")
    good = {"ACCORD_PASSPHRASE": "correct horse battery staple"}
    cli.run("init", "--name", "Sam", "--relay", "http://127.0.0.1:9", env=good)
    cli.run("items", "add", "Cuddling", "--level", "yes", env=good)
    wrong = cli.run("items", ok=False, env={"ACCORD_PASSPHRASE": "wrong"})
    assert wrong.returncode == 1 and "does not open" in wrong.stderr
    keystore = next((tmp_path / "home").rglob("keystore.accord")).read_bytes()
    assert b"Cuddling" not in keystore
    unreachable = cli.run("sync", ok=False, env=good)
    assert unreachable.returncode == 1 and "cannot be reached" in unreachable.stderr
    assert "kept on this device" in unreachable.stderr


def test_help_has_examples(tmp_path: Path) -> None:
    cli = Cli(tmp_path / "home")
    for command in (
        "init",
        "pair",
        "join",
        "items",
        "pause",
        "checkin",
        "repair",
        "plan",
        "journal",
        "sync",
        "status",
        "timeline",
        "export",
        "import",
        "wipe",
        "devices",
    ):
        text = cli.run(command, "--help").stdout
        assert "example:" in text and "--profile" in text, command


def test_demo_runs_to_the_end(tmp_path: Path) -> None:
    cli = Cli(tmp_path / "home")
    result = cli.run("demo", "--json")
    summary = json.loads(result.stdout)
    assert summary["pending_level"] == "no" and summary["pending_status"] == "pending"
    assert summary["final_status"] == "agreed" and summary["devices_agree"]
    assert summary["relay_saw_titles"] is False
