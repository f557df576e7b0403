"""Mail mode: the mailbox's messages applied once (mail_messages), requests to subscribe
by mail waiting for their reply (mail_signups, the confirm token names a row), and the
moment an edition was mailed to the blog as a post (editions.posted_at; editions sent
before it were never posted, and are not posted late).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from digest.db.types import UTCDateTime

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mail_messages",
        sa.Column("message_id", sa.String(250), primary_key=True),
        sa.Column("kind", sa.String(12), nullable=False),
        sa.Column("outcome", sa.Text, nullable=False, server_default=""),
        sa.Column("kept", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("address", sa.String(320)),
        sa.Column("list_name", sa.String(100)),
        sa.Column("received_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_mail_messages_kept", "mail_messages", ["kind", "kept", "received_at"])
    op.create_table(
        "mail_signups",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("list_name", sa.String(100), nullable=False),
        sa.Column("email_key", sa.String(320), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("name", sa.Text, nullable=False, server_default=""),
        sa.Column("message_id", sa.String(250), nullable=False, unique=True),
        sa.Column("asked_at", UTCDateTime, nullable=False),
        sa.Column("confirm_sent_at", UTCDateTime),
        sa.Column("confirmed_at", UTCDateTime),
    )
    op.create_index("ix_mail_signups_asker", "mail_signups", ["email_key", "asked_at"])
    with op.batch_alter_table("editions", recreate="never") as batch:
        batch.add_column(sa.Column("posted_at", UTCDateTime))


def downgrade() -> None:
    with op.batch_alter_table("editions") as batch:
        batch.drop_column("posted_at")
    op.drop_index("ix_mail_signups_asker", "mail_signups")
    op.drop_table("mail_signups")
    op.drop_index("ix_mail_messages_kept", "mail_messages")
    op.drop_table("mail_messages")
