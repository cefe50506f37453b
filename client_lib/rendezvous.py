"""The relay's pairing rendezvous, from a device's side (SPEC.md sections 9.8 and 11.4).

A :class:`Rendezvous` makes and claims channels; a :class:`Channel` is one side's handle
on one channel: it posts this side's messages and long-polls for the other side's, in
order. Messages are opaque bytes here; :mod:`client_lib.pairing` gives them meaning.

Errors::

    RelayCallError                 the relay refused a call (client_lib.relay_client)
    └── RendezvousError            a channel cannot be used
        ├── ChannelGoneError       ``unknown_channel``: expired, deleted, or never there
        └── ChannelClaimedError    ``channel_claimed``: another device claimed it first

``code`` is the relay's own error code (SPEC.md section 10), so a front end that handles
``RelayCallError`` by code handles these too. No answer at all is
:class:`~client_lib.relay_client.RelayUnreachable`. Side tokens and message bodies
are never logged or shown.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from client_lib.relay_client import RelayCallError, RelayUnreachable, b64, unb64

#: Longest long-poll the relay grants (its ``pairing_wait_seconds``); asking for more is
#: refused, so this is also what a Channel asks for.
LONG_POLL_SECONDS = 25
#: Seconds one HTTP call may take beyond its long-poll.
CALL_TIMEOUT = 15.0


class RendezvousError(RelayCallError):
    """A pairing channel cannot be used; ``code`` is the relay's reason."""

    relay_code = "unknown_channel"
    http_status = 404

    def __init__(self, message: str) -> None:
        super().__init__(self.relay_code, message, self.http_status)


class ChannelGoneError(RendezvousError):
    """The channel expired or was deleted (by the other device, after a failure)."""

    relay_code = "unknown_channel"
    http_status = 404


class ChannelClaimedError(RendezvousError):
    """Another device claimed this channel first: the code was already used."""

    relay_code = "channel_claimed"
    http_status = 409


@dataclass(frozen=True, slots=True, kw_only=True)
class Grant:
    """One side's access to a channel, as the relay handed it out."""

    channel: str
    side_token: str = field(repr=False)
    expires_at: int
    nameplate: str | None = None


class Rendezvous:
    """Unauthenticated calls to one relay's pairing endpoints."""

    def __init__(self, base_url: str, *, session: aiohttp.ClientSession | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self._session = session
        self._own_session = session is None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
            self._own_session = True
        return self._session

    async def close(self) -> None:
        if self._own_session and self._session is not None and not self._session.closed:
            await self._session.close()

    async def _call(
        self,
        method: str,
        path: str,
        *,
        body: dict[str, Any] | None = None,
        token: str | None = None,
        params: dict[str, str] | None = None,
        wait: float = 0.0,
    ) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        timeout = aiohttp.ClientTimeout(total=wait + CALL_TIMEOUT)
        try:
            async with self.session.request(
                method,
                self.base_url + path,
                json=body,
                headers=headers,
                params=params,
                timeout=timeout,
            ) as response:
                text = await response.text()
                status = response.status
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise RelayUnreachable(f"cannot reach the relay at {self.base_url}: {exc}") from None
        try:
            data = json.loads(text) if text else {}
        except ValueError:
            data = {}
        if 200 <= status < 300:
            return data if isinstance(data, dict) else {}
        error = data.get("error", {}) if isinstance(data, dict) else {}
        code = str(error.get("code", "unknown")) if isinstance(error, dict) else "unknown"
        message = str(error.get("message", f"HTTP {status}")) if isinstance(error, dict) else ""
        if code == "unknown_channel":
            raise ChannelGoneError("the pairing code has expired or was cancelled; start again")
        if code == "channel_claimed":
            raise ChannelClaimedError("this code was already used by another device")
        raise RelayCallError(code, message, status)

    @staticmethod
    def _grant(data: dict[str, Any]) -> Grant:
        try:
            return Grant(
                channel=str(data["channel"]),
                side_token=str(data["side_token"]),
                expires_at=int(data["expires_at"]),
                nameplate=str(data["nameplate"]) if data.get("nameplate") is not None else None,
            )
        except (KeyError, TypeError, ValueError):
            raise RelayCallError("bad_response", "the relay's answer has no channel", 200) from None

    async def create(self) -> Channel:
        """A new channel with a nameplate; this device is side A."""
        grant = self._grant(
            await self._call("POST", "/v1/pairing/channels", body={"nameplate": True})
        )
        if grant.nameplate is None:
            raise RelayCallError("bad_response", "the relay gave no nameplate", 201)
        return Channel(self, grant)

    async def claim(self, channel: str) -> Channel:
        """Claim a channel by id (from a QR code); this device is side B.

        Raises:
            ChannelGoneError: no such channel, or it expired.
            ChannelClaimedError: someone claimed it already.
        """
        return Channel(
            self, self._grant(await self._call("POST", f"/v1/pairing/channels/{channel}/claim"))
        )

    async def claim_nameplate(self, nameplate: str) -> Channel:
        """Claim a channel by its nameplate (from a typed code); this device is side B.

        Raises:
            ChannelGoneError, ChannelClaimedError: as :meth:`claim`.
        """
        path = f"/v1/pairing/nameplates/{nameplate}/claim"
        return Channel(self, self._grant(await self._call("POST", path)))


class Channel:
    """One side of one channel: post messages, take the other side's in order, delete."""

    def __init__(self, rendezvous: Rendezvous, grant: Grant) -> None:
        self.rendezvous = rendezvous
        self.grant = grant
        self._after = 0
        self._inbox: deque[bytes] = deque()
        self.closed = False

    @property
    def id(self) -> str:
        return self.grant.channel

    async def post(self, data: bytes) -> None:
        """Post one message.

        Raises:
            ChannelGoneError: the channel is gone.
            RelayCallError: the relay refused it (too large, channel full...).
        """
        await self.rendezvous._call(
            "POST",
            f"/v1/pairing/channels/{self.id}/messages",
            body={"body": b64(data)},
            token=self.grant.side_token,
        )

    async def receive(self, *, deadline: float) -> bytes:
        """The other side's next message, waiting until ``deadline`` (``time.monotonic``).

        Raises:
            TimeoutError: nothing came before the deadline.
            ChannelGoneError: the channel is gone (expired, or deleted by the other side).
        """
        while not self._inbox:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("the other device did not answer in time")
            wait = max(0, min(LONG_POLL_SECONDS, int(remaining)))
            data = await self.rendezvous._call(
                "GET",
                f"/v1/pairing/channels/{self.id}/messages",
                token=self.grant.side_token,
                params={"after": str(self._after), "wait": str(wait)},
                wait=wait,
            )
            items = data.get("messages", [])
            if not isinstance(items, list):
                raise RelayCallError("bad_response", "the relay's answer has no messages", 200)
            for item in items:
                try:
                    seq = int(item["seq"])
                    body = unb64(item["body"])
                except (KeyError, TypeError, ValueError):
                    raise RelayCallError(
                        "bad_response", "a pairing message is garbled", 200
                    ) from None
                if seq > self._after:
                    self._after = seq
                    self._inbox.append(body)
            if not items and wait == 0:
                await asyncio.sleep(min(0.2, max(0.0, remaining)))
        return self._inbox.popleft()

    async def delete(self) -> None:
        """Delete the channel for both sides; a channel already gone is fine."""
        if self.closed:
            return
        self.closed = True
        try:
            await self.rendezvous._call(
                "DELETE", f"/v1/pairing/channels/{self.id}", token=self.grant.side_token
            )
        except (RendezvousError, RelayCallError, RelayUnreachable):
            pass
