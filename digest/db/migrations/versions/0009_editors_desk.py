"""The editor runs the newsletter from the web: an edition can be held for approval
(editions.held_at, decided_at, decision; built_at: the picks and draft it holds) and
remembers the threads it showed (editions.threads: a send that would repeat them warns);
orders carry the web's "send now" to the scheduler; signups count the confirmations
still to be clicked.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from digest.db.types import UTCDateTime

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("editions") as batch:
        batch.add_column(sa.Column("threads", sa.Text))
        batch.add_column(sa.Column("built_at", UTCDateTime))
        batch.add_column(sa.Column("held_at", UTCDateTime))
        batch.add_column(sa.Column("decided_at", UTCDateTime))
        batch.add_column(sa.Column("decision", sa.String(30)))
        batch.add_column(sa.Column("review_sent_at", UTCDateTime))
    op.create_table(
        "orders",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("list_name", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("since", UTCDateTime),
        sa.Column("until", UTCDateTime),
        sa.Column("edition_id", sa.Integer),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("requested_at", UTCDateTime, nullable=False),
        sa.Column("started_at", UTCDateTime),
        sa.Column("finished_at", UTCDateTime),
        sa.Column("outcome", sa.Text),
    )
    op.create_index("ix_orders_status", "orders", ["status", "id"])
    op.create_table(
        "signups",
        sa.Column("list_name", sa.String(100), primary_key=True),
        sa.Column("email_key", sa.String(320), primary_key=True),
        sa.Column("asked_at", UTCDateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("signups")
    op.drop_index("ix_orders_status", table_name="orders")
    op.drop_table("orders")
    with op.batch_alter_table("editions") as batch:
        for column in ("review_sent_at", "decision", "decided_at", "held_at", "built_at", "threads"):
            batch.drop_column(column)
