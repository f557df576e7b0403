"""`digest send` builds the edition once: what the operator is shown (subject,
recipients, size) is exactly what is frozen and sent, even if the blog changes between
the prompt and the send."""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from digest import actions, config
from digest.db import Database
from digest.models import Origin, Post
from digest.write.edition import period

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _setup(tmp_path: Path) -> tuple[config.Settings, Database]:
    shutil.copytree(EXAMPLES, tmp_path / "examples")
    settings = config.load(tmp_path / "examples" / "config.toml")
    db = Database.open(settings.database_url())
    actions.fetch(settings, db, list(settings.sources), datetime(2017, 11, 1, tzinfo=UTC))
    return settings, db


def test_the_planned_edition_is_the_one_sent(tmp_path: Path) -> None:
    settings, db = _setup(tmp_path)
    listed = actions.mailing_list(settings, "weekly")
    since, until = period(listed, datetime.now(UTC), date(2017, 10, 25), date(2017, 11, 1))
    planned = actions.plan(settings, db, listed, since, until)
    assert planned.built is not None and planned.recipients == 3
    late = Post(key="late-post", title="A post published while the operator read the prompt",
                url="https://example.org/late", published=since + timedelta(days=2), updated=since + timedelta(days=2),
                author="x", html="<p>late</p>", text="late", comments_total=0, comments_feed=None)
    db.content.save_posts(db.content.source_id("on-probation", "onprobation", "blogger"), [late])
    assert "A post published while" in actions.preview(settings, db, listed, since, until).edition.html

    report = actions.send(settings, db, planned)

    frozen = db.ledger.edition(report.edition_id)
    assert frozen.subject == planned.subject
    assert frozen.html == planned.built.edition.html
    assert "A post published while" not in frozen.html
    assert sum(report.counts.values()) == planned.recipients
    sent = sorted((tmp_path / "demo" / "outbox" / f"weekly-{report.edition_id}").glob("*.eml"))
    assert len(sent) == 3
    assert all(b"A post published while" not in path.read_bytes() for path in sent)
    db.close()


def test_a_pick_made_at_the_prompt_waits_for_the_next_edition(tmp_path: Path) -> None:
    settings, db = _setup(tmp_path)
    listed = actions.mailing_list(settings, "weekly")
    since, until = period(listed, datetime.now(UTC), date(2017, 10, 25), date(2017, 11, 1))
    early = actions.preview(settings, db, listed, since, until)
    shown = {t.top.comment.key for p in early.selection.posts for t in p.threads}
    planned = actions.plan(settings, db, listed, since, until)
    candidates = [d for d in db.content.discussions(since, until) for c in d.comments
                  if c.key not in shown and not c.parent_key]
    late_pick = next(c.key for d in candidates for c in d.comments if c.key not in shown and not c.parent_key)
    actions.pin(db, listed, late_pick, datetime.now(UTC))          # while the operator reads the prompt
    actions.add_subscriber(settings, db, listed, "late@example.org", "", Origin.CLI, datetime.now(UTC))

    report = actions.send(settings, db, planned)

    assert late_pick not in db.ledger.edition(report.edition_id).html
    assert late_pick in db.picks.waiting("weekly")                   # not used up: it goes in the next one
    assert any("sending to 4 subscribers, not the 3 shown" in p for p in report.problems)
    db.close()
