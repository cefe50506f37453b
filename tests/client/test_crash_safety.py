"""A process killed in the middle of writing loses nothing it had acknowledged."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from client_lib.account import Account
from client_lib.keystore import FAST_FOR_TESTS

ROOT = Path(__file__).resolve().parents[2]

WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from client_lib.account import Account

    base = Path(sys.argv[1])
    account = Account.open("writer", base=base)
    space = bytes.fromhex(sys.argv[2])
    agreements = account.space(space).agreements
    n = 0
    while True:
        view = agreements.create_item(kind="limit", level="no", title=f"item {n}")
        # The write returned: it is acknowledged to the user.
        print(view.item.hex(), flush=True)
        n += 1
    """
)


def test_kill_mid_write_loop_keeps_every_acknowledged_write(tmp_path: Path) -> None:
    account = Account.create(
        "writer", display_name="W", no_passphrase=True, base=tmp_path, limits=FAST_FOR_TESTS
    )
    space = account.create_space("us").space
    account.close()
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    acknowledged: list[str] = []
    for round_ in range(2):
        process = subprocess.Popen(
            [sys.executable, str(script), str(tmp_path), space.hex()],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=ROOT,
            text=True,
        )
        assert process.stdout is not None
        deadline = time.monotonic() + 30
        wanted = 25 + 10 * round_
        while len(acknowledged) < wanted and time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            acknowledged.append(line.strip())
        process.send_signal(signal.SIGKILL)
        process.wait()
        assert len(acknowledged) >= wanted, process.stderr.read() if process.stderr else ""
    reopened = Account.open("writer", base=tmp_path)
    handle = reopened.space(space)
    held = {view.item.hex() for view in handle.agreements.items()}
    assert set(acknowledged) <= held
    # Every acknowledged write is also still in the outbox, ready for the relay.
    outbox = reopened.replica(space).pending_outbox()
    assert len(outbox) >= len(acknowledged)
    seqs = [entry.seq for entry in outbox]
    assert seqs == sorted(seqs) == list(range(seqs[0], seqs[0] + len(seqs)))
    # And the feed is still one clean chain: more writes go on from where it stopped.
    handle.agreements.create_item(kind="limit", level="no", title="after the crash")
    assert reopened.replica(space).status().waiting == 0
