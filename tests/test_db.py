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


def test_the_migrations_build_exactly_the_declared_tables(empty_db_url: str) -> None:
    with Database.open(empty_db_url) as db, db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={
            "include_object": lambda obj, name, kind, reflected, other: name != APSCHEDULER_JOBS})
        differences = compare_metadata(context, metadata)
        assert differences == []
        assert db.schema_state().current == head()
        assert set(metadata.tables) <= set(sa.inspect(connection).get_table_names())


def test_a_database_from_a_newer_digest_is_refused(empty_db_url: str, tmp_path: Path) -> None:
    Database.open(empty_db_url).close()
    engine = sa.create_engine(empty_db_url)
    with engine.begin() as connection:
        connection.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()
    with pytest.raises(StoreError, match=r"made by a newer digest \(revision 9999\); upgrade digest"):
        Database.open(empty_db_url)
    result = CliRunner().invoke(cli, ["--config", str(_config(tmp_path, empty_db_url)), "sources"])
    assert result.exit_code == 1
    assert result.stderr.strip() == ("Error: the database was made by a newer digest (revision 9999); "
                                     "upgrade digest")
    assert "Traceback" not in result.output


def test_db_status_and_upgrade_by_hand(empty_db_url: str, tmp_path: Path) -> None:
    config = str(_config(tmp_path, empty_db_url))
    runner = CliRunner()
    status = runner.invoke(cli, ["--config", config, "db", "status"])
    assert status.exit_code == 0, status.output
    if empty_db_url.startswith("sqlite"):
        assert "no database at" in status.stdout and not (tmp_path / "digest.db").exists()   # nothing created
    else:
        assert f"empty: needs upgrade to {head()}" in status.stdout
        assert "sources" not in _tables(empty_db_url)       # status changes nothing
    upgraded = runner.invoke(cli, ["--config", config, "db", "upgrade"])
    assert upgraded.exit_code == 0, upgraded.output
    assert upgraded.stdout.strip() == f"Created the schema (revision {head()})"
    assert set(metadata.tables) <= _tables(empty_db_url)
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


def test_two_processes_opening_a_new_database_at_once_both_succeed(empty_db_url: str) -> None:
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(3), context.Queue()
    workers = [context.Process(target=_open_at_barrier, args=(empty_db_url, barrier, results)) for _ in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    answers = sorted(results.get(timeout=5) for _ in workers)
    assert answers == [head()] * 3
    engine = sa.create_engine(empty_db_url)
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


def _sources(tmp_path: Path, url: str) -> object:
    return CliRunner().invoke(cli, ["--config", str(_config(tmp_path, url)), "sources"])


def test_a_foreign_table_is_refused_before_anything_is_created(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as other:
        other.execute("CREATE TABLE comments (id INTEGER PRIMARY KEY, body TEXT)")
    result = _sources(tmp_path, f"sqlite:///{path}")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.stderr.strip() == ("Error: the database has a table comments that is not digest's (it has no "
                                     "column source_id); point [database].url at a database of digest's own")
    assert _tables(f"sqlite:///{path}") == {"comments", "alembic_version"} or _tables(f"sqlite:///{path}") == {
        "comments"}


def test_a_damaged_version_record_is_one_line(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'digest.db'}"
    Database.open(url).close()
    for damage in ("INSERT INTO alembic_version VALUES ('0000')", "DELETE FROM alembic_version; "
                   "INSERT INTO alembic_version VALUES ('head')"):
        engine = sa.create_engine(url)
        with engine.begin() as connection:
            for statement in damage.split("; "):
                connection.execute(sa.text(statement))
        engine.dispose()
        result = _sources(tmp_path, url)
        assert result.exit_code == 1 and "Traceback" not in result.output, result.output
        assert result.stderr.count("\n") == 1 and result.stderr.startswith("Error: ")
        assert "alembic_version table is damaged" in result.stderr or "(revision head)" in result.stderr


def test_database_urls_that_cannot_work_are_one_line_without_the_password(tmp_path: Path) -> None:
    unreadable = _sources(tmp_path, "postgresql+psycopg://postgres:pw@127.0.0.1:notaport/test")
    assert unreadable.exit_code == 2 and unreadable.stderr.startswith("Error: [database].url: cannot read")
    assert "pw@" not in unreadable.stderr and "Traceback" not in unreadable.output
    at_sign = _sources(tmp_path, "postgresql+psycopg://postgres:S3cret@PW@127.0.0.1:1/test")
    assert at_sign.exit_code == 1 and "S3cret" not in at_sign.stderr and "PW" not in at_sign.stderr
    assert at_sign.stderr.count("\n") == 1


def test_status_changes_nothing_and_a_lock_folder_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "legacy.db"
    with sqlite3.connect(path) as legacy:
        legacy.executescript((Path(__file__).parent / "data" / "legacy" / "ee69c4d.sqlite.sql").read_text())
        assert legacy.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    config = str(_config(tmp_path, f"sqlite:///{path}"))
    status = CliRunner().invoke(cli, ["--config", config, "db", "status"])
    assert "made before schema versions" in status.stdout
    with sqlite3.connect(path) as legacy:
        assert legacy.execute("PRAGMA journal_mode").fetchone()[0] == "delete"      # not switched to WAL
    (tmp_path / "legacy.db.upgrade-lock").mkdir()
    upgrade = CliRunner().invoke(cli, ["--config", config, "db", "upgrade"])
    assert upgrade.exit_code == 1 and "Traceback" not in upgrade.output
    assert upgrade.stderr.startswith("Error: cannot create ") and "upgrade-lock" in upgrade.stderr
