"""Several senders share an edition: a ledger row taken into a sender's batch carries the
sender and until when it holds it (a lease, renewed while it works). Rows of a sender that
died are free again when the lease runs out. Two nullable columns: on PostgreSQL and
SQLite alike no table is rewritten, however many rows the ledger has.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from digest.db.types import UTCDateTime

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deliveries", recreate="never") as batch:
        batch.add_column(sa.Column("claimed_by", sa.String(200)))
        batch.add_column(sa.Column("claimed_until", UTCDateTime))


def downgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("claimed_until")
        batch.drop_column("claimed_by")
