"""The relay's tables (SQLAlchemy 2.0 declarative models).

The relay stores what it is allowed to know (DESIGN.md section 6, SPEC.md section 9.10):
space ids, device public keys, entry headers, padded ciphertext sizes and times. Entry
bytes are kept whole and opaque in ``entries.data``; the header fields next to them are
copies for indexing.

* ``spaces``: one row per space, with the counter of arrival positions. Appends lock
  this row (``UPDATE ... SET last_position = ...``), which serialises the writers of one
  space, so arrival positions are handed out in commit order.
* ``devices``: the relay's copy of the roster: every device of a space, its member, when
  it was added and whether it was removed, with the last seq it may still write (its
  cut) and the head of its feed, so appends are checked without replaying anything.
* ``entries``: every stored entry. ``(space_id, device, seq)`` is unique: a fork can
  never be stored, even by concurrent writers.
* ``auth_challenges`` / ``auth_tokens``: challenge-response state. Tokens are stored
  only as a hash, so the database never holds a usable token.
* ``key_envelopes``: wrapped epoch keys, addressed to one device each.
* ``pairing_channels`` / ``pairing_messages``: the short-lived pairing mailbox.

The schema changes only through the Alembic revisions in ``server/migrations``.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

#: Constraint names follow one pattern, so Alembic revisions can name them on every
#: database (Alembic docs, "The Importance of Naming Constraints").
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: Integers that may exceed 2**31 (positions, seqs, times in seconds).
Int64 = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Space(Base):
    __tablename__ = "spaces"

    id: Mapped[bytes] = mapped_column(LargeBinary(16), primary_key=True)
    created_at: Mapped[int] = mapped_column(Int64)
    #: The arrival position of the newest entry (0 before the first).
    last_position: Mapped[int] = mapped_column(Int64, default=0)
    #: Bumped on every roster change, so caches of the roster know they are stale.
    roster_version: Mapped[int] = mapped_column(Int64, default=0)
    #: The newest key epoch announced by a roster record (0 until the first rotation).
    epoch: Mapped[int] = mapped_column(Int64, default=0)


class Device(Base):
    __tablename__ = "devices"

    space_id: Mapped[bytes] = mapped_column(
        LargeBinary(16), ForeignKey("spaces.id", ondelete="CASCADE"), primary_key=True
    )
    device: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    member: Mapped[bytes] = mapped_column(LargeBinary(16))
    added_at: Mapped[int] = mapped_column(Int64)
    #: Arrival position of the roster entry that added the device.
    added_position: Mapped[int] = mapped_column(Int64)
    removed: Mapped[bool] = mapped_column(Boolean, default=False)
    removed_at: Mapped[int | None] = mapped_column(Int64, nullable=True)
    #: The last seq the device may still write; None while it is not removed.
    cut_seq: Mapped[int | None] = mapped_column(Int64, nullable=True)
    #: The head of the device's feed on this relay (0 and None before its first entry).
    head_seq: Mapped[int] = mapped_column(Int64, default=0)
    head_id: Mapped[bytes | None] = mapped_column(LargeBinary(32), nullable=True)
    #: The epoch of the head entry: a feed's epochs never go back.
    head_epoch: Mapped[int] = mapped_column(Int64, default=0)


class StoredEntry(Base):
    __tablename__ = "entries"
    __table_args__ = (
        UniqueConstraint("space_id", "device", "seq"),
        Index("ix_entries_space_id_entry_id", "space_id", "entry_id"),
    )

    space_id: Mapped[bytes] = mapped_column(
        LargeBinary(16), ForeignKey("spaces.id", ondelete="CASCADE"), primary_key=True
    )
    #: Arrival position in the space: 1, 2, 3, ... in commit order.
    position: Mapped[int] = mapped_column(Int64, primary_key=True)
    device: Mapped[bytes] = mapped_column(LargeBinary(32))
    seq: Mapped[int] = mapped_column(Int64)
    entry_id: Mapped[bytes] = mapped_column(LargeBinary(32))
    type: Mapped[str] = mapped_column(String(16))
    epoch: Mapped[int] = mapped_column(Int64)
    #: Length of the body (the padded ciphertext plus its tag, or the roster record).
    body_size: Mapped[int] = mapped_column(Integer)
    received_at: Mapped[int] = mapped_column(Int64)
    #: The encoded entry, exactly as the author sent it.
    data: Mapped[bytes] = mapped_column(LargeBinary)


class AuthChallenge(Base):
    __tablename__ = "auth_challenges"

    challenge: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    space_id: Mapped[bytes] = mapped_column(
        LargeBinary(16), ForeignKey("spaces.id", ondelete="CASCADE")
    )
    device: Mapped[bytes] = mapped_column(LargeBinary(32))
    expires_at: Mapped[int] = mapped_column(Int64, index=True)


class AuthToken(Base):
    __tablename__ = "auth_tokens"

    #: BLAKE2b of the token; the token itself is never stored.
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    space_id: Mapped[bytes] = mapped_column(
        LargeBinary(16), ForeignKey("spaces.id", ondelete="CASCADE")
    )
    device: Mapped[bytes] = mapped_column(LargeBinary(32))
    created_at: Mapped[int] = mapped_column(Int64)
    expires_at: Mapped[int] = mapped_column(Int64, index=True)


class KeyEnvelope(Base):
    __tablename__ = "key_envelopes"
    __table_args__ = (
        UniqueConstraint("space_id", "recipient", "epoch", "envelope_hash"),
        Index("ix_key_envelopes_space_id_recipient", "space_id", "recipient", "epoch"),
    )

    id: Mapped[int] = mapped_column(Int64, primary_key=True, autoincrement=True)
    space_id: Mapped[bytes] = mapped_column(
        LargeBinary(16), ForeignKey("spaces.id", ondelete="CASCADE")
    )
    recipient: Mapped[bytes] = mapped_column(LargeBinary(32))
    sender: Mapped[bytes] = mapped_column(LargeBinary(32))
    epoch: Mapped[int] = mapped_column(Int64)
    envelope_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    created_at: Mapped[int] = mapped_column(Int64)
    #: The encoded envelope, exactly as the sender sent it.
    data: Mapped[bytes] = mapped_column(LargeBinary)


class PairingChannel(Base):
    __tablename__ = "pairing_channels"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    #: Short numeric name for typed codes; cleared when the channel is claimed.
    nameplate: Mapped[str | None] = mapped_column(String(16), nullable=True, unique=True)
    created_at: Mapped[int] = mapped_column(Int64)
    expires_at: Mapped[int] = mapped_column(Int64, index=True)
    #: BLAKE2b of each side's token; side "b" is None until the channel is claimed.
    side_a_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    side_b_hash: Mapped[bytes | None] = mapped_column(LargeBinary(32), nullable=True)
    message_count: Mapped[int] = mapped_column(Integer, default=0)


class PairingMessage(Base):
    __tablename__ = "pairing_messages"

    channel_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("pairing_channels.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    side: Mapped[str] = mapped_column(String(1))
    body: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[int] = mapped_column(Int64)
