"""The schema of main before migrations existed (December 2026), frozen here.

A database made by any earlier version of digest has no alembic_version table. This
revision brings it to that schema in place: tables that are missing are created,
columns and indexes added since its version are added (NOT NULL ones with their
default), nothing is dropped. On an empty database it simply creates the schema.
It is idempotent, so a run cut off part way (SQLite applies DDL at once) can be
repeated. The tables are copied, not imported: later revisions change digest's tables.

Revision ID: 0001
Revises:
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

frozen = sa.MetaData()
T = sa.DateTime          # digest stores naive UTC datetimes

sa.Table("sources", frozen,
         sa.Column("id", sa.Integer, primary_key=True),
         sa.Column("name", sa.String(100), nullable=False, unique=True),
         sa.Column("url", sa.Text, nullable=False),
         sa.Column("kind", sa.String(20)), sa.Column("detected_kind", sa.String(20)),
         sa.Column("comments_url", sa.Text), sa.Column("horizon", T),
         sa.Column("last_fetch_at", T), sa.Column("last_error", sa.Text))
sa.Table("http_cache", frozen,
         sa.Column("url", sa.String(2000), primary_key=True),
         sa.Column("etag", sa.Text), sa.Column("last_modified", sa.Text), sa.Column("checked_at", T))
sa.Table("posts", frozen,
         sa.Column("id", sa.Integer, primary_key=True),
         sa.Column("source_id", sa.Integer, sa.ForeignKey("sources.id"), nullable=False),
         sa.Column("key", sa.String(500), nullable=False),
         *[sa.Column(name, sa.Text, nullable=False) for name in ("url", "title", "author")],
         sa.Column("published", T, nullable=False), sa.Column("updated", T, nullable=False),
         sa.Column("html", sa.Text, nullable=False), sa.Column("text", sa.Text, nullable=False),
         sa.Column("comments_total", sa.Integer), sa.Column("comments_feed", sa.Text),
         sa.Column("stub", sa.Boolean, nullable=False, default=False),
         sa.Column("hash", sa.String(40), nullable=False),
         sa.UniqueConstraint("source_id", "key"))
sa.Table("comments", frozen,
         sa.Column("id", sa.Integer, primary_key=True),
         sa.Column("source_id", sa.Integer, sa.ForeignKey("sources.id"), nullable=False),
         sa.Column("key", sa.String(500), nullable=False),
         sa.Column("post_key", sa.String(500), nullable=False),
         sa.Column("declared_parent", sa.String(500)), sa.Column("parent_key", sa.String(500)),
         sa.Column("orphan", sa.Boolean, nullable=False, default=False),
         sa.Column("author", sa.Text, nullable=False), sa.Column("author_uri", sa.Text),
         sa.Column("published", T, nullable=False), sa.Column("updated", T, nullable=False),
         *[sa.Column(name, sa.Text, nullable=False) for name in ("url", "html", "text")],
         sa.Column("removed", sa.Boolean, nullable=False, default=False),
         sa.Column("deleted", sa.Boolean, nullable=False, default=False),
         sa.Column("hash", sa.String(40), nullable=False),
         sa.UniqueConstraint("source_id", "key"),
         sa.Index("ix_comments_post", "source_id", "post_key"),
         sa.Index("ix_comments_published", "published"))
sa.Table("picks", frozen,
         sa.Column("id", sa.Integer, primary_key=True),
         sa.Column("list_name", sa.String(100), nullable=False),
         sa.Column("comment_key", sa.String(500), nullable=False),
         sa.Column("action", sa.String(10), nullable=False),
         sa.Column("created_at", T, nullable=False), sa.Column("used_at", T),
         sa.UniqueConstraint("list_name", "comment_key", "used_at"))
sa.Table("subscribers", frozen,
         sa.Column("id", sa.Integer, primary_key=True),
         sa.Column("list_name", sa.String(100), nullable=False),
         sa.Column("email_key", sa.String(320), nullable=False),
         sa.Column("email", sa.String(320), nullable=False),
         sa.Column("name", sa.Text, nullable=False, default=""),
         sa.Column("extra", sa.Text, nullable=False, default="{}"),
         sa.Column("origin", sa.String(10), nullable=False),
         sa.Column("active", sa.Boolean, nullable=False, default=True),
         sa.Column("synced", sa.Integer, nullable=False, default=0),
         sa.Column("created_at", T, nullable=False), sa.Column("retired_at", T),
         sa.UniqueConstraint("list_name", "email_key"))
sa.Table("suppressions", frozen,
         sa.Column("id", sa.Integer, primary_key=True),
         sa.Column("email_key", sa.String(320), nullable=False, index=True),
         sa.Column("list_name", sa.String(100), nullable=False, default="*"),
         sa.Column("reason", sa.String(20), nullable=False),
         sa.Column("detail", sa.Text, nullable=False, default=""),
         sa.Column("at", T, nullable=False),
         sa.UniqueConstraint("email_key", "list_name"))
sa.Table("list_files", frozen,
         sa.Column("list_name", sa.String(100), primary_key=True),
         sa.Column("sha256", sa.String(64), nullable=False),
         sa.Column("synced_at", T, nullable=False))
sa.Table("editions", frozen,
         sa.Column("id", sa.Integer, primary_key=True),
         sa.Column("list_name", sa.String(100), nullable=False),
         sa.Column("since", T, nullable=False), sa.Column("until", T, nullable=False),
         *[sa.Column(name, sa.Text, nullable=False) for name in ("subject", "html", "text", "tokens", "web_url")],
         sa.Column("status", sa.String(10), nullable=False),
         sa.Column("created_at", T, nullable=False), sa.Column("finished_at", T),
         sa.Index("ix_editions_list", "list_name", "since", "until"))
sa.Table("deliveries", frozen,
         sa.Column("id", sa.Integer, primary_key=True),
         sa.Column("edition_id", sa.Integer, sa.ForeignKey("editions.id"), nullable=False),
         sa.Column("subscriber_id", sa.Integer, nullable=False),
         sa.Column("email", sa.String(320), nullable=False),
         sa.Column("email_key", sa.String(320), nullable=False),
         sa.Column("name", sa.Text, nullable=False),
         sa.Column("status", sa.String(12), nullable=False),
         sa.Column("message_id", sa.Text), sa.Column("error", sa.Text), sa.Column("updated_at", T),
         sa.Column("event", sa.String(20)), sa.Column("event_at", T),
         sa.UniqueConstraint("edition_id", "subscriber_id"),
         sa.Index("ix_deliveries_state", "edition_id", "status", "id"))
sa.Table("locks", frozen,
         sa.Column("name", sa.String(200), primary_key=True),
         sa.Column("holder", sa.String(200), nullable=False),
         sa.Column("acquired_at", T, nullable=False))
sa.Table("runs", frozen,
         sa.Column("id", sa.Integer, primary_key=True),
         sa.Column("list_name", sa.String(100), nullable=False, index=True),
         sa.Column("scheduled_for", T), sa.Column("started_at", T, nullable=False),
         sa.Column("finished_at", T), sa.Column("outcome", sa.Text, nullable=False))
sa.Table("provider_events", frozen,
         sa.Column("sg_event_id", sa.String(200), primary_key=True),
         sa.Column("event", sa.String(30), nullable=False),
         sa.Column("email", sa.String(320), nullable=False),
         sa.Column("received_at", T, nullable=False))


class ForeignTable(RuntimeError):
    """A table has one of digest's names but is not digest's: nothing is changed."""


def upgrade() -> None:
    bind = op.get_bind()
    inspector = sa.inspect(bind)
    existing = set(inspector.get_table_names())
    _check_ours(inspector, existing)            # before any change: SQLite applies DDL at once
    for table in frozen.sorted_tables:
        if table.name not in existing:
            table.create(bind)
            continue
        _add_columns(inspector, table)
        _add_indexes(bind, inspector, table)


def _check_ours(inspector: sa.Inspector, existing: set[str]) -> None:
    for table in frozen.sorted_tables:
        if table.name not in existing:
            continue
        have = {column["name"] for column in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name not in have and not column.nullable and getattr(column.default, "arg", None) is None:
                raise ForeignTable(f"the database has a table {table.name} that is not digest's (it has no "
                                   f"column {column.name}); point [database].url at a database of digest's own")


def _add_columns(inspector: sa.Inspector, table: sa.Table) -> None:
    """Columns added to a table after the version that made the database."""
    have = {column["name"] for column in inspector.get_columns(table.name)}
    for column in table.columns:
        if column.name not in have:
            op.add_column(table.name, _addable(column))


def _addable(column: sa.Column) -> sa.Column:
    """A NOT NULL column added to rows that exist gets its default in the DDL."""
    copy = column._copy()
    if not copy.nullable and copy.server_default is None:
        value = getattr(copy.default, "arg", None)
        if value is None:
            raise RuntimeError(f"cannot add NOT NULL column {column.name} without a default")
        literal = (sa.true() if value else sa.false()) if isinstance(value, bool) else str(value)
        copy.server_default = sa.DefaultClause(literal)
    return copy


def _add_indexes(bind: sa.Connection, inspector: sa.Inspector, table: sa.Table) -> None:
    have = {index["name"] for index in inspector.get_indexes(table.name)}
    for index in table.indexes:
        if index.name not in have:
            index.create(bind)


def downgrade() -> None:
    raise NotImplementedError("0001 is the baseline: there is nothing older to go back to")
