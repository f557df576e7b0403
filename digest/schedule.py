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

from . import actions, config, crash
from .actions import scheduling as record
from .db import Database, holder_id
from .db.tables import APSCHEDULER_JOBS
from .errors import DigestError, LockedError

log = logging.getLogger(__name__)

LOCK_TTL = timedelta(minutes=5)        # a scheduler that stopped beating for this long is dead
HEARTBEAT_SECONDS = 60
DESK_SECONDS = 5                       # how often the web's orders are looked for
MAILBOX_JOB = "mailbox"                # the job that reads [mailbox] (in memory: each start adds it)
JOB_PREFIX = "list:"
RETRY_PREFIX = "retry:"
STOP = threading.Event()               # set by SIGTERM/SIGINT: finish the batch in flight, then stop
SIGNALLED: list[int] = []               # the signals that set it
DOCTOR_JOIN_SECONDS = 30                # how long a stopping scheduler waits for the checks it started


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
    done = actions.scheduled_run(settings, db, list_name, now, should_stop=STOP.is_set)
    log.info("%s: period %s; %s; took %.1f s", list_name, done.period, done.outcome, done.seconds)
    return done.outcome


def quiet_logs(debug: bool) -> None:
    """At the default level the scheduler still says one line per run; APScheduler's
    own loggers (a line per job every second) stay at WARNING unless --debug."""
    ours = logging.getLogger(__name__)
    if ours.getEffectiveLevel() > logging.INFO:
        ours.setLevel(logging.INFO)
    logging.getLogger("apscheduler").setLevel(logging.DEBUG if debug else logging.WARNING)


# ------------------------------------------------------------------ the scheduler

@dataclass
class Scheduler:
    scheduler: BaseScheduler
    settings: config.Settings
    db: Database
    me: str
    doctor: threading.Thread | None = None       # the checks at start, in the background

    def start(self) -> None:
        """Start (blocking for BlockingScheduler) until stopped."""
        if STOP.is_set():
            _say_stopping()
            return
        self.scheduler.add_job(self._check_stop, "interval", seconds=1, id="stop-check", jobstore="memory",
                               replace_existing=True)
        self.scheduler.start()

    def _check_stop(self) -> None:
        """A signal arrived: stop taking new runs; a send in flight finishes its batch
        (it checks STOP between batches) and the process waits for it before exiting."""
        if STOP.is_set() and self.scheduler.running:
            _say_stopping()
            self.scheduler.shutdown(wait=False)

    def stop(self) -> None:
        STOP.set()
        if self.scheduler.running:
            self.scheduler.shutdown(wait=True)
        if self.doctor is not None:       # its look-ups are bounded: it says what it found before we go
            self.doctor.join(timeout=DOCTOR_JOIN_SECONDS)
        record.release_lock(self.db, self.me)


def build(settings: config.Settings, config_path: Path, db: Database,
          scheduler_class: type[BaseScheduler] = BlockingScheduler, now: datetime | None = None,
          executor: str = "threadpool") -> Scheduler:
    """Refuse a config not ready for real mail, take the one-scheduler lock, then set up
    the jobs of every list."""
    actions.check_ready(settings)
    me = holder_id()
    record.take_lock(db, me, LOCK_TTL, now or datetime.now(UTC))
    STOP.clear()
    SIGNALLED.clear()
    scheduler = scheduler_class(
        jobstores={"default": SQLAlchemyJobStore(engine=db.engine, tablename=APSCHEDULER_JOBS),
                   "memory": MemoryJobStore()},
        executors={"default": {"type": executor}},
        job_defaults={"coalesce": True, "max_instances": 1,
                      "misfire_grace_time": settings.schedule.misfire_grace_minutes * 60},
        timezone=UTC,
    )
    scheduler.add_listener(_recorder(db, scheduler, settings, config_path),
                           EVENT_JOB_EXECUTED | EVENT_JOB_ERROR | EVENT_JOB_MISSED)
    scheduler.add_job(heartbeat, "interval", seconds=HEARTBEAT_SECONDS, args=[db, me], id="heartbeat",
                      jobstore="memory", replace_existing=True)
    record.requeue_orders(db)                  # orders a dead scheduler was carrying out: resumed from the ledger
    scheduler.add_job(tend, "interval", seconds=DESK_SECONDS, args=[settings, db], id="desk", jobstore="memory",
                      replace_existing=True, next_run_time=datetime.now(UTC))
    if settings.mailbox.kind:
        scheduler.add_job(read_mailbox, "interval", minutes=settings.mailbox.poll_minutes, args=[settings, db],
                          id=MAILBOX_JOB, jobstore="memory", replace_existing=True, next_run_time=datetime.now(UTC))
    _sync_jobs(scheduler, settings, config_path, db)
    running = Scheduler(scheduler, settings, db, me)
    resume_on_start(running, config_path, now or datetime.now(UTC))
    running.doctor = threading.Thread(target=check_at_start, args=(settings,), daemon=True, name="doctor")
    running.doctor.start()
    return running


def tend(settings: config.Settings, db: Database) -> list[str]:
    """The desk's errands (the web's orders, timed-out approvals, reviews to mail), every few seconds."""
    done = actions.tend(settings, db, datetime.now(UTC), should_stop=STOP.is_set)
    for line in done:
        log.info("%s", line)
    return done


def read_mailbox(settings: config.Settings, db: Database) -> str:
    """The mailbox, every [mailbox].poll_minutes and after each run of a list: a mailbox
    that cannot be read is a warning in the log (the next read tries again), never a
    stopped scheduler."""
    try:
        report = actions.inbox.read_mailbox(settings, db, datetime.now(UTC))
    except DigestError as error:
        log.warning("mailbox not read: %s", error)
        return str(error)
    return report.summary()


def _read_mailbox_soon(scheduler: BaseScheduler) -> None:
    """After a list's run: the mailbox is read now (its bounces, and an approval by reply,
    come soonest after a send), not at the next interval."""
    if scheduler.get_job(MAILBOX_JOB, jobstore="memory") is not None:
        scheduler.modify_job(MAILBOX_JOB, jobstore="memory", next_run_time=datetime.now(UTC))


def check_at_start(settings: config.Settings) -> list[actions.Check]:
    """`digest doctor` once, in the background (no run waits on its look-ups): each failing
    check is a warning in the log, and the result is kept for the editor's home page."""
    found = actions.doctor_of(settings, "schedule")
    for check in found:
        if not check.ok:
            log.warning("doctor: %s: %s; fix: %s", check.check, check.detail, check.fix)
    return found


def _sync_jobs(scheduler: BaseScheduler, settings: config.Settings, config_path: Path, db: Database) -> None:
    """One persistent job per list; jobs of lists gone from the config are removed.
    A stored job whose schedule did not change keeps its next run time, so a run missed
    while the machine was off is still due when the scheduler starts again."""
    wanted = {job_id(item.name): item for item in settings.lists}
    stored = record.stored_jobs(db)
    names = {item.name for item in settings.lists}
    record.delete_jobs(db, [ident for ident in stored if _list_of(ident) is not None and _list_of(ident) not in names
                         or ident.startswith(JOB_PREFIX) and ident not in wanted])
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
    record.beat(db, me, datetime.now(UTC))


def _recorder(db: Database, scheduler: BaseScheduler, settings: config.Settings,
              config_path: Path) -> Callable[[JobExecutionEvent], None]:
    """Record each run of a list's job (and of its retries), and schedule a retry when a
    run failed or left an edition unfinished: after retry_minutes, doubled per failure,
    at most [schedule].retries times in a row."""
    failures: dict[str, int] = {}

    def on_event(event: JobExecutionEvent) -> None:
        list_name = _list_of(event.job_id)
        if list_name is None:
            return
        now = datetime.now(UTC)
        if event.code == EVENT_JOB_MISSED:
            outcome = (f"MISSED: the run due {event.scheduled_run_time:%Y-%m-%d %H:%M %Z} was too late to send "
                       "(the machine was off past the grace time); run `digest send` by hand if it should go")
            log.warning("%s: %s", list_name, outcome)
        elif event.code == EVENT_JOB_ERROR and isinstance(event.exception, LockedError):
            outcome = f"skipped: {event.exception}"
            log.info("%s: %s", list_name, outcome)
        elif event.code == EVENT_JOB_ERROR:
            failures[list_name] = failures.get(list_name, 0) + 1
            retry = _retry_after_failure(list_name, failures[list_name], now)
            outcome = f"FAILED: {event.exception}; {retry}"
            log.error("%s: %s", list_name, outcome)
            _tell_of_failure(settings, list_name, event, retry, now)
        else:
            failures.pop(list_name, None)
            outcome = str(event.retval) + _retry_if_unfinished(list_name, now)
        record.record_run(db, list_name, event.scheduled_run_time, outcome, now)
        crash.point("schedule.recorded")
        _read_mailbox_soon(scheduler)

    def _retry_after_failure(list_name: str, failed: int, now: datetime) -> str:
        if failed > settings.schedule.retries:
            return f"gave up after {settings.schedule.retries} retries; run `digest send {list_name}` by hand"
        when = now + timedelta(minutes=settings.schedule.retry_minutes * 2 ** (failed - 1))
        _add_retry(scheduler, config_path, list_name, when)
        return f"retry {failed} of {settings.schedule.retries} at {when:%Y-%m-%d %H:%M} UTC"

    def _retry_if_unfinished(list_name: str, now: datetime) -> str:
        if STOP.is_set() or not record.unfinished(db, list_name):
            return ""
        when = now + timedelta(minutes=settings.schedule.retry_minutes)
        due = record.next_retry(db, list_name)
        when = max(when, due) if due else when
        _add_retry(scheduler, config_path, list_name, when)
        return f"; an edition is unfinished: retry at {when:%Y-%m-%d %H:%M} UTC"

    return on_event


def _tell_of_failure(settings: config.Settings, list_name: str, event: JobExecutionEvent, retry: str,
                     now: datetime) -> None:
    listed = settings.mailing_list(list_name)
    if listed is not None:
        notice = actions.runs.failed_notice(settings, listed, event.scheduled_run_time or now, str(event.exception),
                                            retry)
        actions.notices.notify(settings, listed, notice, now)


def _list_of(job: str) -> str | None:
    for prefix in (JOB_PREFIX, RETRY_PREFIX):
        if job.startswith(prefix):
            return job[len(prefix):]
    return None


def _add_retry(scheduler: BaseScheduler, config_path: Path, list_name: str, when: datetime) -> None:
    """A one-off run of the list's job at `when`, kept in the job store (a restart keeps it)."""
    scheduler.add_job(run_job, "date", run_date=when, id=RETRY_PREFIX + list_name, name=f"retry {list_name}",
                      jobstore="default", replace_existing=True, misfire_grace_time=None,
                      kwargs={"config_path": str(config_path.resolve()), "list_name": list_name})


def resume_on_start(running: Scheduler, config_path: Path, now: datetime) -> list[str]:
    """Lists with an edition left unfinished (the scheduler was stopped or killed mid-send)
    get a run at once, not next week."""
    due = [item.name for item in running.settings.lists if record.unfinished(running.db, item.name)]
    for name in due:
        log.warning("%s: an edition was left unfinished; resuming it now", name)
        _add_retry(running.scheduler, config_path, name, now)
    return due


def last_runs(db: Database) -> dict[str, dict[str, Any]]:
    return record.last_runs(db)


def next_runs(settings: config.Settings, now: datetime) -> list[tuple[str, datetime | None]]:
    return [(item.name, trigger(item).get_next_fire_time(None, now)) for item in settings.lists]


def jobs(settings: config.Settings, db: Database, now: datetime) -> list[str]:
    """`digest schedule --list-jobs`: a line per list with its next run, a retry waiting, its last run."""
    last, stored = last_runs(db), record.stored_jobs(db)
    lines = []
    for name, when in next_runs(settings, now):
        listed = actions.mailing_list(settings, name)
        local = when.astimezone(listed.timezone) if when else None
        nxt = f"{local:%Y-%m-%d %H:%M %Z} ({when.astimezone(UTC):%Y-%m-%d %H:%M} UTC)" if local and when else "never"
        previous = last.get(name)
        outcome = f"{previous['started_at']:%Y-%m-%d %H:%M} UTC: {previous['outcome']}" if previous else "none yet"
        retry = stored.get(RETRY_PREFIX + name)
        pending = f"\tretry at {retry[1]:%Y-%m-%d %H:%M} UTC" if retry and retry[1] else ""
        lines.append(f"{name}\t{listed.schedule} {listed.timezone}\tnext {nxt}{pending}\tlast run {outcome}")
    return lines


def _say_stopping() -> None:
    if SIGNALLED:
        log.warning("signal %d: finishing the batch in flight, then stopping", SIGNALLED.pop())
        SIGNALLED.clear()


def install_signal_handlers(running: Scheduler) -> None:
    def stop(signum: int, _frame: Any) -> None:
        # No logging here: the signal may interrupt a write to stderr, and writing to it
        # again from the handler fails (a reentrant write); _check_stop says it instead.
        SIGNALLED.append(signum)
        STOP.set()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
