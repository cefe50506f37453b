"""The relay's first schema: spaces, devices, entries, auth, key envelopes, pairing.

Revision ID: 0001_initial
Revises:
Create Date: 2024-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001_initial"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Int64 = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "spaces",
        sa.Column("id", sa.LargeBinary(16), nullable=False),
        sa.Column("created_at", Int64, nullable=False),
        sa.Column("last_position", Int64, nullable=False),
        sa.Column("roster_version", Int64, nullable=False),
        sa.Column("epoch", Int64, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_spaces"),
    )
    op.create_table(
        "devices",
        sa.Column("space_id", sa.LargeBinary(16), nullable=False),
        sa.Column("device", sa.LargeBinary(32), nullable=False),
        sa.Column("member", sa.LargeBinary(16), nullable=False),
        sa.Column("added_at", Int64, nullable=False),
        sa.Column("added_position", Int64, nullable=False),
        sa.Column("removed", sa.Boolean(), nullable=False),
        sa.Column("removed_at", Int64, nullable=True),
        sa.Column("cut_seq", Int64, nullable=True),
        sa.Column("head_seq", Int64, nullable=False),
        sa.Column("head_id", sa.LargeBinary(32), nullable=True),
        sa.Column("head_epoch", Int64, nullable=False),
        sa.ForeignKeyConstraint(
            ["space_id"], ["spaces.id"], name="fk_devices_space_id_spaces", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("space_id", "device", name="pk_devices"),
    )
    op.create_table(
        "entries",
        sa.Column("space_id", sa.LargeBinary(16), nullable=False),
        sa.Column("position", Int64, nullable=False),
        sa.Column("device", sa.LargeBinary(32), nullable=False),
        sa.Column("seq", Int64, nullable=False),
        sa.Column("entry_id", sa.LargeBinary(32), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("epoch", Int64, nullable=False),
        sa.Column("body_size", sa.Integer(), nullable=False),
        sa.Column("received_at", Int64, nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["space_id"], ["spaces.id"], name="fk_entries_space_id_spaces", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("space_id", "position", name="pk_entries"),
        sa.UniqueConstraint("space_id", "device", "seq", name="uq_entries_space_id_device_seq"),
    )
    op.create_index("ix_entries_space_id_entry_id", "entries", ["space_id", "entry_id"])
    op.create_table(
        "auth_challenges",
        sa.Column("challenge", sa.LargeBinary(32), nullable=False),
        sa.Column("space_id", sa.LargeBinary(16), nullable=False),
        sa.Column("device", sa.LargeBinary(32), nullable=False),
        sa.Column("expires_at", Int64, nullable=False),
        sa.ForeignKeyConstraint(
            ["space_id"],
            ["spaces.id"],
            name="fk_auth_challenges_space_id_spaces",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("challenge", name="pk_auth_challenges"),
    )
    op.create_index(
        "ix_auth_challenges_expires_at", "auth_challenges", ["expires_at"], unique=False
    )
    op.create_table(
        "auth_tokens",
        sa.Column("token_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("space_id", sa.LargeBinary(16), nullable=False),
        sa.Column("device", sa.LargeBinary(32), nullable=False),
        sa.Column("created_at", Int64, nullable=False),
        sa.Column("expires_at", Int64, nullable=False),
        sa.ForeignKeyConstraint(
            ["space_id"], ["spaces.id"], name="fk_auth_tokens_space_id_spaces", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("token_hash", name="pk_auth_tokens"),
    )
    op.create_index("ix_auth_tokens_expires_at", "auth_tokens", ["expires_at"], unique=False)
    op.create_table(
        "key_envelopes",
        sa.Column("id", Int64, autoincrement=True, nullable=False),
        sa.Column("space_id", sa.LargeBinary(16), nullable=False),
        sa.Column("recipient", sa.LargeBinary(32), nullable=False),
        sa.Column("sender", sa.LargeBinary(32), nullable=False),
        sa.Column("epoch", Int64, nullable=False),
        sa.Column("envelope_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("created_at", Int64, nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["space_id"],
            ["spaces.id"],
            name="fk_key_envelopes_space_id_spaces",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_key_envelopes"),
        sa.UniqueConstraint(
            "space_id",
            "recipient",
            "epoch",
            "envelope_hash",
            name="uq_key_envelopes_space_id_recipient_epoch_envelope_hash",
        ),
    )
    op.create_index(
        "ix_key_envelopes_space_id_recipient",
        "key_envelopes",
        ["space_id", "recipient", "epoch"],
    )
    op.create_table(
        "pairing_channels",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("nameplate", sa.String(16), nullable=True),
        sa.Column("created_at", Int64, nullable=False),
        sa.Column("expires_at", Int64, nullable=False),
        sa.Column("side_a_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("side_b_hash", sa.LargeBinary(32), nullable=True),
        sa.Column("message_count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_pairing_channels"),
        sa.UniqueConstraint("nameplate", name="uq_pairing_channels_nameplate"),
    )
    op.create_index(
        "ix_pairing_channels_expires_at", "pairing_channels", ["expires_at"], unique=False
    )
    op.create_table(
        "pairing_messages",
        sa.Column("channel_id", sa.String(64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("side", sa.String(1), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", Int64, nullable=False),
        sa.ForeignKeyConstraint(
            ["channel_id"],
            ["pairing_channels.id"],
            name="fk_pairing_messages_channel_id_pairing_channels",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("channel_id", "seq", name="pk_pairing_messages"),
    )


def downgrade() -> None:
    op.drop_table("pairing_messages")
    op.drop_index("ix_pairing_channels_expires_at", table_name="pairing_channels")
    op.drop_table("pairing_channels")
    op.drop_index("ix_key_envelopes_space_id_recipient", table_name="key_envelopes")
    op.drop_table("key_envelopes")
    op.drop_index("ix_auth_tokens_expires_at", table_name="auth_tokens")
    op.drop_table("auth_tokens")
    op.drop_index("ix_auth_challenges_expires_at", table_name="auth_challenges")
    op.drop_table("auth_challenges")
    op.drop_index("ix_entries_space_id_entry_id", table_name="entries")
    op.drop_table("entries")
    op.drop_table("devices")
    op.drop_table("spaces")
