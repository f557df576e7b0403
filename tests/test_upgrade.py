"""Databases written by older versions of digest, opened by today's code: upgraded in
place, and the same answers as the old code gave.

tests/data/legacy/ holds, per old commit, a plain-SQL dump of a database that commit's
own code built (SQLite and PostgreSQL) and what that code answered on it; both come from
tests/support/make_legacy.py (see its top for how to re-run it). Each case loads a dump
into a fresh database, runs the recorded commands in the recorded order through today's
CLI, and compares exit codes and stdout (for the send that is refused as already sent,
that stderr still says so). Preview JSON has no random field, so it is compared whole;
only the next run time in `schedule --list-jobs` depends on today and is left out.
"""

from __future__ import annotations

import json
import re
import shlex
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result

from digest.cli import cli
from digest.db.schema import head

from .support.make_legacy import (
    DATA,
    EXPECTED_COMMANDS,
    REFUSED_SEND,
    ROOT,
    admin,
    config_text,
    copy_examples,
    load_postgres,
    load_sqlite,
    normalise,
    with_database,
)

VERSIONS = ["a95751b", "ee69c4d"]      # a95751b: full schema with the scheduler; ee69c4d: first subscribers
CASES = [pytest.param((sha, backend), id=f"{sha}-{backend}",
                      marks=[pytest.mark.postgres] if backend == "postgres" else [])
         for sha in VERSIONS for backend in ("sqlite", "postgres")]


@dataclass
class Upgraded:
    sha: str
    url: str                        # the upgraded database
    expected: dict[str, dict]       # command -> what the old code answered
    answers: dict[str, Result]      # command -> what today's code answered, in the same order


@pytest.fixture(scope="module", params=CASES)
def upgraded(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Upgraded]:
    """A legacy dump loaded into a fresh database, then every recorded command run once
    through today's CLI (which is what upgrades it)."""
    sha, backend = request.param
    folder = tmp_path_factory.mktemp(f"upgrade-{sha}-{backend}")
    copy_examples(ROOT, folder)
    dump = DATA / f"{sha}.{backend}.sql"
    expected = json.loads((DATA / f"{sha}.expected.json").read_text(encoding="utf-8"))
    assert set(expected) <= set(EXPECTED_COMMANDS), "re-run tests/support/make_legacy.py"
    server, name = None, None
    try:
        if backend == "sqlite":
            load_sqlite(dump, folder / "digest.db")
            url = f"sqlite:///{folder / 'digest.db'}"
        else:
            server = request.getfixturevalue("pg_url")
            name = f"digest_upgrade_{uuid.uuid4().hex[:12]}"
            admin(server, f'CREATE DATABASE "{name}"')
            url = with_database(server, name)
            load_postgres(dump, url)
        config = folder / "config.toml"
        config.write_text(config_text(url), encoding="utf-8")
        runner = CliRunner()
        answers = {command: runner.invoke(cli, ["--config", str(config), *shlex.split(command)[1:]])
                   for command in expected}          # the recorded order
        yield Upgraded(sha, url, expected, answers)
    finally:
        if name is not None:
            admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_same_answers_as_the_old_code(upgraded: Upgraded) -> None:
    """Every command the old version had, in the order it was recorded."""
    problems = [problem for command in upgraded.expected if (problem := _differs(upgraded, command))]
    assert problems == []
    assert len(upgraded.expected) >= 8


def _differs(upgraded: Upgraded, command: str) -> str | None:
    old, new = upgraded.expected[command], upgraded.answers[command]
    context = (f"`{command}`: exit {new.exit_code} (old code: {old['exit_code']})\n"
               f"stderr: {new.stderr.strip()[-2000:]}\nexception: {new.exception!r}")
    if new.exit_code != old["exit_code"] or _stable(command, normalise(command, new.stdout)) != _stable(
            command, old["stdout"]):
        return context + f"\nstdout: {new.stdout[:2000]}"
    if command == REFUSED_SEND:
        when = re.search(r"sent at \d{4}-\d\d-\d\d \d\d:\d\d UTC", old["stderr"])
        if when is None or when.group() not in new.stderr:
            return context
    return None


def _stable(command: str, stdout: str) -> object:
    """What an answer says about the stored data, where later issues changed the answer's
    form on purpose: `picks` gained author, post and first words (issue 12), and the
    preview's selection and JSON grew (issues 12 and 13). Everything else is compared whole."""
    if command == "digest picks weekly":
        return ["\t".join(line.split("\t")[:2]) for line in stdout.splitlines()]
    if command.startswith("digest preview") and stdout.strip().startswith("{"):
        data = json.loads(stdout)
        star = data["comment_of_the_week"]
        return {"period": (data["list"], data["since"], data["until"]),
                "posts": sorted((p["id"], p["title"], p["comments_total"], p["new_comments"]) for p in data["posts"]),
                "star": star["comment"]["id"] if star else None, "pinned": bool(star and star["pinned"]),
                "dropped": data["dropped"].get("excluded", 0)}
    return stdout


def test_stamped_by_alembic(upgraded: Upgraded) -> None:
    """Opening an old database stamps (or upgrades) it, so Alembic knows its revision."""
    engine = sa.create_engine(upgraded.url)
    try:
        with engine.connect() as db:
            assert sa.inspect(db).has_table("alembic_version"), \
                f"no alembic_version table in {sorted(sa.inspect(db).get_table_names())}"
            versions = db.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all()
    finally:
        engine.dispose()
    assert versions == [head()]


def test_status_says_up_to_date_after_the_upgrade(upgraded: Upgraded, tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(config_text(upgraded.url), encoding="utf-8")
    status = CliRunner().invoke(cli, ["--config", str(config), "db", "status"])
    assert status.exit_code == 0, status.output
    assert f"revision {head()} (the newest this digest knows): up to date" in status.stdout


def test_dumps_are_plain_sql() -> None:
    """Loadable by any client: no psql meta-commands left in the PostgreSQL dumps."""
    for sha in VERSIONS:
        for path in (DATA / f"{sha}.sqlite.sql", DATA / f"{sha}.postgres.sql", DATA / f"{sha}.expected.json"):
            assert path.is_file(), f"{path.relative_to(ROOT)} missing; run tests/support/make_legacy.py"
        text = (DATA / f"{sha}.postgres.sql").read_text(encoding="utf-8")
        assert not re.search(r"(?m)^\\", text), f"{sha}.postgres.sql has a psql meta-command"



def test_a_legacy_database_upgraded_by_hand(tmp_path: Path) -> None:
    """`digest db status` recognises a database from before schema versions without
    touching it; `digest db upgrade` brings it to the head in place."""
    load_sqlite(DATA / "ee69c4d.sqlite.sql", tmp_path / "digest.db")
    url = f"sqlite:///{tmp_path / 'digest.db'}"
    config = tmp_path / "config.toml"
    config.write_text(config_text(url), encoding="utf-8")
    runner = CliRunner()
    status = runner.invoke(cli, ["--config", str(config), "db", "status"])
    assert f"made before schema versions: needs upgrade to {head()}" in status.stdout
    engine = sa.create_engine(url)
    assert "synced" not in {c["name"] for c in sa.inspect(engine).get_columns("subscribers")}
    upgraded = runner.invoke(cli, ["--config", str(config), "db", "upgrade"])
    assert upgraded.stdout.strip() == f"Upgraded from the schema before versions to revision {head()}"
    assert "synced" in {c["name"] for c in sa.inspect(engine).get_columns("subscribers")}
    with engine.connect() as db:
        assert db.execute(sa.text("SELECT count(*) FROM subscribers WHERE synced = 0")).scalar_one() == 4
    engine.dispose()
