"""Shared fixtures: real servers on loopback, real SQLite and PostgreSQL databases."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from digest import config
from digest.db import Database
from digest.db.tables import metadata

from .support.blog import Blog, onprobation
from .support.feedserver import FeedServer

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
PG_URL = os.environ.get("DIGEST_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
NOW = datetime(2017, 11, 1, 9, 0, tzinfo=UTC)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--regen-golden", action="store_true",
                     help="rewrite tests/golden/ from the current output (then review it by eye)")


@pytest.fixture
def regen_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--regen-golden"))


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: this test must run, not skip)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def pg_server() -> str:
    """The PostgreSQL server's URL (its `test` database), checked once."""
    try:
        engine = sa.create_engine(PG_URL)
        with engine.connect() as db:
            db.execute(sa.text("select 1"))
        engine.dispose()
    except Exception as error:  # noqa: BLE001 - any failure means no server to test against
        _unavailable(f"PostgreSQL not reachable at {PG_URL}: {str(error).splitlines()[0]}")
    return PG_URL


@pytest.fixture(scope="session")
def pg_url(pg_server: str) -> Iterator[str]:
    """A database of this test session's own on that server, so that two test runs (or
    a run and a developer's demo) never share tables; dropped at the end."""
    name = f"digest_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(pg_server, isolation_level="AUTOCOMMIT")
    with admin.connect() as db:
        db.execute(sa.text(f'CREATE DATABASE "{name}"'))
    yield sa.engine.make_url(pg_server).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as db:
        db.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each test using this runs twice: on a fresh SQLite file and a clean PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'digest.db'}"
    url = request.getfixturevalue("pg_url")
    engine = sa.create_engine(url)
    metadata.drop_all(engine)
    with engine.begin() as db:
        db.execute(sa.text("DROP TABLE IF EXISTS apscheduler_jobs"))   # APScheduler's own table
        db.execute(sa.text("DROP TABLE IF EXISTS alembic_version"))    # Alembic's record of the schema
    engine.dispose()
    return url


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    opened = Database.open(db_url)
    yield opened
    opened.close()


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    server = FeedServer().start()
    yield server
    server.stop()


@pytest.fixture
def blog(feed_server: FeedServer, tmp_path: Path) -> Blog:
    """On Probation's feeds, served on loopback."""
    return Blog(feed_server, tmp_path / "blog", onprobation())


def make_settings(tmp_path: Path, sources: list[dict], **sections: dict) -> config.Settings:
    data = {"sources": sources, "fetch": {"retries": 1, "backoff": 0, "timeout": 5}, **sections}
    return config.from_dict(data, root=tmp_path)
