"""A list file's size beside its hash: a file that only grew, its first bytes the file
synced last, has rows appended, and the next sync reads only those (its cost follows the
change, not the list). One nullable column: files synced before it are read whole once.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("list_files", recreate="never") as batch:
        batch.add_column(sa.Column("size", sa.BigInteger))


def downgrade() -> None:
    with op.batch_alter_table("list_files") as batch:
        batch.drop_column("size")
