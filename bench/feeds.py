"""Signed entries for the relay benchmarks, made ahead of the timed part.

The relay never decrypts, so these entries carry random plaintext of a chosen size,
sealed exactly as a client seals a change: padded to its bucket, encrypted with
XChaCha20-Poly1305 under an epoch key, chained and signed. The default size is the
mean plaintext of the generated couple's history (a record in a CRDT update in a
payload), so the relay sees entries of the size it will see in use.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from protocol.crypto import DeviceKey, member_id_of, random_bytes
from protocol.entry import SeenHead, entry_id, seal, seal_roster
from protocol.epochs import new_epoch_key
from protocol.roster import AddMember, Found, encode_record, join_proof

#: Plaintext bytes of a typical entry (about the mean of the generated history).
TYPICAL_PLAINTEXT = 350


@dataclass(slots=True)
class Feed:
    """One device's feed in one space: writes the next entries of its chain."""

    key: DeviceKey
    space: bytes
    epoch_key: bytes
    seq: int = 0
    head: bytes | None = None
    public: bytes = field(init=False)

    def __post_init__(self) -> None:
        self.public = self.key.public

    def _advance(self, raw: bytes) -> bytes:
        self.seq += 1
        self.head = entry_id(raw)
        return raw

    def data(self, plaintext: bytes, *, seen: tuple[SeenHead, ...] = ()) -> bytes:
        """The next data entry, carrying ``plaintext``."""
        entry = seal(
            device_key=self.key,
            space=self.space,
            seq=self.seq + 1,
            prev=self.head,
            epoch=0,
            epoch_key=self.epoch_key,
            plaintext=plaintext,
            seen=seen,
        )
        return self._advance(entry.to_bytes())

    def roster(self, record: Found | AddMember) -> bytes:
        """The next roster entry, carrying ``record``."""
        entry = seal_roster(
            device_key=self.key,
            space=self.space,
            seq=self.seq + 1,
            prev=self.head,
            epoch=0,
            record=encode_record(record),
        )
        return self._advance(entry.to_bytes())

    def many(self, count: int, size: int = TYPICAL_PLAINTEXT) -> list[bytes]:
        """``count`` data entries of ``size`` random plaintext bytes each."""
        return [self.data(random_bytes(size)) for _ in range(count)]


@dataclass(frozen=True, slots=True, kw_only=True)
class Couple:
    """A space with two members' devices: the founder's feed and the partner's."""

    founder: Feed
    partner: Feed
    #: The founder's ``found`` entry (to create the space) and its ``add_member`` entry.
    founding: bytes
    add_partner: bytes


def solo_space() -> tuple[Feed, bytes]:
    """A new space with one device; returns its feed and the founding entry."""
    key = DeviceKey.generate()
    feed = Feed(key=key, space=random_bytes(16), epoch_key=new_epoch_key())
    founding = feed.roster(Found(member=member_id_of(feed.public), device=feed.public))
    return feed, founding


def couple_space() -> Couple:
    """A new space founded by one device, with a partner signed in as a member."""
    founder, founding = solo_space()
    partner_key = DeviceKey.generate()
    partner_member = member_id_of(partner_key.public)
    add_partner = founder.roster(
        AddMember(
            member=partner_member,
            device=partner_key.public,
            proof=join_proof(
                partner_key, space=founder.space, member=partner_member, by=founder.public
            ),
        )
    )
    partner = Feed(key=partner_key, space=founder.space, epoch_key=founder.epoch_key)
    return Couple(founder=founder, partner=partner, founding=founding, add_partner=add_partner)
