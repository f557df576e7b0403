"""Each schema revision after the baseline, applied to a database that has data."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from digest.db import Database, schema

NOW = datetime(2017, 11, 1, tzinfo=UTC).replace(tzinfo=None)


def _at(url: str, revision: str) -> sa.Engine:
    engine = sa.create_engine(url)
    schema.upgrade(engine, revision)
    return engine


def _down(url: str, revision: str) -> sa.Engine:
    """Downgrade the database to revision; an engine on it."""
    from alembic import command
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        config = schema.alembic_config()
        config.attributes["connection"] = connection
        command.downgrade(config, revision)
    return engine


def _insert(engine: sa.Engine, table: str, rows: list[dict]) -> None:
    columns = list(rows[0])
    statement = sa.text(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(':' + c for c in columns)})")
    with engine.begin() as db:
        db.execute(statement, rows)


def test_0002_merges_addresses_that_are_one_mailbox(empty_db_url: str) -> None:
    engine = _at(empty_db_url, "0001")
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

    with Database.open(empty_db_url) as db, db.engine.connect() as connection:
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


def test_0003_adds_the_reread_flag_to_sources_that_exist(empty_db_url: str) -> None:
    engine = _at(empty_db_url, "0002")
    _insert(engine, "sources", [{"name": "blog", "url": "https://example.org/feed", "kind": "blogger"}])
    engine.dispose()
    with Database.open(empty_db_url) as db:
        source = db.content.source_id("blog", "https://example.org/feed", "blogger")
        assert db.content.reread_posts(source) is False
        db.content.finish_source(source, None, datetime(2017, 11, 1, tzinfo=UTC), reread_posts=True)
        assert db.content.reread_posts(source) is True


def test_0004_keeps_the_posts_and_comments_that_exist_and_adds_their_original_ids(empty_db_url: str) -> None:
    engine = _at(empty_db_url, "0003")
    _insert(engine, "sources", [{"name": "blog", "url": "https://example.org/feed", "kind": "blogger"}])
    _insert(engine, "posts", [{"source_id": 1, "key": "p1", "url": "u", "title": "t", "author": "a",
                               "published": datetime(2017, 11, 1), "updated": datetime(2017, 11, 1), "html": "",
                               "text": "", "stub": False, "hash": "h"}])
    engine.dispose()
    with Database.open(empty_db_url) as db, db.engine.connect() as connection:
        rows = connection.execute(sa.text("SELECT key, original_key FROM posts")).all()
        assert [tuple(r) for r in rows] == [("p1", None)]
        assert connection.execute(sa.text("SELECT count(original_key) FROM comments")).scalar_one() == 0


def test_0005_keeps_the_editions_that_exist_without_a_note_and_starts_with_no_drafts(empty_db_url: str) -> None:
    engine = _at(empty_db_url, "0004")
    _insert(engine, "editions", [{"list_name": "weekly", "since": NOW, "until": NOW, "subject": "s", "html": "h",
                                  "text": "t", "tokens": "{}", "web_url": "u", "status": "sent", "created_at": NOW}])
    engine.dispose()
    with Database.open(empty_db_url) as db, db.engine.connect() as connection:
        assert [tuple(r) for r in connection.execute(sa.text("SELECT subject, note FROM editions"))] == [("s", None)]
        assert db.drafts.get("weekly").note is None
        for table in ("drafts", "editor_sessions", "welcomes"):
            assert connection.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one() == 0


def test_0006_members_synced_before_it_are_hashed_by_the_next_sync(empty_db_url: str, tmp_path) -> None:
    from digest.send.subscribers import sync
    engine = _at(empty_db_url, "0005")
    _insert(engine, "subscribers", [
        {"list_name": "weekly", "email_key": f"r{n}@example.org", "email": f"r{n}@example.org", "name": "",
         "extra": "{}", "origin": "file", "active": True, "synced": 1, "created_at": NOW} for n in range(3)])
    engine.dispose()
    path = tmp_path / "weekly.csv"
    path.write_text("email\nr0@example.org\nr1@example.org\n", encoding="utf-8")
    with Database.open(empty_db_url) as db:
        result = sync(db.lists, "weekly", path, NOW)
        assert (result.added, result.retired) == (0, 1)               # r2 left the file
        with db.engine.connect() as connection:
            rows = connection.execute(sa.text("SELECT email, active, row_hash FROM subscribers ORDER BY email")).all()
    assert [(r.email, bool(r.active), r.row_hash is not None) for r in rows] == [
        ("r0@example.org", True, True), ("r1@example.org", True, True), ("r2@example.org", False, False)]


def test_0007_keeps_the_ledger_and_no_index_holds_a_delivery_status(empty_db_url: str) -> None:
    engine = _at(empty_db_url, "0006")
    _insert(engine, "editions", [{"list_name": "weekly", "since": NOW, "until": NOW, "subject": "s", "html": "h",
                                  "text": "t", "tokens": "{}", "web_url": "u", "status": "sending", "created_at": NOW}])
    _insert(engine, "deliveries", [{"edition_id": 1, "subscriber_id": n, "email": f"r{n}@example.org",
                                    "email_key": f"r{n}@example.org", "name": "", "status": status, "attempts": 0}
                                   for n, status in enumerate(["accepted", "pending", "sending"])])
    engine.dispose()
    with Database.open(empty_db_url) as db, db.engine.connect() as connection:
        assert db.schema_state().up_to_date
        indexes = {i["name"]: i["column_names"] for i in sa.inspect(connection).get_indexes("deliveries")}
        assert indexes["ix_deliveries_order"] == ["edition_id", "id"]
        assert indexes["ix_deliveries_address"] == ["edition_id", "email_key"]
        assert not [name for name, columns in indexes.items() if "status" in columns]
        assert [r.email for r in db.ledger.claim(1, 10, "me", NOW, NOW)] == ["r1@example.org"]
        assert {s.value: n for s, n in db.ledger.counts(1).items()} == {"accepted": 1, "pending": 1, "sending": 1}
        if db.engine.dialect.name == "postgresql":
            options = connection.execute(sa.text("SELECT reloptions FROM pg_class WHERE relname = 'deliveries'"))
            assert options.scalar_one() == ["fillfactor=50"]


def _indexes(engine: sa.Engine) -> set[str]:
    with engine.connect() as connection:
        return {i["name"] for i in sa.inspect(connection).get_indexes("deliveries")}


def test_a_revision_cut_off_halfway_leaves_the_revision_before_whole(empty_db_url: str) -> None:
    """0007 drops an index, then builds two: stopped after the first build (here by a
    name already taken; a crash or Ctrl-C does the same), the database is still 0006
    with its index, not 0006 by name and half 0007 (which no later upgrade could pass:
    the index it drops first is gone)."""
    engine = _at(empty_db_url, "0006")
    with engine.begin() as db:
        db.execute(sa.text("CREATE INDEX ix_deliveries_address ON deliveries (name)"))    # in 0007's way
    with pytest.raises(sa.exc.SQLAlchemyError):
        schema.upgrade(engine)
    with engine.connect() as connection:
        assert schema.state(connection).current == "0006"
    assert {"ix_deliveries_state", "ix_deliveries_address"} <= _indexes(engine)
    assert "ix_deliveries_order" not in _indexes(engine)
    with engine.begin() as db:
        db.execute(sa.text("DROP INDEX ix_deliveries_address"))
    schema.upgrade(engine)
    assert {"ix_deliveries_order", "ix_deliveries_address"} <= _indexes(engine)
    engine.dispose()


def test_0007_downgrades_to_the_status_index_and_back(empty_db_url: str) -> None:
    _at(empty_db_url, "head").dispose()
    engine = _down(empty_db_url, "0006")
    assert "ix_deliveries_state" in _indexes(engine)
    assert not {"ix_deliveries_order", "ix_deliveries_address"} & _indexes(engine)
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            options = connection.execute(sa.text("SELECT reloptions FROM pg_class WHERE relname = 'deliveries'"))
            assert options.scalar_one() is None
    schema.upgrade(engine)
    assert {"ix_deliveries_order", "ix_deliveries_address"} <= _indexes(engine)
    engine.dispose()


def test_0008_adds_the_doctors_findings_and_keeps_what_exists(empty_db_url: str) -> None:
    engine = _at(empty_db_url, "0007")
    _insert(engine, "runs", [{"list_name": "weekly", "scheduled_for": NOW, "started_at": NOW, "finished_at": NOW,
                              "outcome": "recipients 3, accepted 3"}])
    engine.dispose()
    with Database.open(empty_db_url) as db, db.engine.connect() as connection:
        assert db.schema_state().up_to_date and db.checks.latest() is None
        assert connection.execute(sa.text("SELECT outcome FROM runs")).scalar_one() == "recipients 3, accepted 3"
        db.checks.record([{"check": "config", "ok": True, "detail": "d", "fix": ""}], "doctor", NOW)
        when, by, results = db.checks.latest()
        assert by == "doctor" and results[0]["check"] == "config"
    engine = _down(empty_db_url, "0007")                         # and back: the table goes, nothing else
    with engine.connect() as connection:
        assert not sa.inspect(connection).has_table("checks") and sa.inspect(connection).has_table("runs")
    schema.upgrade(engine)
    engine.dispose()


def test_0009_and_0010_keep_the_editions_sent_and_add_the_desk_and_the_signals(empty_db_url: str) -> None:
    """An edition sent before the editor's desk: after 0009 it is sent, never held, with no
    decision; after 0010 it has no counted links (its mail went out with direct ones) and
    the bounce mailbox starts empty. And back down to 0008, and up again."""
    engine = _at(empty_db_url, "0008")
    _insert(engine, "editions", [{"list_name": "weekly", "since": NOW, "until": NOW, "subject": "s", "html": "h",
                                  "text": "t", "tokens": '{"html": {}, "text": {}}', "web_url": "u", "status": "sent",
                                  "created_at": NOW, "finished_at": NOW}])
    _insert(engine, "deliveries", [{"edition_id": 1, "subscriber_id": 1, "email": "r@example.org",
                                    "email_key": "r@example.org", "name": "", "status": "accepted", "attempts": 0}])
    engine.dispose()
    with Database.open(empty_db_url) as db:
        assert db.schema_state().up_to_date
        row = db.ledger.info(1)
        assert (row.status, row.held_at, row.decision, row.threads) == ("sent", None, None, None)
        assert db.ledger.links(1) == [] and db.ledger.clicks([1]) == {}
        assert db.bounces.by_address("r@example.org").edition_id == 1          # old deliveries are found
        from digest.models import Link
        db.ledger.replace(1, db.ledger.edition(1), NOW, [], [Link(1, "https://blog.example/p")])   # not held: no-op
        assert db.ledger.links(1) == []
    engine = _down(empty_db_url, "0008")
    with engine.connect() as connection:
        inspector = sa.inspect(connection)
        assert not inspector.has_table("links") and not inspector.has_table("bounce_messages")
        assert not inspector.has_table("orders") and "held_at" not in {c["name"] for c in inspector.get_columns(
            "editions")}
        assert connection.execute(sa.text("SELECT subject FROM editions")).scalar_one() == "s"
    schema.upgrade(engine)
    engine.dispose()


def test_0011_and_0012_free_the_ledger_and_read_a_list_file_synced_before_sizes_whole_once(empty_db_url: str,
                                                                                         tmp_path) -> None:
    """A ledger row from before shared sends is held by nobody; a list file synced before
    sizes were kept is read whole on its next change (appended or not), then by its tail."""
    from digest.send.subscribers import sync
    engine = _at(empty_db_url, "0010")
    _insert(engine, "editions", [{"list_name": "weekly", "since": NOW, "until": NOW, "subject": "s", "html": "h",
                                  "text": "t", "tokens": '{"html": {}, "text": {}}', "web_url": "u",
                                  "status": "sending", "created_at": NOW}])
    _insert(engine, "deliveries", [{"edition_id": 1, "subscriber_id": 1, "email": "r@example.org",
                                    "email_key": "r@example.org", "name": "", "status": "pending", "attempts": 0}])
    engine.dispose()
    path = tmp_path / "weekly.csv"
    path.write_text("email\nr0@example.org\n", encoding="utf-8")
    with Database.open(empty_db_url) as db:
        taken = db.ledger.claim(1, 10, "host:1:a", NOW, NOW.replace(year=2030))
        assert [row.email for row in taken] == ["r@example.org"]              # nobody held it
        sync(db.lists, "weekly", path, NOW)
        with db.engine.begin() as connection:                               # as synced before 0012
            connection.execute(sa.text("UPDATE list_files SET size = NULL"))
        assert sync(db.lists, "weekly", path, NOW).added == 0               # unchanged: its size is noted
        assert db.lists.last_file("weekly").size == path.stat().st_size
    engine = _down(empty_db_url, "0010")
    with engine.connect() as connection:
        inspector = sa.inspect(connection)
        assert "size" not in {c["name"] for c in inspector.get_columns("list_files")}
        assert "claimed_by" not in {c["name"] for c in inspector.get_columns("deliveries")}
        assert connection.execute(sa.text("SELECT count(*) FROM deliveries")).scalar_one() == 1
    schema.upgrade(engine)
    engine.dispose()


def test_0013_adds_mail_mode_and_never_posts_an_edition_sent_before_it(empty_db_url: str) -> None:
    """An edition sent before mail mode has no posted_at (it is not posted late); the mailbox's
    requests and the sign-ups by mail start empty. And back down to 0012, and up again."""
    engine = _at(empty_db_url, "0012")
    _insert(engine, "editions", [{"list_name": "weekly", "since": NOW, "until": NOW, "subject": "s", "html": "h",
                                  "text": "t", "tokens": '{"html": {}, "text": {}}', "web_url": "u", "status": "sent",
                                  "created_at": NOW, "finished_at": NOW}])
    engine.dispose()
    with Database.open(empty_db_url) as db:
        assert db.schema_state().up_to_date
        with db.engine.connect() as connection:
            assert connection.execute(sa.text("SELECT posted_at FROM editions")).scalar_one() is None
            assert connection.execute(sa.text("SELECT count(*) FROM mail_signups")).scalar_one() == 0
        assert db.inbox.seen("<a@b>") is None
        assert db.inbox.record("<a@b>", "unsubscribe", "unsubscribed", False, NOW)
        assert not db.inbox.record("<a@b>", "unsubscribe", "again", True, NOW)      # once
        assert db.inbox.seen("<a@b>") is False
    engine = _down(empty_db_url, "0012")
    with engine.connect() as connection:
        inspector = sa.inspect(connection)
        assert not inspector.has_table("mail_messages") and not inspector.has_table("mail_signups")
        assert "posted_at" not in {c["name"] for c in inspector.get_columns("editions")}
        assert connection.execute(sa.text("SELECT subject FROM editions")).scalar_one() == "s"
    schema.upgrade(engine)
    engine.dispose()
