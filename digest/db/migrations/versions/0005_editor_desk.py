"""The editor's desk: a note and a subject for the next edition, frozen with it;
editor sessions kept server-side (expiry, logout); welcome emails sent once.

- drafts: per list, the note (Markdown) and subject the editor set for the next edition.
- editions.note: the note as frozen with the edition (Markdown source; rendered sanitised).
- editor_sessions: one row per login; a cookie names a row, which logout or expiry ends.
- welcomes: per list and address, when the welcome email after confirmation went.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from digest.db.types import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "drafts",
        sa.Column("list_name", sa.String(100), primary_key=True),
        sa.Column("note", sa.Text),
        sa.Column("subject", sa.Text),
        sa.Column("updated_at", UTCDateTime, nullable=False),
    )
    with op.batch_alter_table("editions") as batch:
        batch.add_column(sa.Column("note", sa.Text))
    op.create_table(
        "editor_sessions",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=False),
        sa.Column("ended_at", UTCDateTime),
    )
    op.create_table(
        "welcomes",
        sa.Column("list_name", sa.String(100), primary_key=True),
        sa.Column("email_key", sa.String(320), primary_key=True),
        sa.Column("sent_at", UTCDateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("welcomes")
    op.drop_table("editor_sessions")
    with op.batch_alter_table("editions") as batch:
        batch.drop_column("note")
    op.drop_table("drafts")
