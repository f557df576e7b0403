"""digest doctor's findings: a row per run of the checks a real send depends on, so the
editor's pages can show the last result (and the scheduler's own check at its start).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from digest.db.types import UTCDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "checks",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("ran_at", UTCDateTime, nullable=False),
        sa.Column("ran_by", sa.String(50), nullable=False),
        sa.Column("failed", sa.Integer, nullable=False),
        sa.Column("results", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("checks")
