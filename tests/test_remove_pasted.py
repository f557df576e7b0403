"""`digest subscribers remove LIST EMAIL` with the address pasted as a mail client shows it
("Bob <bob@...>", "mailto:...", a trailing dot) takes the mailbox meant off the list, or
refuses; it never suppresses a key nobody has while Bob keeps getting mail (found by a
stranger's attack)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from digest.cli import cli


@pytest.fixture
def world(make_world, monkeypatch):
    monkeypatch.setenv("DIGEST_SECRET_KEY", "attack-test-secret-key-0123456789")
    return make_world(None, 0)


@pytest.mark.parametrize("typed", ["Bob <bob@myblog.org>", "mailto:bob@myblog.org", "bob@myblog.org.",
                                   "<bob@myblog.org>"])
def test_remove_either_removes_the_subscriber_or_refuses(world, typed):
    run = lambda *args: CliRunner().invoke(cli, ["--config", str(world.config_path), *args])  # noqa: E731
    assert run("subscribers", "add", "weekly", "bob@myblog.org").exit_code == 0
    answer = run("subscribers", "remove", "weekly", typed)
    still = world.db.lists.is_active("weekly", "bob@myblog.org")
    assert answer.exit_code != 0 or not still, f"{answer.output!r}, and bob is still active"
