"""Delivery through SendGrid's v3 contract, against a local stand-in on loopback."""

from __future__ import annotations

import time
from collections import Counter

import pytest

from digest.actions import send_edition
from digest.send.deliver import AlreadySent
from digest.send.mailers import MailerError
from digest.send.mailers.sendgrid import SendGridMailer

from .support.sendgrid_server import Fault, SendGridStandIn
from .support.world import World


@pytest.fixture
def sendgrid(monkeypatch):
    server = SendGridStandIn()
    monkeypatch.setenv("SENDGRID_API_KEY", server.api_key)
    yield server
    server.stop()


def world_for(tmp_path, db_url, server, subscribers, **sendgrid):
    return World(tmp_path, db_url, subscribers, backend="sendgrid",
                 sendgrid={"host": server.host, "timeout": 1.0, "backoff": 0.01, **sendgrid})


def mailer(world, slept=None):
    slept = [] if slept is None else slept
    return SendGridMailer(world.settings.send_settings(), sleep=slept.append)


def test_2500_subscribers_arrive_exactly_once_through_faults(tmp_path, db_url, sendgrid):
    world = world_for(tmp_path, db_url, sendgrid, 2500)
    reset = int(time.time()) + 3
    sendgrid.faults = [Fault(429, headers={"X-RateLimit-Reset": str(reset)}), Fault(500),
                       Fault(delay=2.0),              # accepted, but the answer comes too late
                       Fault(400)]                    # the next batch is refused: the run stops
    slept: list[float] = []
    with pytest.raises(MailerError, match=r"SendGrid 400, request refused: injected 400; check SENDGRID_API_KEY"):
        send_edition(world.settings, world.db, world.weekly, world.since, world.until, mailer(world, slept))
    assert 0 < slept[0] <= 3.0 and len(slept) == 2     # waited for the reset, then backed off
    ledger = world.db.ledger
    edition_id = ledger.latest("weekly", world.since, world.until).id
    assert ledger.counts(edition_id) == {"unknown": 1000, "pending": 1500}

    report = send_edition(world.settings, world.db, world.weekly, world.since, world.until, mailer(world))
    assert report.resumed and report.counts == {"unknown": 1000, "accepted": 1500}
    assert "1000 of unknown outcome" in report.summary()

    assert report.finished            # unknown outcomes are reported, not retried unasked: the edition is sent
    before = sendgrid.requests
    with pytest.raises(AlreadySent):
        send_edition(world.settings, world.db, world.weekly, world.since, world.until, mailer(world))
    assert sendgrid.requests == before and ledger.counts(edition_id) == report.counts

    received = Counter(sendgrid.recipients())
    assert len(received) == 2500 and set(received.values()) == {1}
    world.close()


def test_request_shape_personalizations_and_headers(tmp_path, db_url, sendgrid):
    world = world_for(tmp_path, db_url, sendgrid, 5)
    report = send_edition(world.settings, world.db, world.weekly, world.since, world.until, mailer(world))
    assert report.counts == {"accepted": 5}
    assert sendgrid.requests == 1
    body = sendgrid.bodies[0]
    assert body["from"] == {"email": "digest@onprobation-digest.org", "name": "On Probation digest"}
    assert body["subject"] == "On Probation: the best of the discussion, 25–31 October 2017"
    person = next(p for p in sendgrid.accepted if p["to"][0]["email"] == "reader00003@example.org")
    assert person["to"][0]["name"] == "Reader 00003"
    assert person["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    unsubscribe = person["headers"]["List-Unsubscribe"].strip("<>")
    assert unsubscribe.startswith("https://digest.onprobation-digest.org/unsubscribe/")
    assert unsubscribe in person["substitutions"].values()
    assert "Hello Reader 00003," in person["substitutions"].values()
    assert person["custom_args"] == {"list": "weekly", "subscriber": "reader00003@example.org",
                                     "edition": str(report.edition_id)}
    ledger_ids = {r["message_id"] for r in sendgrid.accepted}
    assert ledger_ids == {"msg-1"}
    world.close()


def test_missing_and_wrong_api_key_stop_with_the_setting_to_fix(tmp_path, db_url, sendgrid, monkeypatch):
    world = world_for(tmp_path, db_url, sendgrid, 3)
    monkeypatch.delenv("SENDGRID_API_KEY")
    with pytest.raises(MailerError, match="SENDGRID_API_KEY is not set"):
        send_edition(world.settings, world.db, world.weekly, world.since, world.until)
    monkeypatch.setenv("SENDGRID_API_KEY", "SG.wrong")
    with pytest.raises(MailerError, match="SendGrid 401, API key refused: The provided authorization grant"):
        send_edition(world.settings, world.db, world.weekly, world.since, world.until)
    ledger = world.db.ledger
    assert ledger.counts(ledger.latest("weekly", world.since, world.until).id) == {"pending": 3}
    monkeypatch.setenv("SENDGRID_API_KEY", sendgrid.api_key)
    assert send_edition(world.settings, world.db, world.weekly, world.since, world.until).counts == {"accepted": 3}
    world.close()


def test_unverified_sender_403(tmp_path, db_url, sendgrid):
    world = world_for(tmp_path, db_url, sendgrid, 2)
    refusal = "The from address does not match a verified Sender Identity."
    sendgrid.faults = [Fault(403, body={"errors": [{"message": refusal}]})]
    with pytest.raises(MailerError, match="SendGrid 403, not allowed .*verified Sender Identity"):
        send_edition(world.settings, world.db, world.weekly, world.since, world.until, mailer(world))
    world.close()


def test_413_splits_the_batch(tmp_path, db_url, sendgrid):
    world = world_for(tmp_path, db_url, sendgrid, 40)
    sendgrid.max_body = 80_000          # the edition once plus ~20 personalizations
    report = send_edition(world.settings, world.db, world.weekly, world.since, world.until, mailer(world))
    assert report.counts == {"accepted": 40}
    assert Counter(sendgrid.recipients()) == Counter({f"reader{n:05d}@example.org": 1 for n in range(40)})
    assert sendgrid.requests > 2
    world.close()


def test_persistent_5xx_defers_the_batch_and_the_next_run_sends_it(tmp_path, db_url, sendgrid):
    """5xx after the retries is "try again later": the batch stays pending (not refused,
    not lost), the run goes on and ends unfinished, and the next run delivers it."""
    world = World(tmp_path, db_url, 3, backend="sendgrid", retry_within_run_seconds=0,
                  sendgrid={"host": sendgrid.host, "timeout": 1.0, "backoff": 0.01, "retries": 2})
    sendgrid.faults = [Fault(503)] * 3
    first = send_edition(world.settings, world.db, world.weekly, world.since, world.until, mailer(world))
    assert first.counts == {"pending": 3} and not first.finished
    assert "3 not sent yet" in first.summary()
    assert world.db.ledger.unfinished("weekly")[0].id == first.edition_id
    time.sleep(0.1)                                           # retry_delay_seconds has passed
    second = send_edition(world.settings, world.db, world.weekly, world.since, world.until, mailer(world))
    assert second.counts == {"accepted": 3} and second.finished and second.edition_id == first.edition_id
    assert sorted(sendgrid.recipients()) == [f"reader{n:05d}@example.org" for n in range(3)]
    world.close()


def test_5xx_deferral_is_retried_within_the_run(tmp_path, db_url, sendgrid):
    world = world_for(tmp_path, db_url, sendgrid, 3, retries=0)
    sendgrid.faults = [Fault(503)]                            # one failed request, then the server is back
    report = send_edition(world.settings, world.db, world.weekly, world.since, world.until, mailer(world))
    assert report.counts == {"accepted": 3} and report.finished
    assert sorted(sendgrid.recipients()) == [f"reader{n:05d}@example.org" for n in range(3)]
    world.close()


def test_a_413_split_whose_first_half_fails_leaves_every_unsent_message_pending(tmp_path, db_url, sendgrid):
    """Both halves of a split batch are `sending` before the first goes; when the first
    half is refused, the second (never sent) is pending again, not `unknown`."""
    world = world_for(tmp_path, db_url, sendgrid, 4)
    sendgrid.faults = [Fault(413), Fault(400)]
    with pytest.raises(MailerError, match="SendGrid 400"):
        send_edition(world.settings, world.db, world.weekly, world.since, world.until, mailer(world))
    ledger = world.db.ledger
    edition_id = ledger.latest("weekly", world.since, world.until).id
    assert ledger.counts(edition_id) == {"pending": 4}
    assert sendgrid.recipients() == []
    report = send_edition(world.settings, world.db, world.weekly, world.since, world.until, mailer(world))
    assert report.counts == {"accepted": 4} and report.cut_off == 0
    assert sorted(sendgrid.recipients()) == [f"reader{n:05d}@example.org" for n in range(4)]
    world.close()
