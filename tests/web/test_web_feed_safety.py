"""The browser's two safety features, across clients, through a real relay on loopback:

* a relay that comes back on an older copy of its database (a rollback, SPEC 4.5.5): the
  browser says so calmly, keeps everything it holds, sends back its own lost entries, and
  goes on writing;
* removing a device from the browser's screens (SPEC 5.3, 6.3): the Python partner sees
  it removed, the new key reaches every device that stays, and the removed device cannot
  read what is written after.

The browser is the web client in headless Chromium, driven by clicking its screens
(``browser_driver.py``); the other devices are ``client_lib``. Each test has a relay of
its own on SQLite, allowing the web client's origin. ``ACCORD_WEB_SCREENSHOTS=1`` writes
the screens to docs/screenshots/.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from browser_driver import BrowserDevice, DriverError
from conftest import copy_sqlite_database, make_database
from test_cross_client import (
    PASSPHRASE,
    browser,  # noqa: F401  (a fixture)
    browser_items,
    python_invites_browser,
    python_items,
    shot,
    shot_path,
    sync,
    web_url,  # noqa: F401  (a fixture)
)

from client_lib.account import Account
from client_lib.pairing import Outcome, join
from client_lib.relay_client import RelayCallError, RelayClient
from protocol.crypto import fingerprint

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture
def own_relay(web_url: str, tmp_path: Path, start_relay: Any) -> Any:  # noqa: F811
    """A relay process of this test's own (it is stopped and restarted), on SQLite."""
    url, _cleanup = make_database("sqlite", tmp_path / "db")
    return start_relay(url, cors_origin=web_url)


async def relay_heads(relay_url: str, account: Account, space: bytes) -> dict[bytes, int]:
    """The relay's head of every feed of ``space``, asked directly by ``account``'s device."""
    key = account.keystore.device_key
    async with RelayClient(relay_url, device_key=key, space=space) as client:
        heads = await client.heads()
    return {device: head.seq for device, head in heads.items()}


async def wait_for_notice(browser: BrowserDevice, kind: str, present: bool = True) -> list[Any]:  # noqa: F811
    """Sync the browser until the status area shows (or no longer shows) a notice."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    while True:
        await browser.call("sync")
        notices = (await browser.call("notices"))["notices"]
        if any(n["kind"] == kind for n in notices) == present:
            return list(notices)
        if loop.time() > deadline:
            where = "missing" if present else "still there"
            raise DriverError(f"the notice {kind} is {where}: {notices}")
        await asyncio.sleep(0.5)


async def test_a_relay_rolled_back_to_an_older_copy_is_told_and_nothing_is_lost(
    browser: BrowserDevice,  # noqa: F811
    own_relay: Any,
    tmp_path: Path,
) -> None:
    relay = own_relay
    alex, handle = await python_invites_browser(browser, relay.url, tmp_path)
    space = handle.space
    await browser.call("add_item", title="Old news", kind="limit", level="no")
    await browser.settle()
    await sync(alex, space, relay.url)
    assert (await browser.call("notices"))["notices"] == []

    relay.stop()
    restore = copy_sqlite_database(relay.database_url, tmp_path / "old-copy")
    relay.start()

    # Life goes on: both write, and both hold everything.
    await browser.call("add_item", title="Sam later", kind="permission", level="yes")
    handle.agreements.create_item(kind="limit", level="ask", title="Alex later")
    await browser.settle()
    await sync(alex, space, relay.url)
    before = await browser_items(browser)
    assert before == python_items(alex, space)
    assert {"Old news", "Sam later", "Alex later"} <= {title for title, _, _ in before}
    high = await relay_heads(relay.url, alex, space)

    relay.stop()
    restore()  # the relay comes back on the older copy of its database
    relay.start()
    served = await relay_heads(relay.url, alex, space)
    assert all(served.get(device, 0) < seq for device, seq in high.items()), (served, high)

    notices = await wait_for_notice(browser, "rollback")
    rollback = next(n for n in notices if n["kind"] == "rollback")
    assert "older copy" in rollback["text"] and "Nothing is lost" in rollback["text"]
    await shot(browser, "rollback")
    # The browser kept everything it held, whatever the relay says now.
    assert await browser_items(browser) == before
    problems = (await browser.call("devices"))["problems"]
    assert any("went back to an older copy" in p for p in problems), problems

    # It sent back its own lost entries, so its new writes go through again.
    await browser.call("add_item", title="After the rollback", kind="limit", level="no")
    await browser.settle()
    browser_device = next(d for d in high if d != alex.device)
    assert (await relay_heads(relay.url, alex, space))[browser_device] == high[browser_device] + 1
    # Alex's feed is still behind on the relay: the notice stays until it is back.
    assert any(n["kind"] == "rollback" for n in (await browser.call("notices"))["notices"])

    await sync(alex, space, relay.url)  # Alex's device puts back its own entries too
    assert (await relay_heads(relay.url, alex, space))[alex.device] == high[alex.device]
    await wait_for_notice(browser, "rollback", present=False)
    assert "After the rollback" in {title for title, _, _ in python_items(alex, space)}
    assert await browser_items(browser) == python_items(alex, space)
    # What the relay showed is kept with the space in IndexedDB: opened again, the page
    # still tells of the rollback.
    await browser.call("reload", passphrase=PASSPHRASE)
    problems = (await browser.call("devices"))["problems"]
    assert any("has caught up since" in p for p in problems), problems


async def test_removing_a_device_from_the_browser_cuts_it_off_from_what_comes_after(
    browser: BrowserDevice,  # noqa: F811
    own_relay: Any,
    tmp_path: Path,
) -> None:
    relay = own_relay
    alex, handle = await python_invites_browser(browser, relay.url, tmp_path)
    space = handle.space

    # Sam's browser links Sam's laptop (a Python device) by the typed code.
    invite = await browser.call("invite_my_device")
    laptop = Account.create(
        "sam-laptop",
        display_name="Sam’s laptop",
        no_passphrase=True,
        base=tmp_path,
        found_private_space=False,
    )
    joined, _ = await asyncio.gather(
        join(laptop, invite["code"].replace("-", " "), relay_url=relay.url),
        browser.call("approve"),
    )
    assert joined.outcome is Outcome.JOINED
    await browser.settle()
    await sync(laptop, space, relay.url)
    await sync(alex, space, relay.url)
    assert laptop.device in alex.replica(space).roster.active_devices

    listed = (await browser.call("devices"))["devices"]
    assert len(listed) == 3
    by_print = {d["fingerprint"]: d for d in listed}
    mine = by_print[fingerprint(laptop.device)]
    partner = by_print[fingerprint(alex.device)]
    this = next(d for d in listed if d["this"])
    assert mine["owner"] == "You" and mine["active"] and mine["removable"]
    assert partner["owner"] == "Alex" and not partner["removable"], "a partner's device is theirs"
    assert this["owner"] == "You" and not this["removable"]

    removed = await browser.call(
        "remove_device", fingerprint=fingerprint(laptop.device), shot=shot_path("remove-device")
    )
    assert "removed" in removed["message"] and "new key" in removed["message"]
    state = await browser.settle()
    # Self pairing linked the laptop to Sam's private space too: it left both, and both
    # have a new key.
    assert [(s["kind"], s["epoch"]) for s in state["spaces"]] == [
        ("private", 1),
        ("relationship", 1),
    ]

    # Alex's device sees the laptop removed, takes the new key and writes with it.
    await sync(alex, space, relay.url)
    roster = alex.replica(space).roster
    assert laptop.device not in roster.active_devices and roster.epoch == 1
    assert 1 in alex.keystore.epoch_keys(space)
    handle.agreements.create_item(kind="limit", level="no", title="Written after the removal")
    await sync(alex, space, relay.url)
    assert ("Written after the removal", "pending", "no") in await browser_items(browser)
    assert await browser_items(browser) == python_items(alex, space)
    listed = (await browser.call("devices"))["devices"]
    assert not next(d for d in listed if d["fingerprint"] == fingerprint(laptop.device))["active"]

    # The laptop: the relay no longer lets it in, and with every entry in hand it still
    # cannot read what was written after, since it never got the new key.
    with pytest.raises(RelayCallError) as refused:
        await sync(laptop, space, relay.url)
    assert refused.value.code == "device_removed"
    assert 1 not in laptop.keystore.epoch_keys(space)
    alex_feed = alex.replica(space).feed_entries(alex.device)
    laptop.replica(space).ingest_many(alex_feed)
    titles = {title for title, _, _ in python_items(laptop, space)}
    assert "Written after the removal" not in titles
    assert "No surprises" in titles, "what it held before stays readable: no forward secrecy"
