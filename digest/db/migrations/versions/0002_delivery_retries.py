"""Never lost, never doubled: deferred messages, one identity per mailbox, single-use
subscription links.

- deliveries.attempts / next_attempt_at: a "try again later" answer (SMTP 4xx, SendGrid
  5xx after its retries) leaves the message pending until then, not refused.
- email_key becomes the canonical identity (ASCII letters of the local part lower-cased,
  the domain lower-cased and IDNA-encoded)
  in subscribers, suppressions and deliveries. Rows that now share a key are merged: on
  a list the oldest subscriber row is kept (active if any of them was), and the oldest
  suppression of a key on a list is kept.
- confirmations: subscription links already used (each works once).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _key(address: str) -> str:
    """The canonical key as of this revision (frozen here: later code may change it)."""
    import idna
    local, _, domain = address.strip().rpartition("@")
    lowered = domain.strip().lower()
    try:
        lowered = idna.encode(lowered, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError, ValueError):
        pass
    return "".join(c.lower() if c.isascii() else c for c in local) + "@" + lowered


def upgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("attempts", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("next_attempt_at", sa.DateTime))
    op.create_table(
        "confirmations",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("list_name", sa.String(100), nullable=False),
        sa.Column("email_key", sa.String(320), nullable=False),
        sa.Column("used_at", sa.DateTime, nullable=False),
    )
    bind = op.get_bind()
    _rekey_subscribers(bind)
    _rekey_suppressions(bind)
    _rekey_deliveries(bind)


def _rekey_subscribers(bind: sa.Connection) -> None:
    rows = bind.execute(sa.text("SELECT id, list_name, email, email_key, active FROM subscribers ORDER BY id")).all()
    keep: dict[tuple[str, str], tuple[int, bool]] = {}
    for row in rows:
        key = (row.list_name, _key(row.email))
        if key not in keep:
            keep[key] = (row.id, bool(row.active))
            continue
        first, active = keep[key]
        if row.active and not active:
            bind.execute(sa.text("UPDATE subscribers SET active = :yes, retired_at = NULL WHERE id = :id"),
                         {"yes": True, "id": first})
            keep[key] = (first, True)
        bind.execute(sa.text("DELETE FROM subscribers WHERE id = :id"), {"id": row.id})
    for (_, canonical), (ident, _) in keep.items():
        bind.execute(sa.text("UPDATE subscribers SET email_key = :key WHERE id = :id AND email_key != :key"),
                     {"key": canonical, "id": ident})


def _rekey_suppressions(bind: sa.Connection) -> None:
    rows = bind.execute(sa.text("SELECT id, list_name, email_key FROM suppressions ORDER BY at, id")).all()
    keep: dict[tuple[str, str], int] = {}
    for row in rows:
        key = (row.list_name, _key(row.email_key))
        if key in keep:
            bind.execute(sa.text("DELETE FROM suppressions WHERE id = :id"), {"id": row.id})
        else:
            keep[key] = row.id
    for (_, canonical), ident in keep.items():      # after the deletions: no key is taken twice
        bind.execute(sa.text("UPDATE suppressions SET email_key = :key WHERE id = :id AND email_key != :key"),
                     {"key": canonical, "id": ident})


def _rekey_deliveries(bind: sa.Connection) -> None:
    rows = bind.execute(sa.text("SELECT DISTINCT email_key FROM deliveries")).all()
    for row in rows:
        if _key(row.email_key) != row.email_key:
            bind.execute(sa.text("UPDATE deliveries SET email_key = :new WHERE email_key = :old"),
                         {"new": _key(row.email_key), "old": row.email_key})


def downgrade() -> None:
    op.drop_table("confirmations")
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("next_attempt_at")
        batch.drop_column("attempts")
