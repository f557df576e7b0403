"""Delivery at real distance: requests in flight together, an SMTP connection pool, the
relay's rate limits, and several senders sharing one edition on PostgreSQL (real
processes, one of them killed mid-batch). Speed is measured in bench/distance.py; here,
what must hold: everyone once, the limits kept, the workers really side by side."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from digest import actions
from digest.cli import cli
from digest.db import Database
from digest.send.pace import Gate, QuotaReached

from .support import smtp_server
from .support.processes import start_digest
from .support.sendgrid_server import Fault, SendGridStandIn
from .support.world import World

ROOT = Path(__file__).resolve().parent.parent
WEEK = ["--since", "2017-10-25", "--until", "2017-11-01"]


def readers(n: int) -> Counter[str]:
    return Counter({f"reader{i:05d}@example.org": 1 for i in range(n)})


def test_sendgrid_requests_are_in_flight_together_and_everyone_gets_one(tmp_path, db_url, monkeypatch):
    server = SendGridStandIn(latency=0.3)
    monkeypatch.setenv("SENDGRID_API_KEY", server.api_key)
    world = World(tmp_path, db_url, 240, backend="sendgrid",
                  sendgrid={"host": server.host, "batch_size": 20, "concurrency": 4})
    try:
        report = actions.send_edition(world.settings, world.db, world.weekly, world.since, world.until)
        assert report.finished and report.counts == {"accepted": 240}
        assert Counter(server.recipients()) == readers(240)
        assert server.requests == 12 and server.max_in_flight == 4          # four at a time, never more
    finally:
        world.close()
        server.stop()


def test_a_429_slows_every_worker_and_5xx_retries_that_request_only(tmp_path, db_url, monkeypatch):
    server = SendGridStandIn()
    monkeypatch.setenv("SENDGRID_API_KEY", server.api_key)
    world = World(tmp_path, db_url, 160, backend="sendgrid",
                  sendgrid={"host": server.host, "batch_size": 20, "concurrency": 4, "backoff": 0.01})
    server.faults = [Fault(status=429, headers={"Retry-After": "1"}), Fault(status=503)]
    try:
        report = actions.send_edition(world.settings, world.db, world.weekly, world.since, world.until)
        assert report.counts == {"accepted": 160} and Counter(server.recipients()) == readers(160)
        arrivals = sorted(server.arrivals)
        assert server.requests == 8 + 2                                      # the two refused, asked again
        first_wave = [t for t in arrivals if t < arrivals[0] + 0.5]
        assert len(first_wave) <= 4                                          # then the 429's second: nobody asks
        assert arrivals[len(first_wave)] >= arrivals[0] + 0.9
    finally:
        world.close()
        server.stop()


def test_an_smtp_pool_keeps_one_session_per_connection(tmp_path, db_url):
    pki = smtp_server.make_pki(tmp_path / "pki")
    logins = smtp_server.Logins("digest", "relay password")
    controller, recorder = smtp_server.start(tls_context=smtp_server.server_tls(pki), require_starttls=True,
                                             auth_required=True, auth_require_tls=True, authenticator=logins)
    recorder.delay = 0.02
    os.environ["RELAY_PASSWORD"] = "relay password"
    world = World(tmp_path, db_url, 40, backend="smtp",
                  smtp={"host": "127.0.0.1", "port": controller.port, "security": "starttls", "username": "digest",
                        "password_env": "RELAY_PASSWORD", "ca_file": str(pki.ca), "connections": 4})
    try:
        report = actions.send_edition(world.settings, world.db, world.weekly, world.since, world.until)
        assert report.counts == {"accepted": 40} and Counter(recorder.recipients()) == readers(40)
        sessions = Counter(r.connection for r in recorder.received)
        assert len(sessions) == 4 and all(n >= 5 for n in sessions.values())   # four sessions, each kept busy
        assert all(r.tls and r.login == "digest" for r in recorder.received)
        assert recorder.connections == 4 and sum(logins.mechanisms.values()) == 4    # STARTTLS and AUTH once each
    finally:
        world.close()
        controller.stop()
        os.environ.pop("RELAY_PASSWORD", None)


# ------------------------------------------------------------------ the relay's limits

class FakeTime:
    def __init__(self) -> None:
        self.now, self.slept = 100.0, []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 3))
        self.now += seconds


def test_the_pace_spaces_messages_and_stops_at_the_hourly_quota():
    fake = FakeTime()
    wall = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)
    gate = Gate(per_second=4, per_hour=10, sent_last_hour=2, clock=fake.clock, sleep=fake.sleep, wall=lambda: wall)
    for _ in range(4):
        gate.take(1)
    assert fake.slept == [0.25, 0.25, 0.25]                 # four a second: a quarter of a second apart
    gate.take(4)                                           # a request of four waits its turn, then a second
    assert fake.slept[-1] == 0.25 and gate.next_turn == fake.now + 1.0
    with pytest.raises(QuotaReached) as reached:
        gate.take(1)                                       # 2 before, 8 now: 10 an hour
    assert reached.value.resume_at == wall + timedelta(seconds=3600 - (fake.now - 100.0))
    gate.pause(5)
    fake.now += 3600                                      # an hour later the quota is free again
    gate.take(1)
    assert gate.in_hour == 1


def test_an_hourly_quota_leaves_the_rest_for_when_it_resumes(tmp_path, monkeypatch):
    monkeypatch.setenv("DIGEST_SECRET_KEY", "distance-secret-0123456789abcdef")
    world = World(tmp_path, f"sqlite:///{tmp_path / 'digest.db'}", 10, max_per_hour=4)
    run = CliRunner().invoke(cli, ["--config", str(world.config_path), "send", "weekly", *WEEK, "--yes"])
    assert run.exit_code == 0, run.output
    assert re.search(r"4 accepted, 0 failed, 0 suppressed, 6 not sent yet \(the hourly quota is reached: they go "
                     r"from \d{4}-\d\d-\d\d \d\d:\d\d UTC\)", run.output), run.output
    due = world.db.ledger.next_retry(world.db.ledger.latest("weekly", world.since, world.until).id)
    assert timedelta(minutes=59) < due - datetime.now(UTC) <= timedelta(hours=1)     # the scheduler's retry
    again = CliRunner().invoke(cli, ["--config", str(world.config_path), "send", "weekly", *WEEK, "--yes"])
    assert "4 accepted" in again.output and "6 not sent yet" in again.output          # the same hour: nothing more
    world.close()


# ------------------------------------------------------------------ several senders, one edition (PostgreSQL)

def _send(world: World, *extra: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    command = ["--config", str(world.config_path), "send", "weekly", *WEEK, "--yes", *extra]
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_CRASH")}
    return start_digest(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                        stdin=subprocess.DEVNULL, env={**clean, **(env or {})})


@pytest.fixture
def pg_fresh(pg_url: str) -> str:
    """This session's PostgreSQL database, emptied (as db_url's PostgreSQL half does)."""
    import sqlalchemy as sa

    from digest.db.tables import metadata
    engine = sa.create_engine(pg_url)
    metadata.drop_all(engine)
    with engine.begin() as db:
        db.execute(sa.text("DROP TABLE IF EXISTS apscheduler_jobs"))
        db.execute(sa.text("DROP TABLE IF EXISTS alembic_version"))
    engine.dispose()
    return pg_url


def _shared_world(tmp_path: Path, pg_url: str, n: int, port: int) -> World:
    world = World(tmp_path, pg_url, n, backend="smtp", smtp={"host": "127.0.0.1", "port": port, "connections": 2},
                  lease_seconds=3)
    return world


def test_two_senders_started_together_share_the_edition(tmp_path, pg_fresh):
    controller, recorder = smtp_server.start()
    recorder.delay = 0.03
    world = _shared_world(tmp_path, pg_fresh, 120, controller.port)
    try:
        first, second = _send(world), _send(world)          # two machines, the same moment
        outs = [p.communicate(timeout=180) for p in (first, second)]
        assert [first.returncode, second.returncode] == [0, 0], outs
        assert Counter(recorder.recipients()) == readers(120)                 # everyone once
        joined = [re.search(r"this sender joined another and sent (\d+) of them", out) for out, _ in outs]
        shares = [int(found.group(1)) for found in joined if found]
        assert len(shares) == 1 and 0 < shares[0] < 120, outs                  # the second really worked too
        assert world.db.ledger.latest("weekly", world.since, world.until).status == "sent"
    finally:
        world.close()
        controller.stop()


KILL_AT = {"send.frozen": 1, "send.in_flight": 15, "send.recorded": 15, "send.finished": 1}


@pytest.mark.parametrize("point", sorted(KILL_AT))
def test_a_sender_killed_at_any_point_leaves_its_rows_to_the_other(tmp_path, pg_fresh, point):
    """Two senders started together; SIGKILL one at a commit boundary: the other takes
    over its batch (its lease is void: the process is gone) and finishes; nobody gets two
    copies, and the messages that were in flight in the killed one are `unknown`, not
    resent."""
    controller, recorder = smtp_server.start()
    recorder.delay = 0.03
    world = _shared_world(tmp_path, pg_fresh, 120, controller.port)
    mark = tmp_path / "crashed"
    try:
        doomed = _send(world, env={"DIGEST_CRASH_AT": f"{point}:{KILL_AT[point]}", "DIGEST_CRASH_MARK": str(mark)})
        survivor = _send(world)
        doomed.communicate(timeout=180)
        out, err = survivor.communicate(timeout=180)
        if doomed.returncode != -signal.SIGKILL:       # the survivor froze first, and the doomed one never got there
            assert point in ("send.frozen", "send.finished") and doomed.returncode in (0, 1), point
        else:
            assert mark.read_text().startswith(point)
        assert survivor.returncode in (0, 1), err
        received = Counter(recorder.recipients())
        assert all(n == 1 for n in received.values()), received              # 0 duplicates
        with Database.open(world.settings.database_url()) as db:
            edition = db.ledger.latest("weekly", world.since, world.until)
            counts = {status.value: n for status, n in db.ledger.counts(edition.id).items()}
        assert counts.get("pending", 0) == 0 and counts.get("sending", 0) == 0, counts     # 0 lost...
        assert counts.get("unknown", 0) <= 2                                 # ...but one per connection in flight
        assert counts["accepted"] + counts.get("unknown", 0) == 120 and set(received) <= set(readers(120))
        assert counts["accepted"] <= len(received) <= 120                    # what the ledger calls sent, went
        assert edition.status == "sent" or counts.get("unknown")
    finally:
        world.close()
        controller.stop()


def _held_by(world: World, pid: int) -> Counter[str]:
    import sqlalchemy as sa
    with world.db.engine.connect() as connection:
        rows = connection.execute(sa.text("SELECT status, claimed_by FROM deliveries")).all()
    return Counter(status for status, holder in rows if holder and f":{pid}:" in holder)


def test_a_sender_stopped_past_its_lease_sends_none_of_what_the_other_took(tmp_path, pg_fresh):
    """A sender frozen (SIGSTOP: a suspended machine) while it holds a batch: the other
    takes its pending rows when the lease runs out and finishes the edition; continued
    (SIGCONT), the frozen one sends none of them: nobody gets two copies."""
    controller, recorder = smtp_server.start()
    recorder.delay = 0.05
    world = _shared_world(tmp_path, pg_fresh, 200, controller.port)
    try:
        frozen, other = _send(world), _send(world)
        deadline = time.monotonic() + 60
        while _held_by(world, frozen.pid)["pending"] == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        frozen.send_signal(signal.SIGSTOP)
        held = _held_by(world, frozen.pid)
        assert held["pending"] > 0, "the frozen sender must hold pending rows for this test to mean anything"
        out, err = other.communicate(timeout=180)                  # takes them after the 3 s lease
        frozen.send_signal(signal.SIGCONT)
        frozen.communicate(timeout=180)
        assert other.returncode in (0, 1), err
        received = Counter(recorder.recipients())
        assert all(n == 1 for n in received.values()), {k: n for k, n in received.items() if n > 1}
        assert set(received) == set(readers(200))                  # and nobody lost
    finally:
        world.close()
        controller.stop()


def test_a_second_sender_on_sqlite_is_one_line(tmp_path):
    controller, recorder = smtp_server.start()
    recorder.delay = 0.05
    world = World(tmp_path, f"sqlite:///{tmp_path / 'digest.db'}", 40, backend="smtp",
                  smtp={"host": "127.0.0.1", "port": controller.port, "connections": 1})
    try:
        first = _send(world)
        deadline = time.time() + 30
        while not recorder.received and time.time() < deadline:
            time.sleep(0.05)
        second = _send(world)
        _, err = second.communicate(timeout=60)
        assert second.returncode == 1 and err.strip().splitlines()[-1].startswith(
            "Error: send:weekly is already running")
        first.communicate(timeout=120)
        assert first.returncode == 0 and Counter(recorder.recipients()) == readers(40)
    finally:
        world.close()
        controller.stop()


@settings(max_examples=500, deadline=None)
@given(st.dictionaries(st.sampled_from(["x-ratelimit-reset", "retry-after"]),
                       st.one_of(st.text(max_size=20), st.sampled_from(["²", "¹²", "٣٠", "1e9", "-5", " 30 ", "Wed"]))))
def test_whatever_a_429_says_the_wait_is_a_bounded_number_or_the_backoff(headers):
    """A stranger's headers (Unicode digits that str.isdigit takes and float refuses, dates,
    signs) never raise: the wait is between 0 and MAX_DELAY, or None (back off)."""
    from digest.send.mailers.sendgrid import MAX_DELAY, _rate_limit_wait
    wait = _rate_limit_wait(headers, 1_700_000_000.0)
    assert wait is None or 0.0 <= wait <= MAX_DELAY
    if headers.get("retry-after", "").strip() in ("²", "٣٠") and "x-ratelimit-reset" not in headers:
        assert wait is None
