"""Ids too long to be keys are stored hashed; the id as the feed wrote it is kept beside.

posts.original_key and comments.original_key: NULL when the key is the feed's own id,
else that id in full (the key is then "sha1:" and its hash).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("posts", "comments"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("original_key", sa.Text))


def downgrade() -> None:
    for table in ("posts", "comments"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("original_key")
