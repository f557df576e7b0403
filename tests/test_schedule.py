"""The scheduler, with a controllable clock (APScheduler's own `now`), never with sleeps."""

from __future__ import annotations

import os
import signal
import subprocess
from collections import Counter
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import apscheduler.executors.base
import apscheduler.schedulers.base
import pytest
from apscheduler.schedulers.base import BaseScheduler
from click.testing import CliRunner

from digest import schedule as scheduling
from digest.actions import plan, send
from digest.cli import cli

from .support import smtp_server
from .support.processes import start_digest, start_python
from .support.world import World

LONDON = ZoneInfo("Europe/London")
FIRED: list[datetime] = []


class Clock:
    now = datetime(2017, 1, 1, tzinfo=UTC)


class FakeDatetime(datetime):
    @classmethod
    def now(cls, tz=None):  # noqa: D102 - the controllable clock
        return Clock.now.astimezone(tz) if tz else Clock.now.replace(tzinfo=None)


class ManualScheduler(BaseScheduler):
    """Runs nothing by itself: the test calls _process_jobs() after moving the clock."""

    def wakeup(self) -> None:
        pass

    def shutdown(self, wait: bool = True) -> None:
        super().shutdown(wait)


@pytest.fixture
def clock(monkeypatch):
    monkeypatch.setattr(apscheduler.schedulers.base, "datetime", FakeDatetime)
    monkeypatch.setattr(apscheduler.executors.base, "datetime", FakeDatetime)
    monkeypatch.setattr(scheduling, "datetime", FakeDatetime)
    FIRED.clear()
    return Clock


def record_fire() -> str:
    FIRED.append(Clock.now)
    return "recorded"


def scheduler_at(world: World, when: datetime) -> scheduling.Scheduler:
    Clock.now = when
    running = scheduling.build(world.settings, world.config_path, world.db, ManualScheduler,
                               now=when, executor="debug")
    running.scheduler.start()
    return running


def tick(running: scheduling.Scheduler, when: datetime) -> None:
    Clock.now = when
    running.scheduler._process_jobs()


def outbox(world: World) -> list:
    return sorted((world.folder / ".." / "demo" / "outbox").resolve().glob("weekly-*/*.eml"))


def test_monday_7am_london_fires_once_a_week_across_both_clock_changes(tmp_path, db_url, clock):
    world = World(tmp_path, db_url, 1)
    for start in (datetime(2017, 3, 19, 12, tzinfo=UTC), datetime(2017, 10, 22, 12, tzinfo=UTC)):
        running = scheduler_at(world, start)
        running.scheduler.modify_job("list:weekly", func=record_fire, kwargs={})
        for hour in range(24 * 16):
            tick(running, start + timedelta(hours=hour))
        running.stop()
    local = [moment.astimezone(LONDON) for moment in FIRED]
    assert [f"{m:%Y-%m-%d %a %H:%M %Z}" for m in local] == [
        "2017-03-20 Mon 07:00 GMT", "2017-03-27 Mon 07:00 BST", "2017-04-03 Mon 07:00 BST",
        "2017-10-23 Mon 07:00 BST", "2017-10-30 Mon 07:00 GMT", "2017-11-06 Mon 07:00 GMT"]
    year = []
    trigger = scheduling.trigger(world.settings.lists[0])
    moment = datetime(2017, 1, 1, tzinfo=UTC)
    end = datetime(2018, 1, 1, tzinfo=UTC)
    while (moment := trigger.get_next_fire_time(moment, moment + timedelta(seconds=1))) < end:
        year.append(moment.astimezone(LONDON))
    assert len(year) == 52 and {(m.weekday(), m.hour, m.minute) for m in year} == {(0, 7, 0)}
    assert len({m.date() for m in year}) == 52
    world.close()


def test_run_missed_while_off_runs_once_within_grace(tmp_path, db_url, clock):
    world = World(tmp_path, db_url, 3)
    running = scheduler_at(world, datetime(2017, 10, 29, 20, tzinfo=UTC))     # Sunday evening
    running.stop()                                                              # the machine goes off
    running = scheduler_at(world, datetime(2017, 10, 30, 9, 30, tzinfo=UTC))   # back 2.5 h late
    tick(running, datetime(2017, 10, 30, 9, 30, tzinfo=UTC))
    tick(running, datetime(2017, 10, 30, 10, 30, tzinfo=UTC))
    running.stop()
    assert len(outbox(world)) == 3
    last = scheduling.last_runs(world.db)["weekly"]
    assert last["outcome"] == "recipients 3, accepted 3, failed 0, unknown 0"
    assert last["scheduled_for"] == datetime(2017, 10, 30, 7, tzinfo=UTC)
    world.close()


def test_run_missed_beyond_grace_is_reported_not_sent(tmp_path, db_url, clock, caplog):
    world = World(tmp_path, db_url, 3)
    running = scheduler_at(world, datetime(2017, 10, 29, 20, tzinfo=UTC))
    running.stop()
    running = scheduler_at(world, datetime(2017, 10, 30, 15, tzinfo=UTC))      # 8 h late; grace is 6 h
    tick(running, datetime(2017, 10, 30, 15, tzinfo=UTC))
    next_run = running.scheduler.get_job("list:weekly").next_run_time
    running.stop()
    assert outbox(world) == []
    assert scheduling.last_runs(world.db)["weekly"]["outcome"].startswith("MISSED: the run due 2017-10-30 07:00")
    assert "MISSED" in caplog.text
    assert next_run == datetime(2017, 11, 6, 7, tzinfo=UTC)
    world.close()


def test_a_second_scheduler_on_the_same_database_does_not_start(tmp_path, db_url, clock):
    world = World(tmp_path, db_url, 3)
    running = scheduler_at(world, datetime(2017, 10, 29, 20, tzinfo=UTC))
    result = CliRunner().invoke(cli, ["--config", str(world.config_path), "schedule"])
    assert result.exit_code == 1 and "Error: schedule is already running" in result.output
    tick(running, datetime(2017, 10, 30, 7, tzinfo=UTC))
    running.stop()
    assert len(outbox(world)) == 3                     # sent once, by the first scheduler
    world.close()


def test_list_jobs_shows_next_run_in_local_time_and_utc_and_the_last_outcome(tmp_path, db_url, clock):
    world = World(tmp_path, db_url, 3)
    running = scheduler_at(world, datetime(2017, 10, 29, 20, tzinfo=UTC))
    tick(running, datetime(2017, 10, 30, 7, tzinfo=UTC))
    running.stop()
    Clock.now = datetime.now(UTC)
    output = CliRunner().invoke(cli, ["--config", str(world.config_path), "schedule", "--list-jobs"]).output
    assert output.startswith("weekly\t0 7 * * mon Europe/London\tnext ")
    assert " UTC)\tlast run " in output and "recipients 3, accepted 3, failed 0" in output
    world.close()


def test_stop_request_finishes_the_batch_in_flight_and_the_rest_waits(tmp_path, db_url):
    world = World(tmp_path, db_url, 450)      # three batches of the outbox's 200
    batches = []
    planned = plan(world.settings, world.db, world.weekly, world.since, world.until)
    report = send(world.settings, world.db, planned,
                  progress=lambda done, total: batches.append(done), should_stop=lambda: bool(batches))
    assert report.counts == {"accepted": 200, "pending": 250}
    again = send(world.settings, world.db, plan(world.settings, world.db, world.weekly, world.since, world.until))
    assert again.counts == {"accepted": 450}
    assert len(outbox(world)) == 450
    world.close()


def test_run_killed_mid_send_is_resumed_by_the_next_run_without_duplicates(tmp_path, db_url):
    controller, recorder = smtp_server.start()
    world = World(tmp_path, db_url, 40, backend="smtp",
                  smtp={"host": "127.0.0.1", "port": controller.port, "connections": 1})   # killed between messages
    code = ("import sys; from datetime import datetime, timezone; from digest import config, schedule;"
            " from digest.db import Database;"
            f" s = config.load({str(world.config_path)!r}); db = Database.open(s.database_url());"
            "print(schedule._run(s, db, 'weekly', datetime(2017, 11, 6, 7, tzinfo=timezone.utc)))")
    process = {}

    def kill_at(number):
        if number == 25:
            smtp_server.kill(process["pid"])
            return "451 later"
        return None

    recorder.on_rcpt = kill_at
    first = start_python(code, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process["pid"] = first.pid
    first.wait(timeout=120)
    assert first.returncode == -signal.SIGKILL
    recorder.on_rcpt = lambda number: None
    second = start_python(code, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = second.communicate(timeout=120)
    assert second.returncode == 0, err
    assert "recipients 40, accepted 40, failed 0, unknown 0" in out
    assert Counter(recorder.recipients()) == Counter({f"reader{n:05d}@example.org": 1 for n in range(40)})
    controller.stop()
    world.close()


def test_sigterm_stops_the_scheduler_cleanly_and_frees_the_lock(tmp_path, db_url):
    world = World(tmp_path, db_url, 1)
    process = start_digest(["--config", str(world.config_path), "schedule"],
                               env=dict(os.environ), stderr=subprocess.PIPE, text=True)
    line = process.stderr.readline()
    assert "Scheduler running for 1 lists" in line
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0
    running = scheduling.build(world.settings, world.config_path, world.db, ManualScheduler, executor="debug")
    running.stop()                                    # the lock was released: a new one starts
    world.close()


MAILBOX_READS: list[datetime] = []


def record_read(*_: object) -> str:
    MAILBOX_READS.append(Clock.now)
    return "read"


def test_the_mailbox_is_read_every_poll_minutes_and_right_after_a_lists_run(tmp_path, db_url, clock):
    """Bounces and an approval by reply come soonest after a send: the run of a list makes
    the mailbox's next read now, not at the end of its interval."""
    world = World(tmp_path, db_url, 1)
    (world.folder / "maildir").mkdir()
    for sub in ("new", "cur", "tmp"):
        (world.folder / "maildir" / sub).mkdir()
    world.data["mailbox"] = {"maildir": "maildir", "poll_minutes": 45}
    world.reload()
    MAILBOX_READS.clear()
    start = datetime(2017, 10, 30, 6, 30, tzinfo=UTC)             # the weekly run is due at 07:00 (GMT)
    running = scheduler_at(world, start)
    running.scheduler.modify_job(scheduling.MAILBOX_JOB, jobstore="memory", func=record_read)
    running.scheduler.modify_job("list:weekly", func=record_fire, kwargs={})
    for minute in range(0, 61, 5):
        tick(running, start + timedelta(minutes=minute))
        tick(running, start + timedelta(minutes=minute, seconds=1))     # what the run made due now
    running.stop()
    assert [f"{m:%H:%M}" for m in FIRED] == ["07:00"]
    assert [f"{m:%H:%M}" for m in MAILBOX_READS] == ["06:30", "07:00"]            # not 07:15: after the run
    world.close()
