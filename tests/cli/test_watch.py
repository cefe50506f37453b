"""`accord sync --watch`: what arrives is told in plain sentences as it lands."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.cli.test_cli import Cli, _pair_by_qr


@pytest.mark.parametrize("shared_relay", ["sqlite"], indirect=True)
def test_watch_tells_what_the_partner_changed(tmp_path: Path, shared_relay) -> None:
    cli = Cli(tmp_path / "home")
    alex = ("--profile", "alex")
    _pair_by_qr(cli, shared_relay.url, tmp_path)
    cli.run("sync")
    watcher = cli.start("sync", "--watch", "--timeout", "20")
    try:
        assert watcher.stdout is not None
        first = watcher.stdout.readline()
        assert "Staying in sync" in first, first
        time.sleep(1.0)  # the live connection opens
        cli.run("items", "add", "Kissing", "--level", "ask", "--kind", "permission", *alex)
        cli.run("sync", *alex)
        cli.run("pause", *alex)
        cli.run("sync", *alex)
        out, err = watcher.communicate(timeout=60)
    finally:
        if watcher.poll() is None:
            watcher.kill()
    assert watcher.returncode == 0, out + err
    added = "Alex added “Kissing” at ask. Waiting for your re-affirmation; holding at no."
    assert added in out, out
    assert "Alex paused. Everything is a no for now." in out, out
    assert "Something new arrived" not in out
    assert "Traceback" not in err
