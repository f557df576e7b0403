"""A posts page missed by one fetch is read by the next: sources.reread_posts.

When a page of a source's posts feed cannot be read, the next fetch reads the posts
feed whole (not stopping at the first page it has seen) until a fetch reads it whole.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sources") as batch:
        batch.add_column(sa.Column("reread_posts", sa.Boolean, nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("sources") as batch:
        batch.drop_column("reread_posts")
