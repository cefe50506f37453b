"""Test helpers for the relay: devices that write real signed feeds, and a thin HTTP caller.

Entries are made with the protocol core (``seal``, ``seal_roster``, roster records), so
what the relay checks in these tests is exactly what a client would send.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from protocol.crypto import DeviceKey, member_id_of, random_bytes
from protocol.entry import Entry, SeenHead, seal, seal_roster
from protocol.epochs import wrap_epoch_key
from protocol.roster import (
    AddDevice,
    AddMember,
    Found,
    Record,
    RemoveDevice,
    RemoveMember,
    encode_record,
    join_proof,
)
from server.auth import auth_message

EPOCH_KEY = bytes(range(32))


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Device:
    """One device writing its own feed in one space."""

    space: bytes
    key: DeviceKey = field(default_factory=DeviceKey.generate)
    member: bytes = b""
    seq: int = 0
    head: bytes | None = None
    epoch: int = 0
    token: str | None = None
    #: Heads of other feeds this device has read: device -> (seq, id); sent as ``seen``.
    seen: dict[bytes, tuple[int, bytes]] = field(default_factory=dict)

    def saw(self, other: Device) -> None:
        """Record ``other``'s current head as read (it goes into the next entries' ``seen``)."""
        if other.head is not None and other.public != self.public:
            self.seen[other.public] = (other.seq, other.head)

    def _seen(self) -> tuple[SeenHead, ...]:
        return tuple(
            SeenHead(device=device, seq=seq, id=head)
            for device, (seq, head) in sorted(self.seen.items())
        )

    def __post_init__(self) -> None:
        if not self.member:
            self.member = member_id_of(self.key.public)

    @property
    def public(self) -> bytes:
        return self.key.public

    @property
    def id_b64(self) -> str:
        return b64(self.public)

    def _advance(self, entry: Entry) -> Entry:
        self.seq = entry.seq
        self.head = entry.id
        return entry

    def data(self, plaintext: bytes = b"hello", *, advance: bool = True) -> Entry:
        """The next data entry of this feed (kept as the new head when ``advance``)."""
        entry = seal(
            device_key=self.key,
            space=self.space,
            seq=self.seq + 1,
            prev=self.head,
            epoch=self.epoch,
            epoch_key=EPOCH_KEY,
            plaintext=plaintext,
            seen=self._seen(),
        )
        return self._advance(entry) if advance else entry

    def roster(self, record: Record, *, advance: bool = True) -> Entry:
        entry = seal_roster(
            device_key=self.key,
            space=self.space,
            seq=self.seq + 1,
            prev=self.head,
            epoch=self.epoch,
            record=encode_record(record),
            seen=self._seen(),
        )
        return self._advance(entry) if advance else entry

    def found(self) -> Entry:
        return self.roster(Found(member=self.member, device=self.public))

    def add_device(self, other: Device) -> Entry:
        """Self pairing: ``other`` joins this device's member."""
        other.member = self.member
        proof = join_proof(other.key, space=self.space, member=self.member, by=self.public)
        return self.roster(AddDevice(member=self.member, device=other.public, proof=proof))

    def add_member(self, other: Device) -> Entry:
        """Partner pairing: ``other`` joins as a new member."""
        proof = join_proof(other.key, space=self.space, member=other.member, by=self.public)
        return self.roster(AddMember(member=other.member, device=other.public, proof=proof))

    def remove_device(self, other: Device) -> Entry:
        return self.roster(RemoveDevice(device=other.public, last_seq=other.seq))

    def remove_member(self, other: Device) -> Entry:
        return self.roster(
            RemoveMember(member=other.member, last_seqs=((other.public, other.seq),))
        )

    def envelope_for(self, other: Device, epoch: int = 0) -> bytes:
        return wrap_epoch_key(
            from_key=self.key, to=other.public, space=self.space, epoch=epoch, epoch_key=EPOCH_KEY
        ).to_bytes()


def new_space() -> bytes:
    return random_bytes(16)


class RelayAPI:
    """Calls the relay's HTTP API and returns (status, JSON body)."""

    def __init__(self, http: aiohttp.ClientSession, base_url: str) -> None:
        self.http = http
        self.base_url = base_url.rstrip("/")

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        token: str | None = None,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        sent = dict(headers or {})
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        kwargs: dict[str, Any] = {"headers": sent}
        if raw is not None:
            kwargs["data"] = raw
        elif body is not None:
            kwargs["json"] = body
        async with self.http.request(method, self.base_url + path, **kwargs) as answer:
            if answer.content_type == "application/json":
                return answer.status, await answer.json()
            text = await answer.text()
            return answer.status, text

    async def create_space(self, founder: Device, entry: Entry | None = None) -> tuple[int, Any]:
        entry = entry if entry is not None else founder.found()
        from protocol.crypto import SigContext

        sig = founder.key.sign(SigContext.CREATE_SPACE + founder.space)
        return await self.call(
            "POST",
            "/v1/spaces",
            {"space": b64(founder.space), "entry": b64(entry.to_bytes()), "sig": b64(sig)},
        )

    async def login(self, device: Device) -> str:
        status, body = await self.call(
            "POST", "/v1/auth/challenge", {"space": b64(device.space), "device": device.id_b64}
        )
        assert status == 200, body
        challenge = unb64(body["challenge"])
        sig = device.key.sign(
            auth_message(space=device.space, device=device.public, challenge=challenge)
        )
        status, body = await self.call(
            "POST",
            "/v1/auth/token",
            {
                "space": b64(device.space),
                "device": device.id_b64,
                "challenge": body["challenge"],
                "sig": b64(sig),
            },
        )
        assert status == 200, body
        device.token = body["token"]
        return str(body["token"])

    async def append(self, device: Device, *entries: Entry) -> tuple[int, Any]:
        return await self.append_raw(device, [entry.to_bytes() for entry in entries])

    async def append_raw(self, device: Device, raws: list[bytes]) -> tuple[int, Any]:
        return await self.call(
            "POST",
            f"/v1/spaces/{b64(device.space)}/entries",
            {"entries": [b64(raw) for raw in raws]},
            token=device.token,
        )

    async def fetch(
        self,
        device: Device,
        *,
        have: dict[bytes, int] | None = None,
        after: int | None = None,
        limit: int | None = None,
    ) -> tuple[int, Any]:
        body: dict[str, Any] = {"have": {b64(k): v for k, v in (have or {}).items()}}
        if after is not None:
            body["after"] = after
        if limit is not None:
            body["limit"] = limit
        return await self.call(
            "POST", f"/v1/spaces/{b64(device.space)}/fetch", body, token=device.token
        )

    async def fetch_all(self, device: Device, have: dict[bytes, int] | None = None) -> list[Entry]:
        """Every entry past ``have``, following the cursor to the end."""
        entries: list[Entry] = []
        after = 0
        while True:
            status, body = await self.fetch(device, have=have, after=after)
            assert status == 200, body
            entries.extend(Entry.from_bytes(unb64(item)) for item in body["entries"])
            after = body["cursor"]
            if not body["more"]:
                return entries

    async def founded(self, founder: Device) -> Device:
        """Create ``founder``'s space and log it in."""
        status, body = await self.create_space(founder)
        assert status == 201, body
        await self.login(founder)
        return founder

    async def join(self, inviter: Device, joiner: Device, *, same_member: bool) -> Device:
        """Add ``joiner`` through a roster entry by ``inviter`` and log it in."""
        entry = inviter.add_device(joiner) if same_member else inviter.add_member(joiner)
        status, body = await self.append(inviter, entry)
        assert status == 200, body
        joiner.saw(inviter)  # a joiner has read the record that added it
        await self.login(joiner)
        return joiner
