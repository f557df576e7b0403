"""Readers' signals: the links of each sent edition with their click counts (per link,
never per reader), and the messages of the bounce mailbox read so far (each once).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from digest.db.types import UTCDateTime

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "links",
        sa.Column("edition_id", sa.Integer, sa.ForeignKey("editions.id"), primary_key=True),
        sa.Column("n", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("thread", sa.String(500)),
        sa.Column("post", sa.String(500)),
        sa.Column("position", sa.Integer),
        sa.Column("clicks", sa.Integer, nullable=False, server_default="0"),
    )
    op.create_table(
        "bounce_messages",
        sa.Column("message_id", sa.String(250), primary_key=True),
        sa.Column("kind", sa.String(12), nullable=False),
        sa.Column("email_key", sa.String(320)),
        sa.Column("edition_id", sa.Integer),
        sa.Column("delivery_id", sa.Integer),
        sa.Column("status", sa.String(20)),
        sa.Column("detail", sa.Text, nullable=False, server_default=""),
        sa.Column("received_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_bounce_messages_edition", "bounce_messages", ["edition_id", "kind"])
    op.create_index("ix_bounce_messages_reader", "bounce_messages", ["email_key", "edition_id"])


def downgrade() -> None:
    op.drop_index("ix_bounce_messages_reader", table_name="bounce_messages")
    op.drop_index("ix_bounce_messages_edition", table_name="bounce_messages")
    op.drop_table("bounce_messages")
    op.drop_table("links")
