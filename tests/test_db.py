"""The data package: the schema comes from Alembic revisions and matches the declared
tables, databases are upgraded once (even by two processes at once), a newer database
is refused, and database errors reach the user as one line."""

from __future__ import annotations

import multiprocessing
import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from click.testing import CliRunner

from digest.cli import cli
from digest.db import Database
from digest.db.schema import head
from digest.db.tables import APSCHEDULER_JOBS, metadata
from digest.errors import StoreError
from digest.models import Post

from .conftest import NOW


def _config(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f'[database]\nurl = "{url}"\n\n[[sources]]\nname = "blog"\nurl = "{tmp_path}/feed.xml"\n',
                    encoding="utf-8")
    return path


def _tables(url: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_the_migrations_build_exactly_the_declared_tables(db_url: str) -> None:
    with Database.open(db_url) as db, db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={
            "include_object": lambda obj, name, kind, reflected, other: name != APSCHEDULER_JOBS})
        differences = compare_metadata(context, metadata)
        assert differences == []
        assert db.schema_state().current == head()
        assert set(metadata.tables) <= set(sa.inspect(connection).get_table_names())


def test_a_database_from_a_newer_digest_is_refused(db_url: str, tmp_path: Path) -> None:
    Database.open(db_url).close()
    engine = sa.create_engine(db_url)
    with engine.begin() as connection:
        connection.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()
    with pytest.raises(StoreError, match=r"made by a newer digest \(revision 9999\); upgrade digest"):
        Database.open(db_url)
    result = CliRunner().invoke(cli, ["--config", str(_config(tmp_path, db_url)), "sources"])
    assert result.exit_code == 1
    assert result.stderr.strip() == ("Error: the database was made by a newer digest (revision 9999); "
                                     "upgrade digest")
    assert "Traceback" not in result.output


def test_db_status_and_upgrade_by_hand(db_url: str, tmp_path: Path) -> None:
    config = str(_config(tmp_path, db_url))
    runner = CliRunner()
    status = runner.invoke(cli, ["--config", config, "db", "status"])
    assert status.exit_code == 0, status.output
    assert f"empty: needs upgrade to {head()}" in status.stdout
    assert "sources" not in _tables(db_url)           # status changes nothing
    upgraded = runner.invoke(cli, ["--config", config, "db", "upgrade"])
    assert upgraded.exit_code == 0, upgraded.output
    assert upgraded.stdout.strip() == f"Created the schema (revision {head()})"
    assert set(metadata.tables) <= _tables(db_url)
    again = runner.invoke(cli, ["--config", config, "db", "upgrade"])
    assert again.stdout.strip() == f"Already up to date (revision {head()})"
    status = runner.invoke(cli, ["--config", config, "db", "status"])
    assert "up to date" in status.stdout


def _open_at_barrier(url: str, barrier: multiprocessing.synchronize.Barrier, results: multiprocessing.Queue) -> None:
    barrier.wait(timeout=30)
    try:
        with Database.open(url) as db:
            results.put(db.schema_state().current)
    except Exception as error:  # noqa: BLE001 - reported to the parent, which fails the test
        results.put(f"{type(error).__name__}: {error}")


def test_two_processes_opening_a_new_database_at_once_both_succeed(db_url: str) -> None:
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(3), context.Queue()
    workers = [context.Process(target=_open_at_barrier, args=(db_url, barrier, results)) for _ in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    answers = sorted(results.get(timeout=5) for _ in workers)
    assert answers == [head()] * 3
    engine = sa.create_engine(db_url)
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT count(*) FROM alembic_version")).scalar_one() == 1
    engine.dispose()


def test_a_locked_database_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    path = tmp_path / "digest.db"
    db = Database.open(f"sqlite:///{path}")
    sa.event.listen(db.engine, "connect", lambda connection, _: connection.execute("PRAGMA busy_timeout=50"))
    db.engine.dispose()                                   # new connections get the short timeout
    holder = sqlite3.connect(path)
    holder.execute("BEGIN EXCLUSIVE")
    post = Post(key="1", title="t", url="https://example.org/1", published=NOW, updated=NOW, author="a",
                html="", text="", comments_total=0, comments_feed=None)
    try:
        with pytest.raises(StoreError) as raised:
            db.content.save_posts(db.content.source_id("blog", "https://example.org", None), [post])
    finally:
        holder.rollback()
        holder.close()
        db.close()
    assert str(raised.value) == "the database is locked by another digest process; try again"


def test_an_unreachable_database_names_the_setting() -> None:
    with pytest.raises(StoreError) as raised:
        Database.open("postgresql+psycopg://nobody:secret@127.0.0.1:1/none")
    message = str(raised.value)
    assert "check [database].url and that the server is running" in message
    assert "secret" not in message and "\n" not in message
