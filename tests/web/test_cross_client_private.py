"""Self pairing between the browser and a Python device links the member's private space
(SPEC.md 11.12), in both directions, through a real relay on loopback.

Private check-in answers are what the browser keeps in the private space: an answer kept
"just for you" on one device is read on the other, as the same member's, and never
reaches the partner.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import test_cross_client as cross
from browser_driver import BrowserDevice

from client_lib.account import Account
from client_lib.checkins import CheckIns
from client_lib.pairing import JoinRequest, Outcome, create_invite, join
from client_lib.sync import SyncEngine
from protocol.pairing_codes import Purpose

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

# The cross-client fixtures: a web build, a relay of this module's own, a browser.
web_url = cross.web_url
relay_url = cross.relay_url
browser = cross.browser


async def sync_all(account: Account, relay: str) -> None:
    for info in account.spaces():
        replica = account.replica(info.space)
        async with SyncEngine(
            replica, device_key=account.keystore.device_key, relay_url=relay
        ) as e:
            await e.sync()


def private_answers(account: Account, space: bytes) -> list[str]:
    """What ``account`` reads of its member's check-in answers kept private."""
    checkins: CheckIns = account.space(space).checkins
    return [view.record.feels_safe for view in checkins.mine() if not view.shared]


async def test_the_browser_links_its_private_space_to_a_python_device(
    browser: BrowserDevice, relay_url: str, tmp_path: Path
) -> None:
    alex, handle = await cross.python_invites_browser(browser, relay_url, tmp_path)
    await browser.call("checkin", safety=4, feels_safe="Quiet evenings")
    await browser.settle()

    invite = await browser.call("invite_my_device")
    laptop = Account.create(
        "sam-laptop",
        display_name="Sam’s laptop",
        no_passphrase=True,
        base=tmp_path,
        found_private_space=False,
    )
    joined, approved = await asyncio.gather(
        join(laptop, invite["code"], relay_url=relay_url), browser.call("approve")
    )
    assert joined.outcome is Outcome.JOINED and approved["name"] == "Sam’s laptop"
    assert joined.private_space is not None
    private = laptop.private_replica()
    assert private is not None and private.space == joined.private_space
    assert private.roster.members == {laptop.member_id} != {alex.member_id}
    assert private_answers(laptop, handle.space) == ["Quiet evenings"]
    # Alex, the partner, holds nothing of it.
    assert not alex.keystore.has_space(joined.private_space)


async def test_a_python_device_links_its_private_space_to_the_browser(
    browser: BrowserDevice, relay_url: str, tmp_path: Path
) -> None:
    alex = Account.create("alex", display_name="Alex", no_passphrase=True, base=tmp_path)
    handle = alex.create_space("us")
    alex.space(handle.space).checkins.record(safety=3, feels_safe="Kept on the laptop")
    await sync_all(alex, relay_url)
    invitation = await create_invite(alex, handle.space, relay_url=relay_url, purpose=Purpose.SELF)
    assert invitation.private_space is not None
    await browser.call("setup", name="Alex’s browser", passphrase=cross.PASSPHRASE, relay=relay_url)
    requests: list[JoinRequest] = []

    async def decide(request: JoinRequest) -> bool:
        requests.append(request)
        return True

    result, joined = await asyncio.gather(
        invitation.run(decide), browser.call("join", code=invitation.code)
    )
    assert result.outcome is Outcome.JOINED and joined["title"] == "You are connected"
    assert requests[0].private, "the browser asked for the private space"
    assert result.private_space == invitation.private_space
    state = await browser.settle()
    kinds = sorted(s["kind"] for s in state["spaces"])
    assert kinds == ["private", "private", "relationship"]  # its own, and Alex's

    # A private answer on the browser goes to Alex's private space, as Alex's.
    await browser.call("checkin", safety=4, feels_safe="Kept on the browser")
    await browser.settle()
    await sync_all(alex, relay_url)
    assert sorted(private_answers(alex, handle.space)) == [
        "Kept on the browser",
        "Kept on the laptop",
    ]
    held = alex.replica(invitation.private_space)
    assert held.roster.members == {alex.member_id}
    assert len(held.roster.active_devices) == 2
    assert not held.problems()
