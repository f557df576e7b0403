"""The scheduler: each list's edition goes out on its own, on time, once.

APScheduler 3 with its SQLAlchemy job store in the project's database: one cron job per
list in the list's time zone, coalescing, and a misfire grace time. A run missed while
the machine was off runs once when the scheduler starts again within the grace time;
later than that it is reported (logged and recorded), not silently skipped. Only one
scheduler runs per database (a lock row kept fresh by a heartbeat). SIGTERM/SIGINT let
the batch in flight finish and be recorded, then the scheduler exits.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger

from . import actions, config
from .db import Database, holder_id
from .db.tables import APSCHEDULER_JOBS
from .deliver import AlreadySent, NothingToSend
from .edition import period
from .errors import DigestError
from .models import DeliveryStatus

log = logging.getLogger(__name__)

LOCK = "schedule"
LOCK_TTL = timedelta(minutes=5)        # a scheduler that stopped beating for this long is dead
HEARTBEAT_SECONDS = 60
JOB_PREFIX = "list:"
FETCH_WAIT = timedelta(minutes=10)     # another run fetching: wait for it rather than skip
STOP = threading.Event()               # set by SIGTERM/SIGINT: finish the batch in flight, then stop

def trigger(mailing_list: config.MailingList) -> CronTrigger:
    return mailing_list.schedule.trigger


def job_id(list_name: str) -> str:
    return JOB_PREFIX + list_name


# ------------------------------------------------------------------ the job

def run_job(config_path: str, list_name: str) -> str:
    """One scheduled run: fetch every source, then build and deliver the list's edition
    for the period just ended. The same code as `digest fetch` and `digest send`."""
    settings = config.load(config_path)
    with Database.open(settings.database_url()) as db:
        return _run(settings, db, list_name, datetime.now(UTC))


def _run(settings: config.Settings, db: Database, list_name: str, now: datetime) -> str:
    mailing_list = settings.mailing_list(list_name)
    if mailing_list is None:
        raise DigestError(f"list {list_name!r} is no longer in the config; restart the scheduler")
    started = time.monotonic()
    for report in actions.fetch(settings, db, list(settings.sources), now, wait=FETCH_WAIT):
        log.info("%s", report.summary())
    since, until = period(mailing_list, now)
    try:
        sent = actions.send_edition(settings, db, mailing_list, since, until, should_stop=STOP.is_set)
        counts = sent.counts
        outcome = (f"recipients {sum(counts.values())}, accepted {counts.get(DeliveryStatus.ACCEPTED, 0)}, "
                   f"failed {counts.get(DeliveryStatus.REFUSED, 0)}, unknown {counts.get(DeliveryStatus.UNKNOWN, 0)}")
    except (AlreadySent, NothingToSend) as skipped:
        outcome = f"nothing sent: {skipped}"
    log.info("run %s: period %s..%s: %s; %.1f s", list_name, since.date(), until.date(), outcome,
             time.monotonic() - started)
    return outcome


# ------------------------------------------------------------------ the scheduler

@dataclass
class Scheduler:
    scheduler: BaseScheduler
    settings: config.Settings
    db: Database
    me: str

    def start(self) -> None:
        """Start (blocking for BlockingScheduler) until stopped."""
        if STOP.is_set():
            return
        self.scheduler.add_job(self._check_stop, "interval", seconds=1, id="stop-check", jobstore="memory",
                               replace_existing=True)
        self.scheduler.start()

    def _check_stop(self) -> None:
        """A signal arrived: stop taking new runs; a send in flight finishes its batch
        (it checks STOP between batches) and the process waits for it before exiting."""
        if STOP.is_set() and self.scheduler.running:
            self.scheduler.shutdown(wait=False)

    def stop(self) -> None:
        STOP.set()
        if self.scheduler.running:
            self.scheduler.shutdown(wait=True)
        self.db.locks.release(LOCK, self.me)


def build(settings: config.Settings, config_path: Path, db: Database,
          scheduler_class: type[BaseScheduler] = BlockingScheduler, now: datetime | None = None,
          executor: str = "threadpool") -> Scheduler:
    """Take the one-scheduler lock, then set up the jobs of every list."""
    me = holder_id()
    db.locks.acquire(LOCK, me, LOCK_TTL, now or datetime.now(UTC))
    STOP.clear()
    scheduler = scheduler_class(
        jobstores={"default": SQLAlchemyJobStore(engine=db.engine, tablename=APSCHEDULER_JOBS),
                   "memory": MemoryJobStore()},
        executors={"default": {"type": executor}},
        job_defaults={"coalesce": True, "max_instances": 1,
                      "misfire_grace_time": settings.schedule.misfire_grace_minutes * 60},
        timezone=UTC,
    )
    scheduler.add_listener(_recorder(db), EVENT_JOB_EXECUTED | EVENT_JOB_ERROR | EVENT_JOB_MISSED)
    scheduler.add_job(heartbeat, "interval", seconds=HEARTBEAT_SECONDS, args=[db, me], id="heartbeat",
                      jobstore="memory", replace_existing=True)
    _sync_jobs(scheduler, settings, config_path, db)
    return Scheduler(scheduler, settings, db, me)


def _sync_jobs(scheduler: BaseScheduler, settings: config.Settings, config_path: Path, db: Database) -> None:
    """One persistent job per list; jobs of lists gone from the config are removed.
    A stored job whose schedule did not change keeps its next run time, so a run missed
    while the machine was off is still due when the scheduler starts again."""
    wanted = {job_id(item.name): item for item in settings.lists}
    stored = db.runs.stored_jobs()
    db.runs.delete_jobs([ident for ident in stored if ident.startswith(JOB_PREFIX) and ident not in wanted])
    for ident, item in wanted.items():
        options: dict[str, Any] = {}
        previous = stored.get(ident)
        if previous is not None and previous[0] == str(trigger(item)) and previous[1] is not None:
            options["next_run_time"] = previous[1]
        scheduler.add_job(run_job, trigger(item), id=ident, name=f"digest {item.name}", jobstore="default",
                          kwargs={"config_path": str(config_path.resolve()), "list_name": item.name},
                          replace_existing=True, **options)


def heartbeat(db: Database, me: str) -> None:
    """Keep the lock fresh so another scheduler knows this one is alive."""
    db.locks.heartbeat(LOCK, me, datetime.now(UTC))


def _recorder(db: Database) -> Callable[[JobExecutionEvent], None]:
    def record(event: JobExecutionEvent) -> None:
        if not event.job_id.startswith(JOB_PREFIX):
            return
        list_name = event.job_id[len(JOB_PREFIX):]
        if event.code == EVENT_JOB_MISSED:
            outcome = (f"MISSED: the run due {event.scheduled_run_time:%Y-%m-%d %H:%M %Z} was too late to send "
                       "(the machine was off past the grace time); run `digest send` by hand if it should go")
            log.warning("%s: %s", list_name, outcome)
        elif event.code == EVENT_JOB_ERROR:
            outcome = f"FAILED: {event.exception}"
            log.error("%s: %s", list_name, outcome)
        else:
            outcome = str(event.retval)
        db.runs.record(list_name, event.scheduled_run_time, outcome, datetime.now(UTC))
    return record


def last_runs(db: Database) -> dict[str, dict[str, Any]]:
    return db.runs.last()


def next_runs(settings: config.Settings, now: datetime) -> list[tuple[str, datetime | None]]:
    return [(item.name, trigger(item).get_next_fire_time(None, now)) for item in settings.lists]


def install_signal_handlers(running: Scheduler) -> None:
    def stop(signum: int, _frame: Any) -> None:
        log.warning("signal %d: finishing the batch in flight, then stopping", signum)
        STOP.set()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
