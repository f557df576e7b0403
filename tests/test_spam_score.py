"""Checked by a tool nobody here wrote (issue 26): Debian's SpamAssassin, its shipped rules
and local tests only (`spamassassin -L -t`), gives every mail digest sends 0 points: the
edition as a reader gets it, the confirmation, the welcome and the editor's notice. (The
hidden preheader once scored HTML_FONT_LOW_CONTRAST: its text was the background's colour.)"""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from digest.actions import send_edition
from digest.actions.notices import Notice, notify

from .conftest import _unavailable
from .support.world import World
from .test_letters import mails  # noqa: F401 - the fixture

EDITOR = "editor@onprobation-digest.org"


@pytest.fixture(scope="module")
def spamassassin() -> str:
    found = shutil.which("spamassassin")
    if found is None:
        _unavailable("Debian's spamassassin is not installed (apt-get install spamassassin; .ci/run does)")
    return str(found)


def score(spamassassin: str, message: bytes) -> tuple[float, list[str]]:
    """SpamAssassin's score and the rules that gave points (local tests only: no network)."""
    report = subprocess.run([spamassassin, "-L", "-t"], input=message, capture_output=True, timeout=120,
                            check=True).stdout.decode("utf-8", "replace")
    points = float(re.search(r"Content analysis details:\s+\((-?[\d.]+) points", report).group(1))
    rules = re.findall(r"^\s*(-?\d+\.\d)\s+([A-Z0-9_]+)\s", report, re.MULTILINE)
    return points, [f"{name} {value}" for value, name in rules if float(value) != 0]


def _outbox(world: World, pattern: str) -> Path:
    return sorted((world.folder / ".." / "demo" / "outbox").resolve().glob(pattern))[0]


def test_the_edition_scores_nothing(tmp_path, spamassassin, monkeypatch):
    monkeypatch.setenv("DIGEST_SECRET_KEY", "spam-score-secret-0123456789")
    world = World(tmp_path, f"sqlite:///{tmp_path / 'digest.db'}", 2)
    try:
        send_edition(world.settings, world.db, world.weekly, world.since, world.until)
        points, rules = score(spamassassin, _outbox(world, "weekly-*/*.eml").read_bytes())
    finally:
        world.close()
    assert points <= 0.0, rules


def test_the_confirmation_and_the_welcome_score_nothing(mails, spamassassin):  # noqa: F811
    for letter in mails:
        points, rules = score(spamassassin, letter.as_bytes())
        assert points <= 0.0, (letter["Subject"], rules)


def test_the_editors_notice_scores_nothing(tmp_path, spamassassin, monkeypatch):
    monkeypatch.setenv("DIGEST_SECRET_KEY", "spam-score-secret-0123456789")
    world = World(tmp_path, f"sqlite:///{tmp_path / 'digest.db'}", 2)
    world.data["editor"] = {"email": EDITOR}
    world.reload()
    try:
        notice = Notice("sent", "weekly", "weekly: edition 1 sent to 2 readers",
                        ["2 accepted, 0 failed, 0 suppressed"], link="http://localhost:8000/editor/")
        assert notify(world.settings, world.weekly, notice, datetime(2017, 11, 1, 7, tzinfo=UTC)) == []
        points, rules = score(spamassassin, _outbox(world, "notice-*/*.eml").read_bytes())
    finally:
        world.close()
    assert points <= 0.0, rules


def test_the_review_copy_held_for_approval_scores_nothing(tmp_path, spamassassin, monkeypatch):
    from digest import actions
    monkeypatch.setenv("DIGEST_SECRET_KEY", "spam-score-secret-0123456789")
    world = World(tmp_path, f"sqlite:///{tmp_path / 'digest.db'}", 2)
    world.data["lists"][0].update({"approval": "required", "approve_within": "24h", "on_timeout": "skip"})
    world.data["editor"] = {"email": EDITOR}
    world.reload()
    try:
        outcome = actions.scheduled_run(world.settings, world.db, "weekly", datetime(2017, 11, 1, 7, tzinfo=UTC))
        assert outcome.outcome.startswith("held for approval"), outcome
        points, rules = score(spamassassin, _outbox(world, "review-*/*.eml").read_bytes())
    finally:
        world.close()
    assert points <= 0.0, rules
