"""List files sync by difference: subscribers.row_hash, the hash of the list-file row a
member was last read from (NULL: not from a file, or synced before this revision).

A re-sync then reads the file once, hashing each row: rows whose hash is stored are
unchanged and skipped (no address check, no write); only the rest are checked and
merged, and members whose hash the file no longer has are the ones leaving.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("subscribers") as batch:
        batch.add_column(sa.Column("row_hash", sa.BigInteger))
        batch.create_index("ix_subscribers_row_hash", ["list_name", "row_hash"])
        batch.create_index("ix_subscribers_synced", ["list_name", "synced"])


def downgrade() -> None:
    with op.batch_alter_table("subscribers") as batch:
        batch.drop_index("ix_subscribers_synced")
        batch.drop_index("ix_subscribers_row_hash")
        batch.drop_column("row_hash")
