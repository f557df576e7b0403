"""`digest send`, `editions` and `subscribers` through the CLI, with the outbox mailer."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime

import pytest
from click.testing import CliRunner

from digest.cli import cli
from digest.models import Reason

WEEK = ["--since", "2017-10-25", "--until", "2017-11-01"]


@pytest.fixture
def world(make_world, db_url):
    return make_world(db_url, 4)


def run(world, *args):
    return CliRunner().invoke(cli, ["--config", str(world.config_path), *args])


def outbox(world):
    return sorted((world.folder / ".." / "demo" / "outbox").resolve().glob("weekly-*/*.eml"))


def test_send_writes_one_proper_eml_per_subscriber(world):
    result = run(world, "send", "weekly", *WEEK, "--yes")
    assert result.exit_code == 0, result.output
    assert "weekly: edition 1: 4 accepted, 0 failed, 0 suppressed, 0 not sent yet" in result.output
    files = outbox(world)
    assert len(files) == 4
    recipients = set()
    for path in files:
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert message.get_content_type() == "multipart/alternative"
        assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert message["List-Unsubscribe"].startswith("<http://localhost:8000/unsubscribe/")
        recipients.add(message["To"].addresses[0].addr_spec)
    assert recipients == {f"reader{n:05d}@example.org" for n in range(4)}
    history = run(world, "editions").output
    assert "weekly\t2017-10-25..2017-11-01\tsent" in history and "recipients 4\tdelivered 4\tfailed 0" in history


def test_sending_again_is_refused_unless_asked(world):
    run(world, "send", "weekly", *WEEK, "--yes")
    again = run(world, "send", "weekly", *WEEK, "--yes")
    assert again.exit_code == 1 and "was sent at" in again.output and "pass --again" in again.output
    forced = run(world, "send", "weekly", *WEEK, "--yes", "--again")
    assert forced.exit_code == 0 and "edition 2: 4 accepted" in forced.output
    assert len(outbox(world)) == 8


def test_dry_run_and_test_copy_record_nothing(world):
    dry = run(world, "send", "weekly", *WEEK, "--dry-run")
    assert dry.exit_code == 0 and "to 4 subscribers of weekly" in dry.output and "Dry run" in dry.output
    test_copy = run(world, "send", "weekly", *WEEK, "--to", "editor@example.org")
    assert test_copy.exit_code == 0 and "Sent a test copy" in test_copy.output
    files = list((world.folder / ".." / "demo" / "outbox").resolve().glob("weekly-test-*/*.eml"))
    assert len(files) == 1 and b"editor@example.org" in files[0].read_bytes()
    assert world.db.ledger.history() == []
    bad = run(world, "send", "weekly", *WEEK, "--to", "not an address")
    assert bad.exit_code == 2 and "--to 'not an address' is not a valid address" in bad.output   # a usage error


def test_outbox_that_cannot_be_written_waits_and_a_later_unsubscribe_is_honoured(world):
    blocker = (world.folder / ".." / "demo" / "outbox").resolve()
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_text("a file where the folder should be")
    failed = run(world, "send", "weekly", *WEEK, "--yes")
    assert failed.exit_code == 1 and "check [sending.outbox].dir" in failed.output
    ledger = world.db.ledger
    assert ledger.counts(1) == {"pending": 4}
    world.db.lists.suppress("reader00002@example.org", "weekly", Reason.UNSUBSCRIBED, "", datetime.now(UTC))
    blocker.unlink()
    resumed = run(world, "send", "weekly", *WEEK, "--yes")
    assert "3 accepted, 0 failed, 1 suppressed" in resumed.output
    assert len(outbox(world)) == 3


def test_subscribers_commands(world, tmp_path):
    run(world, "subscribers", "list", "weekly", "--sync")
    added = run(world, "subscribers", "add", "weekly", "New@Example.ORG", "--name", "New One")
    assert added.output == "weekly: added New@example.org\n"
    assert run(world, "subscribers", "add", "weekly", "nope").exit_code == 2
    removed = run(world, "subscribers", "remove", "weekly", "reader00001@example.org")
    assert removed.output == "weekly: removed reader00001@example.org\n"
    extra = tmp_path / "more.csv"
    extra.write_text("email,name\nx@example.org,X\nbroken,Y\n", encoding="utf-8")
    imported = run(world, "subscribers", "import", "weekly", str(extra))
    assert "weekly: 1 added, 0 updated, 1 rows skipped" in imported.output
    assert "more.csv line 3: 'broken' is not a valid address" in imported.output
    exported = run(world, "subscribers", "export", "weekly").output.splitlines()
    assert exported[0] == "email,name" and "New@example.org,New One" in exported
    assert not any(line.startswith("reader00001@") for line in exported) and "x@example.org,X" in exported
    listing = run(world, "subscribers", "list", "weekly").output
    assert "reader00001@example.org\tReader 00001\tremoved\tfile" in listing
    sent = run(world, "send", "weekly", *WEEK, "--yes")
    assert "5 accepted" in sent.output          # 4 from the file - 1 removed + new + imported


def test_missing_secret_outside_dev_mode(world, monkeypatch):
    text = world.config_path.read_text().replace("insecure_dev_mode = true", "insecure_dev_mode = false")
    world.config_path.write_text(text)
    monkeypatch.delenv("DIGEST_SECRET_KEY", raising=False)
    result = run(world, "send", "weekly", *WEEK, "--yes")
    assert result.exit_code == 2 and "Error: DIGEST_SECRET_KEY is not set; export a long random secret" in result.output
