"""Accounts that talk to a real relay, and a small man-in-the-middle proxy for it.

``publish`` and ``pull`` move a space's entries and key envelopes between an account and
the relay with the real relay client (what a sync engine does, without the live part).
``founder`` makes a device with a space on the relay; :class:`Screens` is what both
screens show and the inviter person's answer; ``pair`` runs both sides at once.
:class:`RelayProxy` is an aiohttp server on loopback that forwards everything to the
relay, and lets a test rewrite the pairing messages each side posts: a relay that tries
to swap keys, guess a code or flip a byte.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from client_lib.account import Account
from client_lib.pairing import Invitation, JoinOffer, JoinRequest, join
from client_lib.relay_client import RelayCallError, RelayClient, b64, unb64
from protocol.entry import Entry


def make_account(base: Path, profile: str, name: str, **kwargs: Any) -> Account:
    return Account.create(profile, display_name=name, no_passphrase=True, base=base, **kwargs)


async def publish(account: Account, space: bytes, relay_url: str) -> None:
    """Upload this device's unacknowledged entries and envelopes (creating the space on
    the relay from its founding entry when the relay does not know it yet)."""
    replica = account.replica(space)
    async with RelayClient(relay_url, device_key=account.keystore.device_key, space=space) as relay:
        pending = replica.pending_outbox()
        if (
            pending
            and pending[0].seq == 1
            and Entry.from_bytes(pending[0].raw).type.value == "roster"
        ):
            try:
                await relay.create_space(pending[0].raw)
            except RelayCallError as error:
                if error.code != "space_exists":
                    raise
            replica.mark_acknowledged([pending[0].id])
            pending = pending[1:]
        for start in range(0, len(pending), 32):
            results = await relay.append([item.raw for item in pending[start : start + 32]])
            replica.mark_acknowledged([result.id for result in results])
        envelopes = replica.pending_envelopes()
        if envelopes:
            await relay.put_envelopes([item.data for item in envelopes])
            replica.mark_envelopes_delivered([(item.recipient, item.epoch) for item in envelopes])


async def pull(account: Account, space: bytes, relay_url: str) -> list[Any]:
    """Fetch and ingest everything new, and take the envelopes addressed to this device."""
    replica = account.replica(space)
    events: list[Any] = []
    async with RelayClient(relay_url, device_key=account.keystore.device_key, space=space) as relay:
        async for page in relay.fetch_all(replica.have_vector()):
            events.extend(replica.ingest_many(page.entries))
        for data in await relay.get_envelopes():
            events.extend(replica.accept_key_envelope(data))
    return events


Rewrite = Callable[[str, bytes], bytes]


@dataclass
class RelayProxy:
    """A loopback HTTP proxy in front of the relay that can rewrite pairing messages.

    Everything is forwarded as it is, except that each pairing message a side *reads* goes
    through ``rewrite(author, body)`` first, where ``author`` is the side that posted it
    (``"a"``, the channel's creator, or ``"b"``, its claimant): a relay serving what it
    likes. ``posted`` keeps every message as its author posted it.
    """

    upstream: str
    rewrite: Rewrite | None = None
    posted: list[tuple[str, bytes]] = field(default_factory=list)
    _sides: dict[str, str] = field(default_factory=dict)
    _runner: web.AppRunner | None = None
    _client: aiohttp.ClientSession | None = None
    url: str = ""

    async def start(self) -> str:
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        self._client = aiohttp.ClientSession(auto_decompress=False)
        return self.url

    async def stop(self) -> None:
        if self._client is not None:
            await self._client.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        assert self._client is not None
        body = await request.read()
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        path = request.path
        messages = path.startswith("/v1/pairing/") and path.endswith("/messages")
        if request.method == "POST" and messages:
            self.posted.append((self._sides.get(token, "?"), unb64(json.loads(body)["body"])))
        headers = {
            name: value
            for name, value in request.headers.items()
            if name.lower() in {"authorization", "content-type"}
        }
        async with self._client.request(
            request.method, self.upstream + request.path_qs, data=body or None, headers=headers
        ) as answer:
            payload = await answer.read()
            status = answer.status
            content_type = answer.content_type
        if request.method == "POST" and status in (200, 201) and path.startswith("/v1/pairing/"):
            grant = json.loads(payload)
            if "side_token" in grant:
                self._sides[grant["side_token"]] = "b" if path.endswith("/claim") else "a"
        if request.method == "GET" and messages and status == 200 and self.rewrite is not None:
            author = "a" if self._sides.get(token) == "b" else "b"
            data = json.loads(payload)
            for item in data.get("messages", []):
                item["body"] = b64(self.rewrite(author, unb64(item["body"])))
            payload = json.dumps(data).encode()
        return web.Response(body=payload, status=status, content_type=content_type)


async def founder(tmp_path: Path, relay_url: str, name: str = "Alex") -> tuple[Account, bytes]:
    """A device that founded a space, wrote one agreement, and put it on the relay."""
    account = make_account(tmp_path, name.lower(), name)
    handle = account.create_space("us")
    handle.agreements.create_item(kind="limit", level="no", title="No surprises")
    await publish(account, handle.space, relay_url)
    return account, handle.space


class Screens:
    """What both screens showed, and the inviter person's decision."""

    def __init__(self, approve: bool = True) -> None:
        self.approve = approve
        self.request: JoinRequest | None = None
        self.offer: JoinOffer | None = None
        self.offer_shown = asyncio.Event()

    async def decide(self, request: JoinRequest) -> bool:
        self.request = request
        await asyncio.wait_for(self.offer_shown.wait(), 10)
        return self.approve

    def show_offer(self, offer: JoinOffer) -> None:
        self.offer = offer
        self.offer_shown.set()


async def pair(
    invitation: Invitation, joiner: Account, invite: str, screens: Screens, relay_url: str
) -> tuple[Any, Any]:
    return await asyncio.gather(
        invitation.run(screens.decide),
        join(joiner, invite, relay_url=relay_url, on_offer=screens.show_offer),
    )
