"""A browser device and a Python device, paired as a new user would pair them, through a
real relay on loopback, in both directions; both make offline edits, including a
concurrent yes and no on the same item, and both end in the same state.

The browser is the web client (clients/web) in headless Chromium, driven by clicking its
screens (``browser_driver.py``). The Python device is ``client_lib``. Set
``ACCORD_WEB_SCREENSHOTS=1`` to write the screens to docs/screenshots/.
"""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from browser_driver import BrowserDevice, qr_video, serve_build
from conftest import TEST_RELAY_SETTINGS
from web_helpers import REPO, require_chromium, require_node

from client_lib.account import Account
from client_lib.pairing import JoinOffer, JoinRequest, Outcome, create_invite, join
from client_lib.pairing_qr import decode_qr_image
from client_lib.sync import SyncEngine
from protocol.crypto import safety_number
from protocol.pairing_codes import Purpose

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

SCREENSHOTS = REPO / "docs" / "screenshots"
PASSPHRASE = "a quiet afternoon"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def web_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    require_node()
    require_chromium()
    with serve_build(tmp_path_factory.mktemp("web") / "dist") as url:
        yield url


@pytest.fixture(scope="module")
def relay_url(web_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A relay of its own on SQLite, allowing the web client's origin (CORS), with the
    test relays' high rate limits (every test of the module pairs from 127.0.0.1, faster
    than the default pairing limit refills). Its log is relay.log beside its database."""
    port = free_port()
    database = tmp_path_factory.mktemp("relay") / "relay.db"
    limits = [
        item
        for name, value in TEST_RELAY_SETTINGS.items()
        for item in ("--" + name.replace("_", "-"), str(value))
    ]
    with (database.parent / "relay.log").open("ab") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "server.cli",
                "serve",
                "--port",
                str(port),
                "--database-url",
                f"sqlite+aiosqlite:///{database}",
                "--cors-origin",
                web_url,
                *limits,
            ],
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/healthz", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("the relay did not start") from None
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture
async def browser(web_url: str) -> AsyncIterator[BrowserDevice]:
    device = await BrowserDevice.start(web_url)
    yield device
    await device.close()


async def sync(account: Account, space: bytes, relay_url: str) -> None:
    replica = account.replica(space)
    async with SyncEngine(
        replica, device_key=account.keystore.device_key, relay_url=relay_url
    ) as e:
        await e.sync()


def python_items(account: Account, space: bytes) -> list[tuple[str, str, str]]:
    return sorted(
        (view.title, view.status.value, view.level.value)
        for view in account.space(space).agreements.items()
    )


async def browser_items(browser: BrowserDevice) -> list[tuple[str, str, str]]:
    await browser.call("sync")
    items = (await browser.call("items"))["items"]
    return sorted((item["title"], item["status"], item["level"]) for item in items)


def item_of(account: Account, space: bytes, title: str) -> Any:
    return next(v for v in account.space(space).agreements.items() if v.title == title)


def shot_path(name: str) -> str | None:
    """Where to write a screenshot, when ACCORD_WEB_SCREENSHOTS asks for them."""
    if not os.environ.get("ACCORD_WEB_SCREENSHOTS"):
        return None
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return str(SCREENSHOTS / f"{name}.png")


async def shot(browser: BrowserDevice, name: str) -> None:
    path = shot_path(name)
    if path is not None:
        await browser.call("screenshot", path=path)


async def offline_edits_meet(
    browser: BrowserDevice, python: Account, space: bytes, relay_url: str
) -> list[tuple[str, str, str]]:
    """Both sides agree on "Massage" at ask, then edit offline: the browser says yes, the
    Python side says no, and each adds an item. Returns the state both end in."""
    agreements = python.space(space).agreements
    await browser.call("add_item", title="Massage", kind="permission", level="ask")
    await browser.settle()
    await sync(python, space, relay_url)
    massage = item_of(python, space, "Massage")
    assert massage.status.value == "pending"
    agreements.affirm(massage.heads[0].id)
    await sync(python, space, relay_url)
    assert await browser_items(browser) == python_items(python, space)
    assert ("Massage", "agreed", "ask") in python_items(python, space)

    # Offline on both sides: the browser has no network, the Python side does not sync.
    await browser.call("offline", on=True)
    await browser.call("set_level", title="Massage", level="yes")
    await browser.call("add_item", title="Photos", kind="limit", level="no")
    agreements.change_item(item_of(python, space, "Massage").item, level="no")
    agreements.create_item(kind="preference", level="yes", title="Slow mornings")
    state = await browser.call("state")
    assert any(s["outbox"] > 0 for s in state["spaces"]), "offline edits wait in the outbox"
    await shot(browser, "offline-edit")
    await asyncio.sleep(1)
    await browser.call("offline", on=False)

    await browser.settle()
    await sync(python, space, relay_url)
    final_python = python_items(python, space)
    final_browser = await browser_items(browser)
    assert final_browser == final_python
    massage = item_of(python, space, "Massage")
    assert len(massage.heads) == 2, "the concurrent yes and no are two heads"
    assert ("Massage", "pending", "no") in final_python, "a concurrent yes never beats a no"
    return final_python


async def test_the_browser_shows_the_qr_and_the_python_side_joins(
    browser: BrowserDevice, relay_url: str, tmp_path: Path
) -> None:
    await browser.call("setup", name="Alex", passphrase=PASSPHRASE, relay=relay_url)
    invite = await browser.call("start_and_invite")
    await shot(browser, "invite-qr")
    picture = tmp_path / "invite.png"
    picture.write_bytes(base64.b64decode(invite["png"]))
    uri = decode_qr_image(picture)
    assert uri.startswith("accord://pair/1?")

    sam = Account.create("sam", display_name="Sam", no_passphrase=True, base=tmp_path)
    offers: list[JoinOffer] = []
    joined, approved = await asyncio.gather(
        join(sam, uri, on_offer=offers.append),
        browser.call("approve", shot=shot_path("approve")),
    )
    assert joined.outcome is Outcome.JOINED
    assert approved["name"] == "Sam" and approved["title"] == "You are connected"
    assert offers and offers[0].sas == approved["sas"] and offers[0].inviter_name == "Alex"
    space = joined.space
    await browser.settle()
    await sync(sam, space, relay_url)
    roster = sam.replica(space).roster
    assert len(roster.members) == 2
    alex_device = next(device for device in roster.active_devices if device != sam.device)
    expected = safety_number([alex_device], [sam.device])
    assert (await browser.call("safety_number"))["safety"] == expected

    final = await offline_edits_meet(browser, sam, space, relay_url)
    assert {title for title, _, _ in final} == {"Massage", "Photos", "Slow mornings"}
    await shot(browser, "agreements")
    path = shot_path("item")
    if path is not None:
        await browser.call("screenshot_item", title="Massage", path=path)


async def python_invites_browser(
    browser: BrowserDevice, relay_url: str, tmp_path: Path, *, by: str = "picture"
) -> tuple[Account, Any]:
    """Alex (Python) founds a space and shows a QR code; Sam's browser joins from its
    picture (``by="picture"``) or by typing the code shown under it (``by="code"``)."""
    alex = Account.create("alex", display_name="Alex", no_passphrase=True, base=tmp_path)
    handle = alex.create_space("us")
    handle.agreements.create_item(kind="limit", level="no", title="No surprises")
    await sync(alex, handle.space, relay_url)
    invitation = await create_invite(
        alex, handle.space, relay_url=relay_url, purpose=Purpose.PARTNER
    )
    await browser.call("setup", name="Sam", passphrase=PASSPHRASE, relay=relay_url)
    requests: list[JoinRequest] = []

    async def decide(request: JoinRequest) -> bool:
        requests.append(request)
        return request.name == "Sam"

    result, joined = await asyncio.gather(
        invitation.run(decide),
        browser.call("join", png=base64.b64encode(invitation.qr_png).decode())
        if by == "picture"
        else browser.call(
            "join", code=invitation.code.upper().replace("-", " "), shot=shot_path("join")
        ),
    )
    assert result.outcome is Outcome.JOINED
    assert joined["title"] == "You are connected"
    assert requests and requests[0].sas == joined["sas"]
    await browser.settle()
    await sync(alex, handle.space, relay_url)
    return alex, handle


async def test_the_python_side_shows_the_qr_and_the_browser_joins_from_its_picture(
    browser: BrowserDevice, relay_url: str, tmp_path: Path
) -> None:
    alex, handle = await python_invites_browser(browser, relay_url, tmp_path)
    assert await browser_items(browser) == python_items(alex, handle.space)
    assert ("No surprises", "pending", "no") in python_items(alex, handle.space)

    final = await offline_edits_meet(browser, alex, handle.space, relay_url)
    assert {"No surprises", "Massage", "Photos", "Slow mornings"} == {t for t, _, _ in final}

    # A pause from the browser is in force on the Python side at once after a sync.
    await browser.call("pause")
    await shot(browser, "paused")
    await browser.settle()
    await sync(alex, handle.space, relay_url)
    assert {level for _, _, level in python_items(alex, handle.space)} == {"no"}
    await browser.call("resume")
    await browser.settle()
    await sync(alex, handle.space, relay_url)
    assert await browser_items(browser) == python_items(alex, handle.space)


async def test_the_crisis_plan_and_a_shared_check_in_cross_over(
    browser: BrowserDevice, relay_url: str, tmp_path: Path
) -> None:
    alex, handle = await python_invites_browser(browser, relay_url, tmp_path)
    wording = "Breathe. Step apart. Talk when we are both ready."
    await browser.call("plan", text=wording)
    await browser.call(
        "plan", step={"section": "cooling-off", "text": "A walk on our own", "minutes": 20}
    )
    await browser.settle()
    await sync(alex, handle.space, relay_url)
    assert handle.plan.wording() == wording
    steps = [(s.section.value, s.text, s.minutes) for s in handle.plan.steps()]
    assert ("cooling-off", "A walk on our own", 20) in steps

    # Both edit the wording; the Python edit lands in the browser's text.
    handle.plan.set_wording(wording + " Call a friend if it helps.")
    await sync(alex, handle.space, relay_url)
    await browser.call("sync")
    shown = await browser.call("plan")
    assert shown["text"] == handle.plan.wording()
    await shot(browser, "crisis-plan")

    await browser.call(
        "checkin", safety=4, feels_safe="Slow pace", would_help="More check-ins", share=True
    )
    await browser.settle()
    await sync(alex, handle.space, relay_url)
    shared = handle.checkins.shared()
    assert [(c.safety, c.feels_safe, c.would_help) for c in shared] == [
        (4, "Slow pace", "More check-ins")
    ]


async def test_the_browser_joins_by_typing_the_code(
    browser: BrowserDevice, relay_url: str, tmp_path: Path
) -> None:
    alex, handle = await python_invites_browser(browser, relay_url, tmp_path, by="code")
    await browser.call("add_item", title="Holding hands", kind="permission", level="yes")
    await browser.settle()
    await sync(alex, handle.space, relay_url)
    item = item_of(alex, handle.space, "Holding hands")
    handle.agreements.affirm(item.heads[0].id)
    await sync(alex, handle.space, relay_url)
    assert ("Holding hands", "agreed", "yes") in await browser_items(browser)
    assert await browser_items(browser) == python_items(alex, handle.space)


async def test_new_entries_are_pushed_to_the_browser_over_the_websocket(
    browser: BrowserDevice, relay_url: str, tmp_path: Path
) -> None:
    alex, handle = await python_invites_browser(browser, relay_url, tmp_path)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while not all(space["live"] for space in (await browser.call("state"))["spaces"]):
        assert loop.time() < deadline, "the WebSocket did not open"
        await asyncio.sleep(0.3)

    # The browser polls only every 20 s while its socket is open: a quick arrival is a push.
    handle.agreements.create_item(kind="signal", level="yes", title="Red card means stop")
    await sync(alex, handle.space, relay_url)
    pushed_by = loop.time() + 8
    while True:
        titles = [item["title"] for item in (await browser.call("items"))["items"]]
        if "Red card means stop" in titles:
            break
        assert loop.time() < pushed_by, "the entry was not pushed"
        await asyncio.sleep(0.3)


async def test_the_browser_opens_offline_keeps_its_edits_and_syncs_them_later(
    browser: BrowserDevice, relay_url: str, tmp_path: Path
) -> None:
    alex, handle = await python_invites_browser(browser, relay_url, tmp_path)
    await asyncio.sleep(1)  # the offline shell caches the page's files
    await browser.call("offline", on=True)
    await browser.call("reload", passphrase=PASSPHRASE)  # opened with no network at all
    assert ("No surprises", "pending", "no") in {
        (i["title"], i["status"], i["level"]) for i in (await browser.call("items"))["items"]
    }
    await browser.call("add_item", title="Quiet evenings", kind="preference", level="ask")
    await browser.call("reload", passphrase=PASSPHRASE)  # still offline: the edit is kept
    state = await browser.call("state")
    assert sum(space["outbox"] for space in state["spaces"]) >= 1
    await browser.call("offline", on=False)
    await browser.settle()
    await sync(alex, handle.space, relay_url)
    assert "Quiet evenings" in [title for title, _, _ in python_items(alex, handle.space)]
    assert await browser_items(browser) == python_items(alex, handle.space)


async def test_the_browser_scans_the_qr_code_with_its_camera(
    web_url: str, relay_url: str, tmp_path: Path
) -> None:
    alex = Account.create("alex", display_name="Alex", no_passphrase=True, base=tmp_path)
    handle = alex.create_space("us")
    handle.agreements.create_item(kind="limit", level="no", title="No surprises")
    await sync(alex, handle.space, relay_url)
    invitation = await create_invite(
        alex, handle.space, relay_url=relay_url, purpose=Purpose.PARTNER
    )
    camera = qr_video(invitation.qr_png, tmp_path / "camera.y4m")
    phone = await BrowserDevice.start(web_url, camera=camera)
    try:
        await phone.call("setup", name="Sam", passphrase=PASSPHRASE, relay=relay_url)

        async def decide(request: JoinRequest) -> bool:
            return request.name == "Sam"

        result, joined = await asyncio.gather(
            invitation.run(decide), phone.call("join", camera=True)
        )
        assert result.outcome is Outcome.JOINED
        assert joined["title"] == "You are connected"
        await phone.settle()
        assert await browser_items(phone) == python_items(alex, handle.space)
    finally:
        await phone.close()


async def test_the_browser_links_another_device_of_its_person_by_typed_code(
    browser: BrowserDevice, relay_url: str, tmp_path: Path
) -> None:
    alex, handle = await python_invites_browser(browser, relay_url, tmp_path)
    invite = await browser.call("invite_my_device")
    laptop = Account.create(
        "sam-laptop",
        display_name="Sam’s laptop",
        no_passphrase=True,
        base=tmp_path,
        found_private_space=False,
    )
    typed = invite["code"].replace("-", " ")
    joined, approved = await asyncio.gather(
        join(laptop, typed, relay_url=relay_url), browser.call("approve")
    )
    assert joined.outcome is Outcome.JOINED and approved["name"] == "Sam’s laptop"
    await browser.settle()
    await sync(laptop, handle.space, relay_url)
    roster = laptop.replica(handle.space).roster
    sam_member = roster.member_of(laptop.device)
    assert sam_member != alex.member_id and len(roster.members) == 2
    assert len(roster.devices_of(sam_member)) == 2, "the laptop is Sam's second device"
    # What the laptop affirms is Sam's word everywhere.
    view = item_of(laptop, handle.space, "No surprises")
    laptop.space(handle.space).agreements.affirm(view.heads[0].id)
    await sync(laptop, handle.space, relay_url)
    await sync(alex, handle.space, relay_url)
    assert ("No surprises", "agreed", "no") in python_items(alex, handle.space)
    assert await browser_items(browser) == python_items(alex, handle.space)
