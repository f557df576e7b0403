"""Shared fixtures: real servers on loopback, real SQLite and PostgreSQL databases."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from digest import config
from digest.db import Database

from .support.blog import Blog, onprobation
from .support.feedserver import FeedServer
from .support.templates import PG_URL, REUSE, TEMPLATES, Templates, admin, migrate, sweep, unsynced, with_database
from .support.world import ROOT, World

BUILDERS = {"migrated": migrate, "empty": lambda _url: None}

CHROMIUM = os.environ.get("DIGEST_TEST_CHROMIUM", "/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
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
    sweep(PG_URL)                      # what interrupted runs left behind
    return PG_URL


@pytest.fixture(scope="session")
def pg_url(pg_server: str) -> Iterator[str]:
    """A database of this test session's own on that server, so that two test runs (or
    a run and a developer's demo) never share tables; dropped at the end."""
    name = f"digest_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin(pg_server, f'CREATE DATABASE "{name}"', *unsynced(name))
    yield with_database(pg_server, name)
    admin(pg_server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session", autouse=True)
def templates() -> Iterator[Templates]:
    """The migrated (and sample) databases this test process copies; removed at its end."""
    yield TEMPLATES
    TEMPLATES.close()


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each test using this runs twice: on a SQLite file of its own and on this process's
    PostgreSQL database, emptied for it; both at the newest revision, with no rows."""
    if request.param == "sqlite":
        TEMPLATES.copy_sqlite("migrated", migrate, tmp_path / "digest.db")
        return f"sqlite:///{tmp_path / 'digest.db'}"
    url = request.getfixturevalue("pg_url")
    REUSE.reset(url)
    return url


@pytest.fixture(params=["sqlite", "postgres"])
def empty_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Like db_url, but empty: no tables, no revision (for the migration and upgrade tests)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'digest.db'}"
        return
    yield from _postgres_copy(request, "empty")


@pytest.fixture
def fresh_pg_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A PostgreSQL database never written to, at the newest revision (a copy of the
    migrated template): for what depends on how its pages are filled."""
    yield from _postgres_copy(request, "migrated")


def _postgres_copy(request: pytest.FixtureRequest, kind: str) -> Iterator[str]:
    server = request.getfixturevalue("pg_server")
    url = TEMPLATES.copy_postgres(kind, server, BUILDERS[kind])
    yield url
    TEMPLATES.drop(server, sa.engine.make_url(url).database or "")


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


@pytest.fixture(scope="session")
def editorial(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict]:
    """`bench/editorial.py --json` run once per test run (it takes seconds): what it printed,
    and its figures. Under xdist the first worker to ask runs it, holding a lock in the run's
    shared temporary folder; the others read what it wrote."""
    import fcntl
    import json
    import subprocess
    import sys
    here = tmp_path_factory.getbasetemp()
    shared = here.parent if os.environ.get("PYTEST_XDIST_WORKER") else here     # this run's, not every run's
    with open(shared / "editorial.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        kept = shared / "editorial.out"
        if not kept.exists():
            done = subprocess.run([sys.executable, "bench/editorial.py", "--json"], cwd=ROOT, capture_output=True,
                                  text=True, timeout=300)
            assert done.returncode == 0, done.stderr[-3000:]
            kept.write_text(done.stdout, encoding="utf-8")
        out = kept.read_text(encoding="utf-8")
    return out, json.loads(out[out.index("\n{") + 1:])


@pytest.fixture
def demo(tmp_path: Path) -> str:
    """`make demo`'s start in this test's folder: the examples copied and fetched; the
    path of their config."""
    from click.testing import CliRunner

    from digest.cli import cli
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    path = str(tmp_path / "examples" / "config.toml")
    assert CliRunner().invoke(cli, ["--config", path, "fetch"]).exit_code == 0
    return path


@pytest.fixture
def make_world(tmp_path: Path) -> Iterator[Callable[..., World]]:
    """`make_world(url, readers, **sending)`: a World in this test's folder (the sample
    stored, a list file of `readers` addresses, the examples' config), closed after the test."""
    made: list[World] = []

    def make(url: str | None = None, readers: int = 3, **options: Any) -> World:
        made.append(World(tmp_path, url or f"sqlite:///{tmp_path / 'digest.db'}", readers, **options))
        return made[-1]
    yield make
    for world in made:
        world.close()


@pytest.fixture
def world(make_world: Callable[..., World], db_url: str) -> World:
    """The sample world with three subscribers, on SQLite and on PostgreSQL."""
    return make_world(db_url)


@pytest.fixture
def client(world: World) -> Any:
    """The web app of the test's `world` (a module's own `world` fixture, where it has one)."""
    from digest.web import create_app
    return create_app(world.settings, world.db).test_client()


@pytest.fixture(scope="session")
def chromium():
    """One Chromium for the whole run (it takes a second or more to start)."""
    problem = None
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as error:
        problem = f"playwright not installed ({error})"
    if problem is None and not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        problem = f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    if problem:
        if IN_CI:
            pytest.fail(f"{problem} (CI=true: browser tests must run)")
        pytest.skip(problem)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield launched
        launched.close()


@pytest.fixture
def browser(chromium):
    """The run's Chromium; every page a test opens has a browser context of its own
    (cookies, storage, cache), and all of them are closed after the test."""
    yield chromium
    for context in chromium.contexts:
        context.close()


@pytest.fixture
def imap() -> Iterator[Callable[..., Any]]:
    """`imap(user=..., password=...)`: a real IMAP server over TLS (dovecot,
    tests/support/imap_server.py), stopped after the test. CI=true: dovecot must be there."""
    from .support import imap_server
    if not imap_server.available():
        if IN_CI:
            pytest.fail("dovecot is not installed (CI=true: this test must run; .ci/run installs dovecot-imapd)")
        pytest.skip("dovecot is not installed (apt-get install dovecot-imapd)")
    started: list[imap_server.ImapServer] = []

    def start(**options: str) -> imap_server.ImapServer:
        started.append(imap_server.start(**options))
        return started[-1]
    yield start
    for server in started:
        server.stop()


@pytest.fixture
def dovecot(imap: Callable[..., Any]) -> Any:
    """One IMAP server over TLS with its default user (see `imap`)."""
    return imap()
