"""Build the legacy databases that tests/test_upgrade.py upgrades with today's code.

Re-run from the repository root (PostgreSQL on 127.0.0.1:5432 with trust auth, or
DIGEST_TEST_PG_URL; `sqlite3`, `psql` and `pg_dump` on PATH):

    .venv/bin/python tests/support/make_legacy.py              # every version in VERSIONS
    .venv/bin/python tests/support/make_legacy.py ee69c4d      # one version

For each commit it uses a worktree /tmp/legacy-<sha> (made with `git worktree add --detach`
if missing; the checkout in the repo is never touched) and runs THAT commit's code only,
in subprocesses with PYTHONPATH=/tmp/legacy-<sha>, once on SQLite and once on a scratch
PostgreSQL database (`legacy_build`, dropped afterwards):

  1. `digest fetch` of the offline sample (examples/onprobation, list `weekly`, outbox);
  2. `digest pin weekly A`, then `digest send weekly --since 2017-10-25 --until 2017-11-01 --yes`
     (the pin is used up by that edition, which has ledger rows);
  3. `digest subscribers add weekly someone@example.net --name Someone` and
     `digest subscribers remove weekly reader.two@example.org` (a suppression);
  4. `digest pin weekly B` and `digest exclude weekly C` (waiting for the next edition);
  5. a95751b only: schedule.build() with a BackgroundScheduler, started and stopped (its
     `apscheduler_jobs` row), and one scheduled run (`schedule._run`, refused as already
     sent) written to `runs` by the scheduler's own recorder.

The old code runs on a frozen clock (2017-11-01 09:00 UTC, one minute later per step:
every `datetime` name in the digest modules, and APScheduler's, is swapped for a class
whose now() returns it), so both backends hold the same times and the dumps only change
where the old code itself is random (message ids). Then each database is dumped to plain
SQL (`sqlite3 DB .dump`; `pg_dump --inserts --no-owner --no-privileges`, with psql's
\\restrict/\\unrestrict lines removed so any client can run it) as
tests/data/legacy/<sha>.{sqlite,postgres}.sql, loaded back into a fresh database, and the
old code's answers to EXPECTED_COMMANDS (those the commit has), in that order and on the
real clock, are recorded in tests/data/legacy/<sha>.expected.json as
{command: {exit_code, stdout, stderr}}. The answers must be the same on both backends and
on a second run (the script stops if not); the one part that depends on today's date
(the next run in `schedule --list-jobs`) is replaced by a placeholder (NOW_DEPENDENT).
Takes about 40 s per commit.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "legacy"
VERSIONS = ["a95751b", "ee69c4d"]
BUILD = Path("/tmp/digest-legacy-build")      # fixed, so paths pickled into job rows are stable
PG_URL = os.environ.get("DIGEST_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
START = datetime(2017, 11, 1, 9, 0, tzinfo=UTC)
WEEK = ["--since", "2017-10-25", "--until", "2017-11-01"]
REMOVED = "reader.two@example.org"            # from examples/subscribers/weekly.csv

EXPECTED_COMMANDS = [
    "digest sources",
    "digest editions",
    "digest send weekly --since 2017-10-25 --until 2017-11-01 --yes",
    "digest picks weekly",
    "digest subscribers list weekly",
    "digest preview weekly --since 2017-10-25 --until 2017-11-01 --format json",
    # these read whole subscriber rows and write a list sync: what an old schema breaks
    "digest subscribers export weekly",
    "digest subscribers list weekly --sync",
    # the scheduler's history (runs) as today's code shows it; a95751b only
    "digest schedule --list-jobs",
]
REFUSED_SEND = EXPECTED_COMMANDS[2]
SCHEDULER_ONLY = {"digest schedule --list-jobs"}
# Parts of an answer that depend on today's date, not on the database: replaced by a
# placeholder in the recorded answer and in the answer compared with it.
NOW_DEPENDENT = {"digest schedule --list-jobs": (r"\tnext [^\t]*", "\tnext (depends on today: not compared)")}


def normalise(command: str, stdout: str) -> str:
    if command in NOW_DEPENDENT:
        pattern, placeholder = NOW_DEPENDENT[command]
        return re.sub(pattern, placeholder, stdout)
    return stdout


def commands_for(sha: str) -> list[str]:
    return [c for c in EXPECTED_COMMANDS if c not in SCHEDULER_ONLY or has_scheduler(sha)]


def config_text(database_url: str) -> str:
    """The settings both the old and the new code read: only keys ee69c4d already knew.
    Paths are relative to the config's folder, which holds copies of examples/onprobation,
    examples/subscribers and templates (see copy_examples)."""
    return f"""\
[site]
title = "On Probation"
url = "https://probationmatters.blogspot.com"

[database]
url = "{database_url}"

[[sources]]
name = "on-probation"
url = "onprobation"
kind = "blogger"
backfill_days = 0

[email]
templates = "templates"

[[lists]]
name = "weekly"
file = "subscribers/weekly.csv"
schedule = "0 7 * * mon"
timezone = "Europe/London"
period = "7d"

[sending]
backend = "outbox"
from = "On Probation digest <digest@example.org>"

[sending.outbox]
dir = "outbox"

[web]
base_url = "http://localhost:8000"
insecure_dev_mode = true
"""


def copy_examples(source_root: Path, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copytree(source_root / "examples" / "onprobation", folder / "onprobation")
    shutil.copytree(source_root / "examples" / "subscribers", folder / "subscribers")
    shutil.copytree(source_root / "templates", folder / "templates")


# ------------------------------------------------------------------ loading a dump (also used by the test)

def load_sqlite(dump: Path, db_file: Path) -> None:
    db = sqlite3.connect(db_file)
    try:
        db.executescript(dump.read_text(encoding="utf-8"))
    finally:
        db.close()


def libpq_url(url: str) -> str:
    """postgresql+psycopg://... -> postgresql://... (what psycopg and psql take)."""
    import sqlalchemy as sa
    return sa.engine.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def load_postgres(dump: Path, url: str) -> None:
    """Run a plain pg_dump script on its own connection (it empties search_path)."""
    import psycopg
    with psycopg.connect(libpq_url(url), autocommit=True) as db:
        db.execute(dump.read_text(encoding="utf-8"))


def with_database(url: str, name: str) -> str:
    import sqlalchemy as sa
    return sa.engine.make_url(url).set(database=name).render_as_string(hide_password=False)


def admin(url: str, statement: str) -> None:
    import sqlalchemy as sa
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as db:
            db.execute(sa.text(statement))
    finally:
        engine.dispose()


# ------------------------------------------------------------------ running the old code

FREEZE = """
import datetime as _dt, importlib, os, sys
_NOW = os.environ.get("DIGEST_LEGACY_NOW")
def _freeze(modules):
    if not _NOW:
        return
    now = _dt.datetime.fromisoformat(_NOW)
    class Frozen(_dt.datetime):
        @classmethod
        def now(cls, tz=None):
            return now.astimezone(tz) if tz else now.astimezone(_dt.UTC).replace(tzinfo=None)
    for module in modules:
        if getattr(module, "datetime", None) is _dt.datetime:
            module.datetime = Frozen
for _name in ("digest.cli", "digest.send.mailers.outbox", "digest.send.mailers.smtp"):
    importlib.import_module(_name)
"""

CLI = FREEZE + """
_freeze([m for n, m in list(sys.modules.items()) if n == "digest" or n.startswith("digest.")])
from digest.cli import main
sys.argv[0] = "digest"
main()
"""

SCHEDULER = FREEZE + """
from pathlib import Path
import apscheduler.executors.base, apscheduler.schedulers.base
from apscheduler.events import EVENT_JOB_EXECUTED, JobExecutionEvent
from apscheduler.schedulers.background import BackgroundScheduler
from digest import config, schedule
from digest.store import connect
_freeze([m for n, m in list(sys.modules.items()) if n == "digest" or n.startswith("digest.")]
        + [apscheduler.schedulers.base, apscheduler.executors.base])
now = _dt.datetime.fromisoformat(_NOW)
config_path = Path(sys.argv[1])
settings = config.load(config_path)
store = connect(settings.database_url())
running = schedule.build(settings, config_path, store, scheduler_class=BackgroundScheduler, now=now)
running.scheduler.start()
outcome = schedule._run(settings, store, "weekly", now)
schedule._recorder(store)(JobExecutionEvent(EVENT_JOB_EXECUTED, schedule.job_id("weekly"), "default", now,
                                            retval=outcome))
running.stop()
store.close()
print(outcome)
"""


def worktree(sha: str) -> Path:
    path = Path(f"/tmp/legacy-{sha}")
    if not path.exists():
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(path), sha], check=True)
    return path


class OldCode:
    """One commit's code, run in subprocesses on one config, on a clock that we move."""

    def __init__(self, sha: str, folder: Path) -> None:
        self.code = worktree(sha)
        self.folder = folder
        self.config = folder / "config.toml"
        self.clock: datetime | None = START

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("DIGEST_") and k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        env["PYTHONPATH"] = str(self.code)
        if self.clock is not None:
            env["DIGEST_LEGACY_NOW"] = self.clock.isoformat()
            self.clock += timedelta(minutes=1)
        return env

    def run(self, *args: str, check: bool = True) -> dict:
        done = subprocess.run([sys.executable, "-c", CLI, "--config", str(self.config), *args],
                              cwd=self.folder, env=self._env(), capture_output=True, text=True, timeout=300)
        if check and done.returncode != 0:
            raise SystemExit(f"digest {shlex.join(args)} failed ({done.returncode}):\n{done.stderr}")
        return {"exit_code": done.returncode, "stdout": done.stdout, "stderr": done.stderr}

    def scheduler(self) -> str:
        done = subprocess.run([sys.executable, "-c", SCHEDULER, str(self.config)], cwd=self.folder,
                              env=self._env(), capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            raise SystemExit(f"scheduler step failed:\n{done.stderr}")
        return done.stdout.strip()


def has_scheduler(sha: str) -> bool:
    return (worktree(sha) / "digest" / "schedule.py").exists()


def thread_ids(preview_json: str) -> list[str]:
    built = json.loads(preview_json)
    return [thread["comment"]["id"] for post in built["posts"] for thread in post.get("threads", [])]


def build(sha: str, url: str, folder: Path) -> None:
    """Make the legacy database at url with the old code."""
    copy_examples(worktree(sha), folder)
    (folder / "config.toml").write_text(config_text(url), encoding="utf-8")
    old = OldCode(sha, folder)
    print(old.run("fetch")["stdout"], end="")
    ids = thread_ids(old.run("preview", "weekly", *WEEK, "--format", "json")["stdout"])
    used, pinned, excluded = ids[1], ids[-1], ids[-2]
    old.run("pin", "weekly", used)                                  # used up by the send below
    print(old.run("send", "weekly", *WEEK, "--yes")["stdout"], end="")
    old.run("subscribers", "add", "weekly", "someone@example.net", "--name", "Someone")
    old.run("subscribers", "remove", "weekly", REMOVED)
    old.run("pin", "weekly", pinned)
    old.run("exclude", "weekly", excluded)
    if has_scheduler(sha):
        print("scheduled run:", old.scheduler())


def answers(sha: str, folder: Path) -> dict[str, dict]:
    """The old code's answers on the database folder's config points at, real clock."""
    old = OldCode(sha, folder)
    old.clock = None
    found = {}
    for command in commands_for(sha):
        found[command] = old.run(*shlex.split(command)[1:], check=False)
        found[command]["stdout"] = normalise(command, found[command]["stdout"])
    return found


def row_counts(url: str) -> dict[str, int]:
    import sqlalchemy as sa
    engine = sa.create_engine(url)
    try:
        with engine.connect() as db:
            names = sorted(sa.inspect(db).get_table_names())
            return {n: db.execute(sa.text(f'SELECT count(*) FROM "{n}"')).scalar_one() for n in names}
    finally:
        engine.dispose()


def pg_args(url: str) -> list[str]:
    import sqlalchemy as sa
    parsed = sa.engine.make_url(url)
    return ["-h", parsed.host or "127.0.0.1", "-p", str(parsed.port or 5432), "-U", parsed.username or "postgres"]


def dump_sqlite(db_file: Path, out: Path) -> None:
    text = subprocess.run(["sqlite3", str(db_file), ".dump"], capture_output=True, text=True, check=True).stdout
    out.write_text(text, encoding="utf-8")


def dump_postgres(url: str, out: Path) -> None:
    import sqlalchemy as sa
    name = sa.engine.make_url(url).database
    text = subprocess.run(["pg_dump", *pg_args(url), "--inserts", "--no-owner", "--no-privileges", name],
                          capture_output=True, text=True, check=True).stdout
    # psql meta-commands (a random key per dump) that no other client understands
    text = re.sub(r"(?m)^\\(un)?restrict .*\n", "", text)
    out.write_text(text, encoding="utf-8")


def make(sha: str) -> None:
    DATA.mkdir(parents=True, exist_ok=True)
    recorded: dict[str, dict[str, dict]] = {}
    counts: dict[str, dict[str, int]] = {}
    for backend in ("sqlite", "postgres"):
        folder = BUILD / f"{sha}-{backend}"
        check = BUILD / f"{sha}-{backend}-check"
        for path in (folder, check):
            shutil.rmtree(path, ignore_errors=True)
        dump = DATA / f"{sha}.{backend}.sql"
        print(f"== {sha} on {backend}")
        if backend == "sqlite":
            build(sha, "sqlite:///digest.db", folder)
            dump_sqlite(folder / "digest.db", dump)
            copy_examples(worktree(sha), check)
            load_sqlite(dump, check / "digest.db")
            check_url = "sqlite:///digest.db"
            counts[backend] = row_counts(f"sqlite:///{check / 'digest.db'}")
        else:
            build_url, check_url = with_database(PG_URL, "legacy_build"), with_database(PG_URL, "legacy_check")
            for url in (build_url, check_url):
                admin(PG_URL, f"DROP DATABASE IF EXISTS {sa_name(url)} WITH (FORCE)")
                admin(PG_URL, f"CREATE DATABASE {sa_name(url)}")
            try:
                build(sha, build_url, folder)
                dump_postgres(build_url, dump)
                copy_examples(worktree(sha), check)
                load_postgres(dump, check_url)
                counts[backend] = row_counts(check_url)
                recorded[backend] = _answers_twice(sha, check, check_url)
            finally:
                for url in (build_url, check_url):
                    admin(PG_URL, f"DROP DATABASE IF EXISTS {sa_name(url)} WITH (FORCE)")
            continue
        recorded[backend] = _answers_twice(sha, check, check_url)
    if recorded["sqlite"] != recorded["postgres"]:
        differ = [c for c in recorded["sqlite"] if recorded["sqlite"][c] != recorded["postgres"][c]]
        raise SystemExit(f"{sha}: the old code answers differently on SQLite and PostgreSQL: {differ}")
    if counts["sqlite"] != counts["postgres"]:
        print(f"note: row counts differ: sqlite {counts['sqlite']} postgres {counts['postgres']}")
    out = DATA / f"{sha}.expected.json"
    out.write_text(json.dumps(recorded["sqlite"], indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"rows: {json.dumps(counts['sqlite'])}")
    print(f"wrote {out.relative_to(ROOT)} and the dumps")


def _answers_twice(sha: str, folder: Path, url: str) -> dict[str, dict]:
    (folder / "config.toml").write_text(config_text(url), encoding="utf-8")
    first = answers(sha, folder)
    second = answers(sha, folder)
    if first != second:
        differ = [c for c in first if first[c] != second[c]]
        raise SystemExit(f"{sha}: the old code's answers change from one run to the next: {differ}")
    return first


def sa_name(url: str) -> str:
    import sqlalchemy as sa
    return sa.engine.make_url(url).database


if __name__ == "__main__":
    for version in sys.argv[1:] or VERSIONS:
        make(version)
