"""Two at once, started together at a barrier: syncs of one list, a long send and a
second one, a send beside a scheduled run. Real threads and databases; nobody retired
wrongly, nobody mailed twice."""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from digest import actions
from digest import schedule as scheduling
from digest.db import Database
from digest.errors import LockedError
from digest.send.deliver import AlreadySent

from .support import smtp_server
from .support.world import World


def _together(*work):  # noqa: ANN001, ANN202 - callables run at one barrier; their results or errors
    barrier = threading.Barrier(len(work))
    results: list[object] = [None] * len(work)

    def run(index: int) -> None:
        barrier.wait(timeout=30)
        try:
            results[index] = work[index]()
        except Exception as error:  # noqa: BLE001 - returned to the test, which asserts on it
            results[index] = error

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(work))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


def test_two_syncs_of_one_list_never_retire_a_member_of_the_file(tmp_path: Path, db_url: str) -> None:
    world = World(tmp_path, db_url, 5)
    world.write_list([f"reader{n:05d}@example.org" for n in range(3000)])
    dbs = [Database.open(world.settings.database_url()) for _ in range(2)]
    now = datetime.now(UTC)
    results = _together(*(lambda db=db: actions.sync_list(world.settings, db, world.weekly, now) for db in dbs))
    done = [r for r in results if not isinstance(r, Exception)]
    refused = [r for r in results if isinstance(r, LockedError)]
    if world.db.shares_sends:                                     # PostgreSQL: the second waits its turn...
        assert len(done) == 2 and sorted(r.added for r in done) == [0, 3000], results    # ...and finds it done
    else:                                                         # SQLite: one at a time, the other told so
        assert len(done) == 1 and len(refused) == 1, results
        assert "send:weekly is already running" in str(refused[0])
    assert world.db.lists.count("weekly") == 3000
    again = actions.sync_list(world.settings, world.db, world.weekly, now)   # and the next one finds it done
    assert again.retired == 0 and world.db.lists.count("weekly") == 3000
    for db in dbs:
        db.close()
    world.close()


def test_a_lock_whose_holder_is_alive_is_never_taken_over(tmp_path: Path, db_url: str) -> None:
    """A send that runs longer than the lock's time-to-live keeps it by its heartbeat."""
    db = Database.open(db_url)
    ttl = timedelta(seconds=1)
    held, release = threading.Event(), threading.Event()

    def long_send() -> None:
        with db.locks.hold("send:weekly", ttl=ttl):
            held.set()
            release.wait(timeout=30)

    holder = threading.Thread(target=long_send)
    holder.start()
    assert held.wait(timeout=10)
    try:
        time.sleep(3 * ttl.total_seconds())                       # three times its time-to-live
        with pytest.raises(LockedError):
            db.locks.acquire("send:weekly", "another-host:1:1", ttl, datetime.now(UTC))
    finally:
        release.set()
        holder.join()
    db.locks.acquire("send:weekly", "another-host:1:1", ttl, datetime.now(UTC))   # released: free again
    db.close()


def test_a_send_during_a_scheduled_run_of_the_same_list_mails_nobody_twice(tmp_path: Path, db_url: str) -> None:
    controller, recorder = smtp_server.start()
    recorder.delay = 0.05
    world = World(tmp_path, db_url, 30, backend="smtp", smtp={"host": "127.0.0.1", "port": controller.port})
    other = Database.open(world.settings.database_url())
    try:
        results = _together(
            lambda: scheduling._run(world.settings, world.db, "weekly", datetime(2017, 11, 1, 7, tzinfo=UTC)),
            lambda: actions.send_edition(world.settings, other, world.weekly, world.since, world.until))
        errors = [r for r in results if isinstance(r, Exception)]
        assert all(isinstance(e, (LockedError, AlreadySent)) for e in errors), errors
        assert len(errors) <= 1                                    # at least one of them sent it
        actions.finish_unfinished(world.settings, world.db, world.weekly)
        received = Counter(recorder.recipients())
        assert len(received) == 30 and set(received.values()) == {1}
    finally:
        other.close()
        world.close()
        controller.stop()
