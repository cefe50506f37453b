"""A typed client of the relay's HTTP and WebSocket API (SPEC.md section 9).

One :class:`RelayClient` talks to one relay for one device in one space. It handles the
challenge–response token and renews it when the relay says it has expired. It knows
nothing about documents or the agreement rule: it moves entry bytes and key envelopes.

Errors::

    RelayCallError              the relay answered with an error body
    RelayUnreachable            no answer: connection refused, reset or timed out

``RelayCallError.code`` is the relay's stable code (SPEC.md section 10), so callers
decide on codes, never on message text.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp

from protocol import encoding
from protocol.crypto import DeviceKey, SigContext

#: Seconds before one HTTP call gives up.
DEFAULT_TIMEOUT = 30.0


def b64(data: bytes) -> str:
    """base64url without padding (SPEC.md section 1)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64(text: str) -> bytes:
    """Decode base64url with or without padding.

    Raises:
        ValueError: not base64url.
    """
    if not isinstance(text, str):
        raise ValueError("expected a base64url string")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class RelayCallError(Exception):
    """The relay refused a call; ``code`` is its stable error code."""

    def __init__(self, code: str, message: str, status: int) -> None:
        super().__init__(f"{message} [{code}]")
        self.code = code
        self.message = message
        self.status = status


class RelayUnreachable(Exception):
    """The relay could not be reached, or the connection broke mid-call."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AppendResult:
    id: bytes
    seq: int
    status: str  # "stored" or "duplicate"


@dataclass(frozen=True, slots=True, kw_only=True)
class FetchPage:
    entries: list[bytes]
    cursor: int
    more: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class RelayHead:
    seq: int
    id: bytes


class RelayClient:
    """One device's connection to one relay for one space."""

    def __init__(
        self,
        base_url: str,
        *,
        device_key: DeviceKey,
        space: bytes,
        session: aiohttp.ClientSession | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.device_key = device_key
        self.space = space
        self._own_session = session is None
        self._session = session
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._token: str | None = None

    async def __aenter__(self) -> RelayClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
            self._own_session = True
        return self._session

    async def close(self) -> None:
        if self._own_session and self._session is not None and not self._session.closed:
            await self._session.close()

    # -- plumbing ----------------------------------------------------------------------

    async def _call(
        self,
        method: str,
        path: str,
        *,
        body: Mapping[str, Any] | None = None,
        authorized: bool = True,
        params: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        for attempt in range(2):
            headers = {}
            if authorized:
                headers["Authorization"] = f"Bearer {await self.token()}"
            try:
                async with self.session.request(
                    method,
                    self.base_url + path,
                    json=body,
                    headers=headers,
                    params=params,
                ) as response:
                    text = await response.text()
                    status = response.status
            except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                raise RelayUnreachable(
                    f"cannot reach the relay at {self.base_url}: {exc}"
                ) from None
            try:
                data = json.loads(text) if text else {}
            except ValueError:
                data = {}
            if 200 <= status < 300 and isinstance(data, dict):
                return data
            error = data.get("error", {}) if isinstance(data, dict) else {}
            code = str(error.get("code", "unknown")) if isinstance(error, dict) else "unknown"
            message = str(error.get("message", f"HTTP {status}")) if isinstance(error, dict) else ""
            if authorized and code == "unauthorized" and attempt == 0:
                self._token = None  # expired or revoked: get a fresh one once
                continue
            raise RelayCallError(code, message, status)
        raise RelayCallError("unauthorized", "the relay refused a fresh token", 401)

    # -- authentication (SPEC 9.3) -----------------------------------------------------

    async def token(self) -> str:
        """A bearer token for this device and space, fetched on first use."""
        if self._token is None:
            self._token = await self._authenticate()
        return self._token

    async def _authenticate(self) -> str:
        device = self.device_key.public
        challenge = await self._call(
            "POST",
            "/v1/auth/challenge",
            body={"space": b64(self.space), "device": b64(device)},
            authorized=False,
        )
        nonce = unb64(challenge["challenge"])
        message = SigContext.AUTH + encoding.encode(
            {"space": self.space, "device": device, "challenge": nonce}
        )
        answer = await self._call(
            "POST",
            "/v1/auth/token",
            body={
                "space": b64(self.space),
                "device": b64(device),
                "challenge": b64(nonce),
                "sig": b64(self.device_key.sign(message)),
            },
            authorized=False,
        )
        token = answer["token"]
        if not isinstance(token, str):
            raise RelayCallError("bad_response", "the relay sent no token", 200)
        return token

    # -- spaces and entries (SPEC 9.2, 9.4–9.7) ----------------------------------------

    async def create_space(self, founding_entry: bytes) -> None:
        """Register the space with its founding roster entry (seq 1, op found).

        Raises:
            RelayCallError: ``space_exists`` and others.
        """
        signature = self.device_key.sign(SigContext.CREATE_SPACE + self.space)
        await self._call(
            "POST",
            "/v1/spaces",
            body={"space": b64(self.space), "entry": b64(founding_entry), "sig": b64(signature)},
            authorized=False,
        )

    async def append(self, entries: list[bytes]) -> list[AppendResult]:
        """Append a batch of this device's entries; idempotent.

        Raises:
            RelayCallError: the first refused entry's code (earlier ones are stored).
        """
        data = await self._call(
            "POST",
            f"/v1/spaces/{b64(self.space)}/entries",
            body={"entries": [b64(entry) for entry in entries]},
        )
        return [
            AppendResult(id=unb64(item["id"]), seq=int(item["seq"]), status=str(item["status"]))
            for item in data.get("results", [])
        ]

    async def fetch(
        self, have: Mapping[bytes, int], *, after: int = 0, limit: int | None = None
    ) -> FetchPage:
        """One page of the entries this device lacks, in feed order."""
        body: dict[str, Any] = {"have": {b64(d): seq for d, seq in have.items()}, "after": after}
        if limit is not None:
            body["limit"] = limit
        data = await self._call("POST", f"/v1/spaces/{b64(self.space)}/fetch", body=body)
        return FetchPage(
            entries=[unb64(item) for item in data.get("entries", [])],
            cursor=int(data.get("cursor", after)),
            more=bool(data.get("more", False)),
        )

    async def fetch_all(self, have: Mapping[bytes, int]) -> AsyncIterator[FetchPage]:
        """Every page the relay has beyond ``have``."""
        after = 0
        while True:
            page = await self.fetch(have, after=after)
            yield page
            if not page.more or page.cursor <= after:
                return
            after = page.cursor

    async def heads(self) -> dict[bytes, RelayHead]:
        """The relay's head of every feed of the space (for rollback checks)."""
        data = await self._call("GET", f"/v1/spaces/{b64(self.space)}/heads")
        return {
            unb64(device): RelayHead(seq=int(item["seq"]), id=unb64(item["id"]))
            for device, item in data.get("heads", {}).items()
        }

    async def roster(self) -> list[dict[str, Any]]:
        data = await self._call("GET", f"/v1/spaces/{b64(self.space)}/roster")
        devices = data.get("devices", [])
        return list(devices) if isinstance(devices, list) else []

    async def put_envelopes(self, envelopes: list[bytes]) -> None:
        await self._call(
            "PUT",
            f"/v1/spaces/{b64(self.space)}/keys",
            body={"envelopes": [b64(item) for item in envelopes]},
        )

    async def get_envelopes(self, epoch: int | None = None) -> list[bytes]:
        params = None if epoch is None else {"epoch": str(epoch)}
        data = await self._call("GET", f"/v1/spaces/{b64(self.space)}/keys", params=params)
        return [unb64(item) for item in data.get("envelopes", [])]

    # -- WebSocket (SPEC 9.6) ----------------------------------------------------------

    @asynccontextmanager
    async def websocket(self) -> AsyncIterator[LiveConnection]:
        """A live connection: the relay pushes new entries; appends may go through it.

        Raises:
            RelayUnreachable: the socket cannot be opened.
            RelayCallError: the relay refused the token.
        """
        url = self.base_url.replace("http://", "ws://", 1).replace("https://", "wss://", 1)
        url += f"/v1/spaces/{b64(self.space)}/ws"
        try:
            ws = await self.session.ws_connect(url, heartbeat=20.0, max_msg_size=8 * 1024 * 1024)
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise RelayUnreachable(
                f"cannot open a live connection to {self.base_url}: {exc}"
            ) from None
        try:
            await ws.send_json({"type": "auth", "token": await self.token()})
            first = await ws.receive(timeout=15)
            if first.type != aiohttp.WSMsgType.TEXT:
                raise RelayUnreachable("the live connection closed before it was ready")
            ready = json.loads(first.data)
            if ready.get("type") == "error":
                error = ready.get("error", {})
                code = str(error.get("code", "unknown"))
                if code == "unauthorized":
                    self._token = None
                raise RelayCallError(code, str(error.get("message", "")), 401)
            yield LiveConnection(ws)
        except (TimeoutError, aiohttp.ClientError, ConnectionError) as exc:
            raise RelayUnreachable(f"the live connection broke: {exc}") from None
        finally:
            await ws.close()


class LiveConnection:
    """An open WebSocket to the relay (after the ``ready`` message)."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws

    async def pushes(self) -> AsyncIterator[list[bytes]]:
        """Batches of entries the relay pushes, until the socket closes.

        Raises:
            RelayCallError: the relay closed the socket with an error (e.g. device removed).
        """
        async for message in self.ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                break
            try:
                body = json.loads(message.data)
            except ValueError:
                continue
            kind = body.get("type")
            if kind == "entries":
                yield [unb64(item) for item in body.get("entries", [])]
            elif kind == "error" and body.get("id") is None:
                error = body.get("error", {})
                raise RelayCallError(
                    str(error.get("code", "unknown")), str(error.get("message", "")), 0
                )
