"""Approval with a real scheduler process on a one-minute cron: the editor gets one review
mail and no reader anything; `digest approve` sends once to each; approving again sends
nothing; an approval killed (SIGKILL) right after it is recorded is resumed by the
running scheduler without a duplicate."""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.policy import default
from pathlib import Path

from digest.db import Database

from .support.blog import Blog, onprobation
from .support.processes import DigestProcess, run_digest, start_digest
from .support.world import World

PACKAGE = Path(__file__).resolve().parent.parent / "digest"
READERS = 5


def recent_blog(feed_server, folder: Path) -> Blog:
    """The sample blog moved in time: its newest comment yesterday, so this week's run has it."""
    data = copy.deepcopy(onprobation())
    text = json.dumps(data)
    stamps = [datetime.fromisoformat(v) for v in _stamps(data)]
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    delta = (today - timedelta(hours=30)) - max(stamps)
    for old in sorted(set(_stamps(data)), key=len, reverse=True):
        moved = (datetime.fromisoformat(old) + delta).isoformat(timespec="milliseconds")
        text = text.replace(f'"{old}"', f'"{moved}"')
    return Blog(feed_server, folder, json.loads(text))


def _stamps(value: object) -> list[str]:
    if isinstance(value, dict):
        found = [v for k, v in value.items() if k in ("published", "updated") and isinstance(v, str)]
        return found + [s for v in value.values() for s in _stamps(v)]
    if isinstance(value, list):
        return [s for v in value for s in _stamps(v)]
    return []


def outbox(world: World, pattern: str) -> list:
    return [message_from_bytes(p.read_bytes(), policy=default)
            for p in sorted((world.folder.parent / "demo" / "outbox").glob(pattern))]


def readers_got(world: World) -> Counter[str]:
    return Counter(m["To"].addresses[0].addr_spec for m in outbox(world, "weekly-*/*.eml"))


def digest(world: World, *args: str, crash_at: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_CRASH")}
    if crash_at:
        env.update(DIGEST_CRASH_AT=crash_at, DIGEST_CRASH_MARK=str(world.folder / "crashed"))
    return run_digest(["--config", str(world.config_path), *args], capture_output=True, text=True, timeout=120,
                      stdin=subprocess.DEVNULL, env=env)


def wait_for(condition, what: str, seconds: float = 100) -> None:  # noqa: ANN001 - a predicate
    deadline = time.time() + seconds
    while time.time() < deadline:
        if condition():
            return
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


def edition_status(world: World) -> list[str]:
    with Database.open(world.settings.database_url()) as db:
        return [row["status"] for row in db.ledger.history("weekly")]


def test_a_real_scheduler_holds_the_edition_until_the_editor_approves_it_once(tmp_path, feed_server):
    """SQLite only (PostgreSQL runs the same steps in tests/test_approval.py and
    tests/test_crash_points.py). Each scheduler's clock starts three seconds before its cron
    minute, so that the run comes in seconds rather than up to a minute."""
    blog = recent_blog(feed_server, tmp_path / "blog")
    world = World(tmp_path, f"sqlite:///{tmp_path / 'digest.db'}", READERS)
    world.data["sources"][0].update({"url": blog.posts_url, "kind": "blogger", "backfill_days": 0})
    world.data["lists"][0].update({"schedule": "* * * * *", "approval": "required", "timezone": "UTC"})
    world.data["editor"] = {"email": "editor@onprobation-digest.org"}
    world.reload()
    minute = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
    scheduler = scheduler_at(world, minute - timedelta(seconds=3))
    try:
        wait_for(lambda: len(outbox(world, "review-*/*.eml")) >= 1, "the scheduled run to hold the edition")
        time.sleep(2)
        [review] = outbox(world, "review-*/*.eml")
        assert review["To"].addresses[0].addr_spec == "editor@onprobation-digest.org"
        assert readers_got(world) == Counter() and edition_status(world) == ["held"]

        died = digest(world, "approve", "weekly", "--yes", crash_at="approve.approved:1")
        assert died.returncode == -signal.SIGKILL, died.stderr
        assert readers_got(world) == Counter() and edition_status(world) == ["sending"]
        resumed = digest(world, "approve", "weekly", "--yes")       # (or the scheduler's next run)
        assert resumed.returncode == 0, resumed.stderr
        wait_for(lambda: edition_status(world) == ["sent"], "the approved edition to be sent")
        assert readers_got(world) == Counter({f"reader{n:05d}@example.org": 1 for n in range(READERS)})

        again = digest(world, "approve", "weekly", "--yes")
        assert again.returncode == 0 and "nothing more to send" in again.stdout, again.stdout + again.stderr
    finally:
        stop(scheduler)
    runs = len(_runs(world))
    scheduler = scheduler_at(world, minute + timedelta(minutes=1) - timedelta(seconds=3))     # the next minute's run
    try:
        wait_for(lambda: len(_runs(world)) > runs, "another scheduled run")
        assert "nothing sent" in _runs(world)[-1]                   # the period went out: nothing held again
        assert sum(readers_got(world).values()) == READERS and len(outbox(world, "review-*/*.eml")) == 1
    finally:
        stop(scheduler)
        world.close()


def scheduler_at(world: World, clock: datetime) -> DigestProcess:
    """`digest schedule`, its clock starting at `clock`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_CRASH")}
    return start_digest(["--config", str(world.config_path), "schedule"], stdout=subprocess.DEVNULL,
                        stderr=subprocess.PIPE, text=True, env=env, clock=clock)


def stop(scheduler: DigestProcess) -> None:
    scheduler.send_signal(signal.SIGTERM)
    assert scheduler.wait(timeout=120) == 0, scheduler.stderr.read() if scheduler.stderr else ""


def _runs(world: World) -> list[str]:
    import sqlalchemy as sa

    from digest.db.tables import runs
    with Database.open(world.settings.database_url()) as db, db.engine.connect() as connection:
        return [row.outcome for row in connection.execute(sa.select(runs.c.outcome).order_by(runs.c.id))]
