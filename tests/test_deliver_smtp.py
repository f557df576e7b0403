"""Delivery through a real SMTP server on loopback, with the sender killed part way."""

from __future__ import annotations

import subprocess
import threading
import time
from collections import Counter

import pytest

from digest.actions import send_edition
from digest.errors import LockedError
from digest.send.mailers import MailerError

from .support import smtp_server
from .support.processes import start_digest
from .support.world import World

WEEK = ["--since", "2017-10-25", "--until", "2017-11-01"]


@pytest.fixture
def smtp():
    controller, recorder = smtp_server.start()
    yield controller, recorder
    controller.stop()


def world_for(tmp_path, db_url, smtp, subscribers):
    """One connection: these tests count what one session had sent when it was killed
    (several at once: tests/test_distance.py and the crash points)."""
    controller, _ = smtp
    return World(tmp_path, db_url, subscribers, backend="smtp",
                 smtp={"host": "127.0.0.1", "port": controller.port, "connections": 1})


def cli_send(world, *extra, wait=True):
    command = ["--config", str(world.config_path), "send", "weekly", *WEEK, "--yes", *extra]
    process = start_digest(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    if wait:
        process.wait(timeout=120)
    return process


def test_every_message_is_a_proper_multipart_with_unsubscribe_headers(tmp_path, db_url, smtp):
    world = world_for(tmp_path, db_url, smtp, 4)
    report = send_edition(world.settings, world.db, world.weekly, world.since, world.until)
    assert report.counts == {"accepted": 4}
    _, recorder = smtp
    for message in recorder.messages:
        assert message.get_content_type() == "multipart/alternative"
        assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]
        assert message["List-Unsubscribe"].startswith("<https://digest.onprobation-digest.org/unsubscribe/")
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert message["Message-ID"] and message["Date"]
        html = message.get_body(("html",)).get_content()
        assert message["List-Unsubscribe"].strip("<>") in html
    world.close()


def test_killed_sender_resumes_and_nobody_gets_two(tmp_path, db_url, smtp):
    world = world_for(tmp_path, db_url, smtp, 250)
    _, recorder = smtp
    process = {}

    def kill_at(number: int) -> str | None:
        if number == 137:                 # the 137th message: killed before it goes
            smtp_server.kill(process["pid"])
            return "451 try again later"
        return None

    recorder.on_rcpt = kill_at
    first = cli_send(world, wait=False)
    process["pid"] = first.pid
    first.wait(timeout=120)
    assert first.returncode == -9
    assert len(recorder.messages) == 136
    recorder.on_rcpt = lambda number: None

    second = cli_send(world)
    assert second.returncode == 0, second.stderr.read()
    assert "weekly: edition 1: 250 accepted, 0 failed, 0 suppressed, 0 not sent yet" in second.stdout.read()
    received = Counter(recorder.recipients())
    assert len(received) == 250 and set(received.values()) == {1}
    world.close()


def test_killed_during_data_is_unknown_and_sent_again_only_when_asked(tmp_path, db_url, smtp):
    world = world_for(tmp_path, db_url, smtp, 20)
    _, recorder = smtp
    process = {}

    def kill_in_data(number: int) -> str | None:
        if number == 8:
            smtp_server.kill(process["pid"])
            time.sleep(0.2)
            return "451 never mind"       # the client is gone: nothing was accepted
        return None

    recorder.on_data = kill_in_data
    first = cli_send(world, wait=False)
    process["pid"] = first.pid
    first.wait(timeout=120)
    recorder.on_data = lambda number: None

    second = cli_send(world)
    out = second.stdout.read()
    assert "19 accepted" in out and "1 of unknown outcome" in out and second.returncode == 1
    assert "in flight when an earlier run stopped" in second.stderr.read()
    assert len(recorder.messages) == 7 + 12

    third = cli_send(world, "--retry-unknown")
    assert third.returncode == 0 and "20 accepted" in third.stdout.read()
    received = Counter(recorder.recipients())
    assert len(received) == 20 and set(received.values()) == {1}
    world.close()


def test_server_down_is_a_clear_error_and_the_ledger_waits(tmp_path, db_url):
    world = World(tmp_path, db_url, 3, backend="smtp", smtp={"host": "127.0.0.1", "port": smtp_server.free_port()})
    with pytest.raises(MailerError, match=r"SMTP server 127.0.0.1:\d+ is not reachable .*check \[sending.smtp\]"):
        send_edition(world.settings, world.db, world.weekly, world.since, world.until)
    ledger = world.db.ledger
    assert ledger.counts(ledger.latest("weekly", world.since, world.until).id) == {"pending": 3}
    world.close()


def test_refused_recipient_is_recorded_and_the_rest_go(tmp_path, db_url, smtp):
    world = world_for(tmp_path, db_url, smtp, 5)
    _, recorder = smtp
    recorder.on_rcpt = lambda number: "550 no such user" if number == 2 else None
    report = send_edition(world.settings, world.db, world.weekly, world.since, world.until)
    assert report.counts == {"accepted": 4, "refused": 1}
    assert "1 failed" in report.summary()
    world.close()


def test_a_second_sender_on_the_same_list_does_not_send(tmp_path, db_url, smtp):
    world = world_for(tmp_path, db_url, smtp, 5)
    held, done = threading.Event(), threading.Event()

    def other_sender() -> None:            # another holder (its own thread), still alive
        with world.db.locks.hold("send:weekly"):
            held.set()
            done.wait(timeout=30)

    holder = threading.Thread(target=other_sender)
    holder.start()
    assert held.wait(timeout=10)
    try:
        if not world.db.shares_sends:         # PostgreSQL waits for the lock instead (and then shares the edition)
            with pytest.raises(LockedError, match="send:weekly is already running"):
                send_edition(world.settings, world.db, world.weekly, world.since, world.until)
    finally:
        done.set()
        holder.join()
    _, recorder = smtp
    assert recorder.messages == []

    release = threading.Event()           # the first sender's first message waits until the second gave up
    recorder.on_data = lambda n: None if release.wait(timeout=60) else None
    first = cli_send(world, wait=False)
    deadline = time.time() + 30
    while not recorder.rcpt_count and time.time() < deadline:
        time.sleep(0.05)
    try:
        if world.db.shares_sends:             # PostgreSQL: it waits for the freeze, joins, both finish
            second = cli_send(world, wait=False)
            time.sleep(2)
        else:                                 # SQLite: one line, nothing sent
            second = cli_send(world)
            assert second.returncode == 1 and "send:weekly is already running" in second.stderr.read()
    finally:
        release.set()
    first.wait(timeout=60)
    assert first.returncode == 0
    if world.db.shares_sends:                 # joined (tests/test_distance.py proves it shares), or came too late
        second.wait(timeout=60)
        said = second.stderr.read()
        assert second.returncode == 0 or (second.returncode == 1 and "was sent at" in said), said
    assert Counter(recorder.recipients()) == Counter({f"reader{n:05d}@example.org": 1 for n in range(5)})
    world.close()
