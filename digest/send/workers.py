"""Senders at work: the workers that deliver a frozen edition's ledger.

A send runs as many workers at once as its backend declares (`[sending.sendgrid].concurrency`
requests, `[sending.smtp].connections` connections), each worker with its own mailer. A worker takes a batch of rows
(`ledger.claim`: rows no live sender holds, marked with the worker and a lease), sends
it, and records each outcome as its answer arrives; the rows of a batch are its own
until then, and the lease is renewed while the process works. So two workers never take
the same row, in one process or (on PostgreSQL) in several: a second `digest send` on
another machine joins the edition and takes the batches nobody holds. A sender that dies
leaves its rows: `pending` ones are taken by another once the lease runs out (at once
when it was a process on this machine), those in flight become `unknown` and are not sent
again, as after any crash. The pace (`send.pace.Gate`) is shared by the workers.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from .. import backends, crash
from ..config import SendSettings
from ..db import Database, holder_id
from ..models import DeliveryStatus, Edition, Outcome
from .mailers import Mailer, MailerError, make_mailer
from .message import recipient
from .pace import Gate, QuotaReached

log = logging.getLogger(__name__)
Clock = Callable[[], datetime]
POLL_SECONDS = 1.0          # how often a sender looks again while another holds rows of the edition


@dataclass
class Report:
    """What a delivery run found, for SendReport."""

    quota: QuotaReached | None = None
    cut_off: int = 0
    taken: int = 0              # rows this process took and sent (the others' are not counted here)


@dataclass
class Run:
    """One delivery run of an edition: what it needs at hand."""

    settings: SendSettings
    db: Database
    mailer: Mailer
    edition_id: int
    list_name: str
    key: str
    clock: Clock
    sleep: Callable[[float], None]
    should_stop: Callable[[], bool]
    own_mailers: bool = True               # more mailers may be made for more workers
    gate: Gate = field(default_factory=Gate)
    writes: Any = field(default_factory=threading.Lock)   # SQLite: one writer; its workers take turns here,
    #                                                       not in SQLite's busy-wait (which sleeps milliseconds)


def workers(settings: SendSettings) -> int:
    """How many workers a send of this backend runs at once, as the backend declares."""
    return backends.get(settings.backend).workers(settings.sending)


def gate_for(settings: SendSettings, db: Database, now: datetime) -> Gate:
    sending = settings.sending
    recent = db.ledger.sent_since(now - timedelta(hours=1)) if sending.max_per_hour else 0
    return Gate(sending.max_per_second, sending.max_per_hour, recent)


def deliver(run: Run, edition: Edition, progress: Callable[[int, int], None]) -> Report:
    """Send every row of the edition nobody else holds; rows the server deferred are
    retried when due, waiting at most [sending].retry_within_run_seconds in all, then left
    pending for the next run. While another sender holds rows of the edition, wait for it
    (and take over what it leaves if it dies)."""
    pool = _Pool(run, edition, progress)
    try:
        while not run.should_stop():
            pool.round()
            if pool.failure is not None:
                raise pool.failure
            if pool.report.quota is not None:
                run.db.ledger.defer_open(run.edition_id, pool.report.quota.resume_at)
                return pool.report
            wait = pool.until_next()
            if wait is None:
                return pool.report
            run.sleep(wait)
        return pool.report
    finally:
        pool.close()


class _Pool:
    def __init__(self, run: Run, edition: Edition, progress: Callable[[int, int], None]) -> None:
        self.run, self.edition, self.progress = run, edition, progress
        self.holder = f"{holder_id()}:{uuid.uuid4().hex[:8]}"
        self.mailers: list[Mailer] = [run.mailer]
        wanted = workers(run.settings) if run.own_mailers else 1
        self.holders = [f"{self.holder}/{n}" for n in range(wanted)]
        self.lock = threading.Lock()
        self.after = 0
        self.done, self.total = 0, sum(run.db.ledger.counts(run.edition_id).values())
        self.patience = run.settings.sending.retry_within_run_seconds
        self.failure: BaseException | None = None
        self.stopping = False
        self.report = Report()
        self.current: dict[str, list[int]] = {holder: [] for holder in self.holders}   # each worker's batch
        self.beating = threading.Event()
        self.beat = threading.Thread(target=self._renew, daemon=True, name="leases")
        self.beat.start()

    # ---------------------------------------------------------------- a round of workers

    def round(self) -> None:
        """Every worker takes and sends batches until none is left to take now."""
        self.stopping = False
        while len(self.mailers) < len(self.holders):
            try:
                self.mailers.append(make_mailer(self.run.settings))
            except MailerError:
                if len(self.mailers) == 1:
                    raise
                break
        for mailer in self.mailers:
            if hasattr(mailer, "gate"):
                mailer.gate = self.run.gate           # a provider's "slow down" slows every worker
        threads = [threading.Thread(target=self._work, args=(mailer, holder), name=f"sender {holder}")
                   for mailer, holder in zip(self.mailers, self.holders, strict=False)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self.after = 0

    def _work(self, mailer: Mailer, holder: str) -> None:
        share = -(-self.total // len(self.holders))          # a small edition is still split among the workers
        while not (self.stopping or self.run.should_stop()):
            try:
                size = self.run.gate.room(max(1, min(mailer.batch_size, share)))   # no more than the quota allows
            except QuotaReached as quota:
                self.report.quota, self.stopping = quota, True
                return
            rows = self._claim(holder, size)
            if not rows:
                return
            self.current[holder] = ids = [row.id for row in rows]
            try:
                _batch(self.run, mailer, self.edition, rows, holder)
            except QuotaReached as quota:
                self.report.quota, self.stopping = quota, True
            except BaseException as error:  # noqa: BLE001 - the first failure stops every worker, then is raised
                self.failure, self.stopping = self.failure or error, True
            finally:
                self.current[holder] = []
                if self.stopping:                       # a batch cut short: what did not go is free again
                    with self.run.writes:
                        self.run.db.ledger.release(ids, holder)
            with self.lock:
                self.done += len(rows)
                self.report.taken += len(rows)
                self.progress(min(self.done, self.total), self.total)

    def _claim(self, holder: str, size: int) -> Sequence[Any]:
        """The next batch from where the last one (of any worker of this process) ended;
        past the last row, one more pass from the first (rows deferred or freed since)."""
        with self.lock:
            for _ in range(2):
                now = self.run.clock()
                until = now + timedelta(seconds=self.run.settings.sending.lease_seconds)
                with self.run.writes:
                    rows = self.run.db.ledger.claim(self.run.edition_id, size, holder, now, until, self.after)
                if rows:
                    self.after = rows[-1].id
                    return rows
                if not self.after:
                    return rows
                self.after = 0
            return []

    # ---------------------------------------------------------------- between rounds

    def until_next(self) -> float | None:
        """Seconds until there may be something to send again: another sender's rows (it
        finishes them, or its lease runs out), or the next deferred row within patience.
        None: nothing left for this run."""
        ledger, now = self.run.db.ledger, self.run.clock()
        held = ledger.in_flight(self.run.edition_id, now)
        if held is not None:
            return min(POLL_SECONDS, max(0.05, (held - now).total_seconds()))
        cut, freed = ledger.take_back(self.run.edition_id, now)    # what a sender that died left behind
        self.report.cut_off += cut
        if freed:
            return 0.0
        due = ledger.next_retry(self.run.edition_id)
        if due is None:
            return None
        wait = max(0.0, (due - now).total_seconds())
        if wait > self.patience:
            return None
        self.patience -= wait
        return wait

    def _renew(self) -> None:
        lease = self.run.settings.sending.lease_seconds
        while not self.beating.wait(lease / 3):
            try:
                until = self.run.clock() + timedelta(seconds=lease)
                for holder, ids in list(self.current.items()):
                    with self.run.writes:
                        self.run.db.ledger.renew(ids, holder, until)
            except Exception as error:  # noqa: BLE001 - a missed renewal is tried again; the lease allows two
                log.warning("could not renew the lease of this sender's batches (%s); trying again", error)

    def close(self) -> None:
        self.beating.set()
        self.beat.join()
        for mailer in self.mailers[1:]:
            mailer.close()


# ------------------------------------------------------------------ one batch

def _batch(run: Run, mailer: Mailer, edition: Edition, rows: Sequence[Any], holder: str) -> None:
    ledger = run.db.ledger
    with run.writes:
        ledger.mark([r.id for r in rows if r.suppressed], DeliveryStatus.SUPPRESSED, run.clock(), holder)
    batch = [recipient(run.settings, key=run.key, list_name=run.list_name, delivery_id=r.id, email=r.email,
                       email_key=r.email_key, name=r.name, edition_id=run.edition_id,
                       subscriber_id=r.subscriber_id)
             for r in rows if not r.suppressed]
    flight = _InFlight(run, {r.id: r.attempts for r in rows}, holder)
    try:
        for outcome in mailer.send(edition, batch, flight.commit, f"{run.list_name}-{run.edition_id}"):
            flight.outcomes.append(outcome)
            if mailer.record_each:
                flight.commit([])
    except MailerError as error:
        flight.commit([])
        with run.writes:
            ledger.mark(error.unsent, DeliveryStatus.PENDING, run.clock(), holder)
        raise
    except QuotaReached:
        flight.commit([])                       # what went is recorded; the rest stays pending
        raise
    flight.commit([])


class _InFlight:
    """The outcomes of a batch so far; `commit(ids)` records them together with the next
    ids about to go out (the mailer calls it just before its point of no return, after
    the pace allows them). A "try again later" waits retry_delay_seconds, doubled per
    attempt (at most an hour); after max_attempts it is final."""

    def __init__(self, run: Run, attempts: dict[int, int], holder: str) -> None:
        self.run, self.attempts, self.holder = run, attempts, holder
        self.outcomes: list[Outcome] = []

    def commit(self, ids: list[int]) -> list[int]:
        """Record the outcomes so far and mark `ids` in flight; the ids that may go (the
        others were taken by another sender while this one stalled past its lease)."""
        if ids:
            self.run.gate.take(len(ids))        # may wait its turn, or raise QuotaReached (nothing of ids went)
        now = self.run.clock()
        outcomes = [self._final_if_exhausted(o) for o in self.outcomes]
        retry_at = {o.delivery_id: now + self._delay(o.delivery_id) for o in outcomes
                    if o.status == DeliveryStatus.PENDING}
        with self.run.writes:
            going = self.run.db.ledger.record(outcomes, ids, now, retry_at, self.holder)
        self.outcomes = []
        if len(going) < len(ids):
            log.warning("%d of %d messages were taken by another sender while this one stalled; not sent "
                        "from here", len(ids) - len(going), len(ids))
        crash.point("send.in_flight" if ids else "send.recorded")
        return going

    def _delay(self, delivery_id: int) -> timedelta:
        first = self.run.settings.sending.retry_delay_seconds
        return timedelta(seconds=min(3600.0, first * 2 ** self.attempts.get(delivery_id, 0)))

    def _final_if_exhausted(self, outcome: Outcome) -> Outcome:
        tries = self.attempts.get(outcome.delivery_id, 0) + 1
        if outcome.status != DeliveryStatus.PENDING or tries < self.run.settings.sending.max_attempts:
            return outcome
        return Outcome(outcome.delivery_id, DeliveryStatus.REFUSED,
                       error=f"gave up after {tries} 'try again later' answers: {outcome.error}")
