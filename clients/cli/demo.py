"""`accord demo`: the whole story in a temporary directory, through the real code paths.

1. An embedded relay on SQLite starts on a free loopback port (the `accord-relay`
   program, as an operator would run it).
2. Two partners, Sam and Alex, each get a device (a profile). Sam's device shows a QR
   code, written to a PNG; Alex's device decodes that picture and joins through the
   relay's rendezvous; both see the same short number and Sam approves.
3. They agree on two items, then, offline, Sam widens one to "yes" while Alex narrows
   it to "no".
4. They sync: the "no" is in force, pending re-affirmation.
5. Both re-affirm one version, sync, and the item is agreed again.

Every step goes through `client_lib` exactly as the other commands do: the keystore,
the local store, the sync engine over HTTP and WebSocket, and pairing.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from client_lib.account import Account
from client_lib.keystore import FAST_FOR_TESTS
from client_lib.pairing import JoinOffer, JoinRequest, create_invite, join
from client_lib.pairing_qr import decode_qr_image
from client_lib.paths import HOME_ENV
from client_lib.sync import SyncEngine, set_relay_url
from clients.cli.agreement_commands import item_rows
from clients.cli.context import CliError, Context
from clients.cli.output import Output
from protocol.pairing_codes import Purpose


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_relay(directory: Path, port: int) -> subprocess.Popen[bytes]:
    database = directory / "relay.sqlite3"
    command = [
        sys.executable,
        "-m",
        "server.cli",
        "serve",
        "--port",
        str(port),
        "--database-url",
        f"sqlite+aiosqlite:///{database}",
        "--log-level",
        "warning",
    ]
    log = (directory / "relay.log").open("wb")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise CliError(
                "The demo relay did not start.", f"Its log is in {directory / 'relay.log'}."
            )
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as answer:
                if answer.status == 200:
                    return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise CliError(
        "The demo relay did not answer in time.", f"Its log is in {directory / 'relay.log'}."
    )


async def _sync(account: Account) -> None:
    for info in account.spaces():
        replica = account.replica(info.space)
        async with SyncEngine(replica, device_key=account.keystore.device_key) as engine:
            report = await engine.sync()
        for problem in report.problems:
            raise CliError(f"The demo found a problem it did not expect: {problem.describe()}")


def _table(out: Output, who: str, account: Account, space: bytes) -> None:
    handle = account.space(space)
    ctx = Context(args=None, out=out, profile=who, account=account)
    out.table(
        f"{who}'s device",
        ["Id", "Item", "Kind", "In force", "State", "Notes"],
        item_rows(ctx, handle, out),
    )


async def _story(out: Output, relay: str, workdir: Path) -> dict[str, Any]:
    out.step("Sam and Alex each set up a device (keys stay on each device).")
    sam = Account.create("sam", display_name="Sam", no_passphrase=True, limits=FAST_FOR_TESTS)
    alex = Account.create(
        "alex",
        display_name="Alex",
        no_passphrase=True,
        limits=FAST_FOR_TESTS,
        found_private_space=False,
    )
    try:
        handle = sam.create_space("us")
        space = handle.space
        for info in sam.spaces():
            set_relay_url(sam.replica(info.space), relay)
        await _sync(sam)

        out.step("Sam's device shows a QR code; Alex's device reads it from the picture.")
        invitation = await create_invite(sam, space, relay_url=relay, purpose=Purpose.PARTNER)
        png = workdir / "invite.png"
        png.write_bytes(invitation.qr_png)
        uri = decode_qr_image(png)
        if uri != invitation.uri:
            raise CliError("The QR code did not decode to the invite it was made from.")
        out.note(f"  (QR code written to {png}; typed fallback: {invitation.code})")
        numbers: dict[str, str] = {}

        def decide(request: JoinRequest) -> bool:
            numbers["sam"] = request.sas
            out.note(f"  Sam's screen: '{request.name}' asks to join; number {request.sas}")
            return True  # Sam compares the numbers and says yes

        def show(offer: JoinOffer) -> None:
            numbers["alex"] = offer.sas
            out.note(f"  Alex's screen: joining {offer.inviter_name}'s space; number {offer.sas}")

        inviter = asyncio.create_task(invitation.run(decide))
        joined = await join(alex, uri, on_offer=show)
        await inviter
        if numbers.get("sam") != numbers.get("alex"):
            raise CliError("The two screens showed different numbers; the demo stops here.")
        alex.found_private_space()
        for info in alex.spaces():
            set_relay_url(alex.replica(info.space), joined.relay)
        alex.space(space).agreements.set_my_name("Alex")
        await _sync(alex)
        await _sync(sam)
        out.say("  Paired: both screens showed the same number, and Sam approved.")

        out.step("Sam proposes two agreements; Alex affirms both.")
        sam_agreements = sam.space(space).agreements
        kissing = sam_agreements.create_item(kind="permission", level="ask", title="Kissing").item
        sam_agreements.create_item(kind="limit", level="no", title="Being woken up by touch")
        await _sync(sam)
        await _sync(alex)
        alex_agreements = alex.space(space).agreements
        for view in alex_agreements.items():
            alex_agreements.affirm(view.heads[0].id)
        await _sync(alex)
        await _sync(sam)
        _table(out, "Sam", sam, space)

        out.step(
            "Offline, at the same moment: Sam changes 'Kissing' to yes, Alex to no; "
            "Alex also proposes a safe word."
        )
        sam_agreements.change_item(kissing, level="yes")
        alex_agreements.change_item(kissing, level="no")
        alex_agreements.create_item(kind="signal", level="yes", title="Safe word: 'orange'")
        out.note("  Alex's 'no' is in force on Alex's device at once, before any sync.")

        out.step("Both devices sync. The 'no' wins at once; the item waits for re-affirmation.")
        await _sync(sam)
        await _sync(alex)
        await _sync(sam)
        _table(out, "Sam", sam, space)
        _table(out, "Alex", alex, space)
        pending = sam_agreements.item(kissing)

        out.step(
            "They talk it over. Sam writes one version at 'no' over both and Alex affirms "
            "it; Sam affirms the safe word."
        )
        sam_agreements.change_item(kissing, level="no")
        await _sync(sam)
        await _sync(alex)
        alex_agreements.affirm(alex_agreements.item(kissing).heads[0].id)
        await _sync(alex)
        await _sync(sam)
        safe_word = next(v for v in sam_agreements.items() if v.title.startswith("Safe word"))
        sam_agreements.affirm(safe_word.heads[0].id)
        await _sync(sam)
        await _sync(alex)
        _table(out, "Alex", alex, space)
        agreed = alex_agreements.item(kissing)
        same = [(v.item, v.status, v.level) for v in sam_agreements.items()] == [
            (v.item, v.status, v.level) for v in alex_agreements.items()
        ]
        return {
            "paired": True,
            "pending_level": pending.level.value,
            "pending_status": pending.status.value,
            "final_level": agreed.level.value,
            "final_status": agreed.status.value,
            "devices_agree": same,
        }
    finally:
        sam.close()
        alex.close()


def run_demo(args: Any, out: Output) -> int:
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="accord-demo-"))
    previous = os.environ.get(HOME_ENV)
    os.environ[HOME_ENV] = str(workdir / "devices")
    relay_process = None
    try:
        port = _free_port()
        out.step(
            f"Starting a relay on SQLite at http://127.0.0.1:{port} (it stores only ciphertext)."
        )
        relay_process = _start_relay(workdir, port)
        result = asyncio.run(_story(out, f"http://127.0.0.1:{port}", workdir))
        database = (workdir / "relay.sqlite3").read_bytes()
        result["relay_saw_titles"] = b"Kissing" in database
        seconds = time.monotonic() - started
        if result["relay_saw_titles"]:
            out.warn("The relay's database holds a plaintext title. This must never happen.")
        else:
            out.step(
                f"Done in {seconds:.1f} s. The relay's database holds only ciphertext: "
                "no title appears in it."
            )
        out.data(result)
        ok = (
            result["pending_level"] == "no"
            and result["pending_status"] == "pending"
            and result["final_status"] == "agreed"
            and result["devices_agree"]
            and not result["relay_saw_titles"]
        )
        return 0 if ok else 1
    finally:
        if relay_process is not None:
            relay_process.terminate()
            try:
                relay_process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                relay_process.kill()
        if previous is None:
            os.environ.pop(HOME_ENV, None)
        else:
            os.environ[HOME_ENV] = previous
        if getattr(args, "keep", False):
            out.note(f"Everything the demo made is in {workdir}.")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
