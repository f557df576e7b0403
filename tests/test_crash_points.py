"""Never lost, never doubled, at EVERY commit boundary: a real `digest` process is
killed (SIGKILL) at each registered crash point, then run again until its work is done.

Sends go through the outbox, a real SMTP server (aiosmtpd) and the SendGrid contract
server, on SQLite and PostgreSQL. After the re-runs every recipient has at most one
copy, a recipient without a copy is exactly one whose message was in flight and is
reported `unknown`, and the edition is sent. Fetches, list syncs, the scheduler and the
webhook are killed at their points too. A crash point added to digest.crash.POINTS but
not exercised here fails `test_every_crash_point_is_exercised`.
"""

from __future__ import annotations

import ast
import base64
import json
import os
import subprocess
import time
from collections import Counter
from email import message_from_bytes
from email.policy import default
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from digest import crash
from digest.db import Database
from digest.models import DeliveryStatus

from .support import smtp_server
from .support.processes import run_digest, start_digest
from .support.sendgrid_server import SendGridStandIn
from .support.world import World

PACKAGE = Path(__file__).resolve().parent.parent / "digest"
READERS = 7
WEEK = ("--since", "2017-10-25", "--until", "2017-11-01")

# point -> how many times it is passed before the kill (a mid-list moment where it matters)
SEND_POINTS = {"send.frozen": 1, "send.in_flight": 2, "send.recorded": 2, "send.finished": 1, "send.resumed": 1}
SYNC_POINTS = {"sync.chunk": 1, "sync.finished": 1}
FETCH_POINTS = {"fetch.posts": 1, "fetch.comments": 2, "fetch.threaded": 1, "fetch.finished": 1}
OTHER_POINTS = {"schedule.recorded", "webhook.applied"}
APPROVAL_POINTS = {"hold.frozen", "review.sent", "approve.approved", "order.claimed"}
BOUNCE_POINTS = {"bounce.recorded", "bounce.marked"}
MAIL_POINTS = {"mail.applied", "mail.marked"}
EXERCISED = {*SEND_POINTS, *SYNC_POINTS, *FETCH_POINTS, *OTHER_POINTS, *APPROVAL_POINTS, *BOUNCE_POINTS,
             *MAIL_POINTS}


def test_every_crash_point_is_exercised() -> None:
    """The registry, the points the code passes, and the points this file kills at agree."""
    in_code = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "point":
                in_code |= {n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
    assert in_code == set(crash.POINTS)
    assert EXERCISED == set(crash.POINTS)


def test_a_crash_point_is_inert_without_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DIGEST_CRASH_AT", raising=False)
    for name in crash.POINTS:
        crash.point(name)                         # still alive
    monkeypatch.setenv("DIGEST_CRASH_AT", "send.frozen:1000")
    crash.point("send.frozen")                    # counted, not reached
    with pytest.raises(KeyError):
        crash.point("no.such.point")


# ------------------------------------------------------------------ running digest for real

def digest_cli(world: World, *args: str, crash_at: str | None = None, env: dict[str, str] | None = None,
               timeout: float = 120) -> subprocess.CompletedProcess[str]:
    extra = {"DIGEST_CRASH_AT": crash_at, "DIGEST_CRASH_MARK": str(world.folder / "crashed")} if crash_at else {}
    command = ["--config", str(world.config_path), *args]
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_CRASH")}
    return run_digest(command, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
                      env={**clean, **(env or {}), **extra})


def crash_then(world: World, args: tuple[str, ...], point: str, hits: int, env: dict[str, str]) -> None:
    """Kill `digest ARGS` at the point; prove it died there (not elsewhere, not at all)."""
    mark = world.folder / "crashed"
    mark.unlink(missing_ok=True)
    died = digest_cli(world, *args, crash_at=f"{point}:{hits}", env=env)
    assert died.returncode == -9, f"expected SIGKILL at {point}; got {died.returncode}: {died.stderr[-2000:]}"
    assert mark.read_text(encoding="utf-8").startswith(f"{point}:"), "killed, but not at the point asked for"


def send_until_done(world: World, env: dict[str, str], runs: int = 4) -> None:
    for _ in range(runs):
        result = digest_cli(world, "send", "weekly", *WEEK, "--yes", env=env)
        if "was sent at" in result.stderr:                 # refused as already sent: done
            return
        assert "Traceback" not in result.stderr, result.stderr
    raise AssertionError(f"not finished after {runs} runs: {result.stdout} {result.stderr}")


def ledger_of(world: World) -> dict[str, DeliveryStatus]:
    db = Database.open(world.settings.database_url())
    try:
        edition = db.ledger.latest("weekly", world.since, world.until)
        assert edition is not None and edition.status == "sent", "the edition must end sent"
        with db.engine.connect() as connection:
            from digest.db.tables import deliveries
            rows = connection.execute(deliveries.select().where(deliveries.c.edition_id == edition.id)).all()
        return {r.email: DeliveryStatus(r.status) for r in rows}
    finally:
        db.close()


def assert_once_or_reported(received: Counter[str], ledger: dict[str, DeliveryStatus], in_flight: int) -> None:
    """0 duplicates; 0 lost except messages in flight at the crash, reported unknown."""
    expected = {f"reader{n:05d}@example.org" for n in range(READERS)}
    assert set(ledger) == expected
    assert all(count == 1 for count in received.values()), f"duplicates: {received}"
    assert set(received) <= expected
    missing = expected - set(received)
    assert all(ledger[address] == DeliveryStatus.UNKNOWN for address in missing), (missing, ledger)
    unknown = [a for a, status in ledger.items() if status == DeliveryStatus.UNKNOWN]
    assert len(unknown) <= in_flight
    assert all(ledger[a] in (DeliveryStatus.ACCEPTED, DeliveryStatus.UNKNOWN) for a in expected)


def outbox_recipients(world: World) -> Counter[str]:
    found: Counter[str] = Counter()
    for path in (world.folder.parent / "demo" / "outbox").glob("weekly-*/*.eml"):
        found[message_from_bytes(path.read_bytes(), policy=default)["To"].addresses[0].addr_spec] += 1
    return found


class Backend:
    """A mail backend for the crash test: its config, its env, and who got what."""

    def __init__(self, name: str, tmp_path: Path, db_url: str) -> None:
        self.name, self.env = name, {}
        options: dict = {}
        self.server = self.smtp = None
        if name == "smtp":
            self.smtp = smtp_server.start()
            options = {"smtp": {"host": "127.0.0.1", "port": self.smtp[0].port}}
        elif name == "sendgrid":
            self.server = SendGridStandIn()
            self.env = {"SENDGRID_API_KEY": self.server.api_key}
            options = {"sendgrid": {"host": self.server.host, "batch_size": 3, "timeout": 5.0, "backoff": 0.01}}
        self.world = World(tmp_path, db_url, READERS, backend=name, **options)

    def received(self) -> Counter[str]:
        if self.smtp is not None:
            return Counter(self.smtp[1].recipients())
        if self.server is not None:
            return Counter(self.server.recipients())
        return outbox_recipients(self.world)

    def hits(self, point: str) -> int:
        """Mid-list where the backend has a middle: SMTP commits per message (3rd), SendGrid
        per batch of 3 (2nd); the outbox writes its one batch of 7 between two commits."""
        if self.name == "smtp" and point == "send.in_flight":
            return 3
        if self.name == "outbox" and point in ("send.in_flight", "send.recorded"):
            return 1
        return SEND_POINTS[point]

    @property
    def in_flight(self) -> int:
        """What may be past the point of no return at once: a message per SMTP connection,
        a batch per SendGrid request in flight, the outbox's one batch."""
        sending = self.world.settings.sending
        return {"smtp": sending.smtp.connections,
                "sendgrid": min(READERS, 3 * sending.sendgrid.concurrency)}.get(self.name, READERS)

    def close(self) -> None:
        self.world.close()
        if self.smtp is not None:
            self.smtp[0].stop()
        if self.server is not None:
            self.server.stop()


@pytest.fixture(params=["outbox", "smtp", "sendgrid"])
def backend(request: pytest.FixtureRequest, tmp_path: Path, db_url: str):
    made = Backend(request.param, tmp_path, db_url)
    yield made
    made.close()


@pytest.mark.parametrize("point", sorted(SEND_POINTS))
def test_a_send_killed_at_any_point_finishes_with_nobody_twice_and_nobody_lost(backend: Backend, point: str) -> None:
    world, args = backend.world, ("send", "weekly", *WEEK, "--yes")
    if point == "send.resumed":                   # a resume needs something cut off first
        crash_then(world, args, "send.in_flight", 1, backend.env)
    hits = backend.hits(point)
    crash_then(world, args, point, hits, backend.env)
    send_until_done(world, backend.env)
    assert_once_or_reported(backend.received(), ledger_of(world), backend.in_flight)


@pytest.mark.parametrize("point", sorted(SYNC_POINTS))
def test_a_list_sync_killed_at_any_point_retires_nobody_wrongly(tmp_path: Path, db_url: str, point: str) -> None:
    world = World(tmp_path, db_url, READERS)
    world.write_list([f"reader{n:05d}@example.org" for n in range(READERS + 2)])      # two new readers
    world.save()
    crash_then(world, ("subscribers", "list", "weekly", "--sync"), point, SYNC_POINTS[point], {})
    listed = digest_cli(world, "subscribers", "list", "weekly", "--sync")
    assert listed.returncode == 0, listed.stderr
    states = dict(line.split("\t")[0::2] for line in listed.stdout.splitlines())
    assert states == {f"reader{n:05d}@example.org": "active" for n in range(READERS + 2)}
    world.close()


@pytest.mark.parametrize("point", sorted(FETCH_POINTS))
def test_a_fetch_killed_at_any_point_stores_everything_once_when_run_again(tmp_path: Path, db_url: str,
                                                                            point: str) -> None:
    world = World(tmp_path / "clean", db_url, 1)              # its fetch is the reference
    reference = _stored(world)
    world.close()
    other = World(tmp_path / "crashed", db_url, 1)
    _forget_content(other)
    crash_then(other, ("fetch",), point, FETCH_POINTS[point], {})
    again = digest_cli(other, "fetch")
    assert again.returncode == 0, again.stderr
    assert _stored(other) == reference
    other.close()


def _stored(world: World) -> tuple[int, int, int]:
    db = Database.open(world.settings.database_url())
    try:
        totals = db.content.totals()
        replies = sum(1 for row in db.content.iter_comments() if row.parent_key and not row.deleted)
        return totals["posts"], totals["comments"], replies
    finally:
        db.close()


def _forget_content(world: World) -> None:
    """The World fetched already; start this database from nothing read."""
    with world.db.engine.begin() as connection:
        from digest.db.tables import comments, http_cache, posts, sources
        for table in (comments, posts, http_cache, sources):
            connection.execute(table.delete())


# ------------------------------------------------------------------ the scheduler and the webhook

def test_the_scheduler_killed_after_recording_a_run_resumes_it(tmp_path: Path, db_url: str) -> None:
    """An edition cut off mid-send is resumed by `digest schedule` as soon as it starts;
    killing the scheduler right after it records the run loses and doubles nothing."""
    smtp = smtp_server.start()
    world = World(tmp_path, db_url, READERS, backend="smtp", smtp={"host": "127.0.0.1", "port": smtp[0].port})
    try:
        crash_then(world, ("send", "weekly", *WEEK, "--yes"), "send.in_flight", 3, {})
        crash_then(world, ("schedule",), "schedule.recorded", 1, {})
        in_flight = world.settings.sending.smtp.connections              # a message per connection
        assert_once_or_reported(Counter(smtp[1].recipients()), ledger_of(world), in_flight)
    finally:
        world.close()
        smtp[0].stop()


def test_the_webhook_killed_after_applying_an_event_applies_it_once(tmp_path: Path, db_url: str) -> None:
    import httpx
    key = ec.generate_private_key(ec.SECP256R1())
    public = base64.b64encode(key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)).decode()
    world = World(tmp_path, db_url, READERS)
    env = {"SENDGRID_WEBHOOK_PUBLIC_KEY": public, "DIGEST_SECRET_KEY": "k" * 40}
    event = [{"sg_event_id": "evt-1", "event": "bounce", "email": "reader00001@example.org"}]
    body = json.dumps(event).encode()

    def post(port: int) -> httpx.Response:
        stamp = str(int(time.time()))
        signature = base64.b64encode(key.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))).decode()
        headers = {"X-Twilio-Email-Event-Webhook-Signature": signature,
                   "X-Twilio-Email-Event-Webhook-Timestamp": stamp, "Content-Type": "application/json"}
        return httpx.post(f"http://127.0.0.1:{port}/webhooks/sendgrid", content=body, headers=headers, timeout=10)

    first = _serve(world, env, crash_at="webhook.applied:1")
    with pytest.raises(httpx.HTTPError):
        post(first[1])                            # the server dies before it answers
    assert first[0].wait(timeout=30) == -9
    second = _serve(world, env)
    try:
        answer = post(second[1])                  # the provider retries the same event
        assert answer.status_code == 200 and answer.text == "0 applied"
    finally:
        second[0].terminate()
        second[0].wait(timeout=30)
    db = Database.open(world.settings.database_url())
    assert db.lists.suppression("weekly", "reader00001@example.org").reason == "bounced"
    db.close()
    world.close()


def _serve(world: World, env: dict[str, str], crash_at: str | None = None) -> tuple[subprocess.Popen, int]:
    import socket
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    extra = {"DIGEST_CRASH_AT": crash_at, "DIGEST_CRASH_MARK": str(world.folder / "crashed")} if crash_at else {}
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_CRASH")}
    process = start_digest(["--config", str(world.config_path), "serve",
                                "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               env={**clean, **env, **extra})
    deadline = time.time() + 30
    while time.time() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return process, port
        time.sleep(0.1)
    process.kill()
    raise AssertionError("digest serve did not start")


@pytest.mark.parametrize("stop", ["SIGTERM", "SIGKILL"])
def test_the_scheduler_stopped_mid_send_finishes_the_edition_when_restarted(tmp_path: Path, db_url: str,
                                                                             stop: str) -> None:
    """`digest schedule` resumes an unfinished edition at once when it starts; stopped
    mid-send (the documented SIGTERM, or SIGKILL) and started again, it finishes that
    edition without waiting for the list's next date, and nobody gets two copies."""
    import signal
    smtp = smtp_server.start()
    smtp[1].delay = 0.2                                       # a slow relay: the send takes a while
    world = World(tmp_path, db_url, 12, backend="smtp", smtp={"host": "127.0.0.1", "port": smtp[0].port})
    try:
        crash_then(world, ("send", "weekly", *WEEK, "--yes"), "send.in_flight", 3, {})
        before = len(smtp[1].recipients())
        first = _schedule(world)
        _wait_for(lambda: len(smtp[1].recipients()) >= before + 2, "the scheduler to resume the send")
        first.send_signal(getattr(signal, stop))
        code = first.wait(timeout=60)
        assert code == (0 if stop == "SIGTERM" else -9), first.stderr.read() if first.stderr else ""
        assert len(smtp[1].recipients()) < 12, "stopped too late to prove anything"
        second = _schedule(world)
        try:
            _wait_for(lambda: _edition_status(world) == "sent", "the restarted scheduler to finish the edition")
        finally:
            second.terminate()
            second.wait(timeout=60)
        received = Counter(smtp[1].recipients())
        ledger = {k: v for k, v in ledger_of(world).items()}
        expected = {f"reader{n:05d}@example.org" for n in range(12)}
        assert set(ledger) == expected and all(n == 1 for n in received.values())
        assert all(ledger[a] == DeliveryStatus.UNKNOWN for a in expected - set(received))
        per_interruption = world.settings.sending.smtp.connections        # a message per connection, twice
        assert sum(1 for s in ledger.values() if s == DeliveryStatus.UNKNOWN) <= 2 * per_interruption
    finally:
        world.close()
        smtp[0].stop()


def _schedule(world: World) -> subprocess.Popen:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_CRASH")}
    return start_digest(["--config", str(world.config_path), "schedule"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env={**clean})


def _wait_for(condition, what: str, seconds: float = 60) -> None:  # noqa: ANN001 - a predicate
    deadline = time.time() + seconds
    while time.time() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _edition_status(world: World) -> str | None:
    db = Database.open(world.settings.database_url())
    try:
        found = db.ledger.latest("weekly", world.since, world.until)
        return found.status if found else None
    finally:
        db.close()


# ------------------------------------------------------------------ approval and the web's orders

def _approval_world(tmp_path: Path, db_url: str) -> World:
    world = World(tmp_path, db_url, READERS)
    world.data["lists"][0]["approval"] = "required"
    world.data["editor"] = {"email": "editor@onprobation-digest.org"}
    world.reload()
    return world


def _reviews(world: World) -> int:
    return len(list((world.folder.parent / "demo" / "outbox").glob("review-*/*.eml")))


def _held_editions(world: World) -> int:
    with Database.open(world.settings.database_url()) as db:
        return sum(1 for row in db.ledger.history("weekly") if row["status"] in ("held", "sending", "sent"))


@pytest.mark.parametrize("point", ["hold.frozen", "review.sent"])
def test_a_hold_killed_at_any_point_holds_one_edition_and_mails_one_review(tmp_path: Path, db_url: str,
                                                                          point: str) -> None:
    world = _approval_world(tmp_path, db_url)
    try:
        crash_then(world, ("send", "weekly", *WEEK, "--hold"), point, 1, {})
        again = digest_cli(world, "send", "weekly", *WEEK, "--hold")
        assert again.returncode == 0 and "is held for approval" in again.stdout, again.stderr
        assert _held_editions(world) == 1 and _reviews(world) == 1
        approved = digest_cli(world, "approve", "weekly", "--yes")
        assert approved.returncode == 0, approved.stderr
        assert_once_or_reported(outbox_recipients(world), ledger_of(world), 0)
        assert sum(outbox_recipients(world).values()) == READERS
    finally:
        world.close()


def test_an_approval_killed_after_it_is_recorded_is_resumed_by_approving_again(tmp_path: Path, db_url: str) -> None:
    smtp = smtp_server.start()
    world = World(tmp_path, db_url, READERS, backend="smtp", smtp={"host": "127.0.0.1", "port": smtp[0].port})
    world.data["lists"][0]["approval"] = "required"
    world.data["editor"] = {"email": "editor@onprobation-digest.org"}
    world.reload()
    try:
        held = digest_cli(world, "send", "weekly", *WEEK, "--hold")
        assert held.returncode == 0, held.stderr
        crash_then(world, ("approve", "weekly", "--yes"), "approve.approved", 1, {})
        assert [r for r in smtp[1].recipients() if r.startswith("reader")] == []
        crash_then(world, ("approve", "weekly", "--yes"), "send.in_flight", 3, {})    # cut off mid-send too
        resumed = digest_cli(world, "approve", "weekly", "--yes")
        assert resumed.returncode == 0 and "Resumed: weekly: edition" in resumed.stdout, resumed.stderr
        readers = Counter(r for r in smtp[1].recipients() if r.startswith("reader"))
        assert_once_or_reported(readers, ledger_of(world), world.settings.sending.smtp.connections)
        last = digest_cli(world, "approve", "weekly", "--yes")
        assert "nothing more to send" in last.stdout
        assert Counter(r for r in smtp[1].recipients() if r.startswith("reader")) == readers
    finally:
        world.close()
        smtp[0].stop()


def test_the_scheduler_killed_carrying_out_a_web_order_carries_it_out_once_when_restarted(tmp_path: Path,
                                                                                         db_url: str) -> None:
    from datetime import UTC, datetime
    world = World(tmp_path, db_url, READERS)
    try:
        with Database.open(world.settings.database_url()) as db:
            db.orders.place("weekly", "send", datetime.now(UTC), since=world.since, until=world.until)
        crash_then(world, ("schedule",), "order.claimed", 1, {})
        assert outbox_recipients(world) == Counter()
        second = _schedule(world)
        try:
            _wait_for(lambda: _edition_status(world) == "sent", "the restarted scheduler to carry out the order")
        finally:
            second.terminate()
            second.wait(timeout=60)
        assert_once_or_reported(outbox_recipients(world), ledger_of(world), 0)
        assert sum(outbox_recipients(world).values()) == READERS
        with Database.open(world.settings.database_url()) as db:
            [order] = db.orders.recent("weekly")
        assert order.status == "done" and "accepted 7" in order.outcome
    finally:
        world.close()


# ------------------------------------------------------------------ the bounce mailbox

@pytest.mark.parametrize("hits", [1, 4])
@pytest.mark.parametrize("point", sorted(BOUNCE_POINTS))
def test_a_bounce_read_killed_at_any_point_loses_nothing_and_doubles_nothing(tmp_path: Path, db_url: str,
                                                                             point: str, hits: int) -> None:
    """Six messages; the reader is killed after recording (or marking) the first or the
    fourth; run again, each message is recorded once, marked once, and applied once (the
    soft bounce counts one edition, not two)."""
    import sqlalchemy as sa

    from digest.db.tables import bounce_messages, suppressions

    from .support.bounce_mail import bounce_world, fill, reader
    made = bounce_world(tmp_path, db_url)
    try:
        made.send("2017-10-25", "2017-11-01")
        fill(made)
        crash_then(made.world, ("bounces",), point, hits, {})
        done = digest_cli(made.world, "bounces")
        assert done.returncode == 0, done.stderr
        with Database.open(made.world.settings.database_url()) as db, db.engine.connect() as connection:
            kinds = Counter(row.kind for row in connection.execute(sa.select(bounce_messages)))
            gone = {row.email_key: row.reason for row in connection.execute(sa.select(suppressions))}
        assert kinds == Counter({"hard": 2, "soft": 1, "complaint": 1, "auto-reply": 1, "unknown": 1})
        assert gone == {reader(0): "bounced", reader(2): "complained", reader(4): "bounced"}
        assert os.listdir(made.maildir / "new") == [] and len(os.listdir(made.maildir / "cur")) == 6
        again = digest_cli(made.world, "bounces")
        assert "0 new message(s)" in again.stdout and "recorded before" not in again.stdout
    finally:
        made.close()


# ------------------------------------------------------------------ requests by mail

@pytest.mark.parametrize("hits", [1, 3])
@pytest.mark.parametrize("point", sorted(MAIL_POINTS))
def test_a_mailbox_read_killed_at_any_point_applies_each_request_once(tmp_path: Path, db_url: str, point: str,
                                                                      hits: int) -> None:
    """Four readers unsubscribe by mail (the List-Unsubscribe mailto of the copies really
    sent); `digest mailbox` is killed after applying (or recording and marking) the first
    or the third; run again, each is applied once, recorded once and marked read, and the
    fifth reader, who asked nothing, is still on the list."""
    import sqlalchemy as sa

    from digest import actions
    from digest.db.tables import mail_messages, suppressions

    from .support.unsubscribe_mail import answer, list_unsubscribe_mailto, mail_world
    made = mail_world(tmp_path, db_url, readers=5)
    world = made.world
    try:
        actions.send_edition(world.settings, world.db, world.weekly, world.since, world.until)
        copies = made.copies()
        leaving = [f"reader{n:05d}@example.org" for n in range(4)]
        for n, address in enumerate(leaving):
            made.deliver(answer(list_unsubscribe_mailto(copies[address]), address), f"{n}.unsubscribe")
        crash_then(world, ("mailbox",), point, hits, {})
        done = digest_cli(world, "mailbox")
        assert done.returncode == 0, done.stderr
        with Database.open(world.settings.database_url()) as db, db.engine.connect() as connection:
            requests = connection.execute(sa.select(mail_messages.c.kind, mail_messages.c.kept)).all()
            gone = connection.execute(sa.select(suppressions.c.email_key, suppressions.c.reason)).all()
        assert sorted(requests) == [("unsubscribe", False)] * 4
        assert sorted(gone) == [(address, "unsubscribed") for address in leaving]
        assert os.listdir(made.maildir / "new") == []
        assert sorted(os.listdir(made.maildir / "cur")) == [f"{n}.unsubscribe:2,S" for n in range(4)]
        left = 4 - hits + (point == "mail.applied")          # the one applied but not recorded is read again
        assert done.stdout.splitlines()[-1].endswith(f": {left} new message(s): unsubscribe {left}"), done.stdout
        assert done.stdout.count("already off the list (unsubscribed): nothing changed") == (point == "mail.applied")
        again = digest_cli(world, "mailbox")
        assert "0 new message(s)" in again.stdout and "recorded before" not in again.stdout
    finally:
        world.close()
