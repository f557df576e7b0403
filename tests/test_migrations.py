"""Each schema revision after the baseline, applied to a database that has data."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from digest.db import Database, schema

NOW = datetime(2017, 11, 1, tzinfo=UTC).replace(tzinfo=None)


def _at(url: str, revision: str) -> sa.Engine:
    engine = sa.create_engine(url)
    schema.upgrade(engine, revision)
    return engine


def _insert(engine: sa.Engine, table: str, rows: list[dict]) -> None:
    columns = list(rows[0])
    statement = sa.text(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(':' + c for c in columns)})")
    with engine.begin() as db:
        db.execute(statement, rows)


def test_0002_merges_addresses_that_are_one_mailbox(db_url: str) -> None:
    engine = _at(db_url, "0001")
    subscriber = {"list_name": "weekly", "name": "", "extra": "{}", "origin": "file", "synced": 1,
                  "created_at": NOW, "retired_at": None}
    _insert(engine, "subscribers", [
        {**subscriber, "email": "John.Smith@Example.org", "email_key": "John.Smith@example.org", "active": False},
        {**subscriber, "email": "john.smith@example.org", "email_key": "john.smith@example.org", "active": True},
        {**subscriber, "email": "jose@bücher.de", "email_key": "jose@bücher.de", "active": True},
        {**subscriber, "email": "ann@example.org", "email_key": "ann@example.org", "active": True},
    ])
    _insert(engine, "suppressions", [
        {"email_key": "JOSE@bücher.de", "list_name": "*", "reason": "bounced", "detail": "", "at": NOW},
        {"email_key": "jose@xn--bcher-kva.de", "list_name": "*", "reason": "complained", "detail": "", "at": NOW},
    ])
    _insert(engine, "editions", [{"list_name": "weekly", "since": NOW, "until": NOW, "subject": "s", "html": "h",
                                  "text": "t", "tokens": "{}", "web_url": "u", "status": "sent", "created_at": NOW}])
    _insert(engine, "deliveries", [{"edition_id": 1, "subscriber_id": 3, "email": "jose@bücher.de",
                                    "email_key": "jose@bücher.de", "name": "", "status": "accepted"}])
    engine.dispose()

    with Database.open(db_url) as db, db.engine.connect() as connection:
        assert db.schema_state().up_to_date
        rows = connection.execute(sa.text("SELECT id, email, email_key, active FROM subscribers ORDER BY id")).all()
        assert [(r.id, r.email_key, bool(r.active)) for r in rows] == [
            (1, "john.smith@example.org", True),        # the oldest row kept, active because one was
            (3, "jose@xn--bcher-kva.de", True),
            (4, "ann@example.org", True)]
        assert rows[0].email == "John.Smith@Example.org"  # as written, for display
        suppressed = connection.execute(sa.text("SELECT email_key, reason FROM suppressions")).all()
        assert [tuple(r) for r in suppressed] == [("jose@xn--bcher-kva.de", "bounced")]
        delivery = connection.execute(sa.text("SELECT email_key, attempts, next_attempt_at FROM deliveries")).one()
        assert tuple(delivery) == ("jose@xn--bcher-kva.de", 0, None)
        assert db.lists.count("weekly") == 2           # jose is suppressed everywhere


def test_0003_adds_the_reread_flag_to_sources_that_exist(db_url: str) -> None:
    engine = _at(db_url, "0002")
    _insert(engine, "sources", [{"name": "blog", "url": "https://example.org/feed", "kind": "blogger"}])
    engine.dispose()
    with Database.open(db_url) as db:
        source = db.content.source_id("blog", "https://example.org/feed", "blogger")
        assert db.content.reread_posts(source) is False
        db.content.finish_source(source, None, datetime(2017, 11, 1, tzinfo=UTC), reread_posts=True)
        assert db.content.reread_posts(source) is True


def test_0004_keeps_the_posts_and_comments_that_exist_and_adds_their_original_ids(db_url: str) -> None:
    engine = _at(db_url, "0003")
    _insert(engine, "sources", [{"name": "blog", "url": "https://example.org/feed", "kind": "blogger"}])
    _insert(engine, "posts", [{"source_id": 1, "key": "p1", "url": "u", "title": "t", "author": "a",
                               "published": datetime(2017, 11, 1), "updated": datetime(2017, 11, 1), "html": "",
                               "text": "", "stub": False, "hash": "h"}])
    engine.dispose()
    with Database.open(db_url) as db, db.engine.connect() as connection:
        rows = connection.execute(sa.text("SELECT key, original_key FROM posts")).all()
        assert [tuple(r) for r in rows] == [("p1", None)]
        assert connection.execute(sa.text("SELECT count(original_key) FROM comments")).scalar_one() == 0
