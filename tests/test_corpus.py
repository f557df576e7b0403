"""A corpus of real-world-shaped feeds, each read offline and compared with a golden file.

tests/data/corpus/<case>/ holds what a blog's server would answer, written by hand in
the shape Blogger, WordPress and other feed generators really emit: a single feed
file, or a mirror folder whose manifest.json maps each URL (path and query) to a file.
<case>/expected.json says what digest must store from it, as a careful reader of the
feed expects (not as the code happens to do it):

    kind       the kind of blog detected
    report     the fetch report: error, new posts and comments, orphans, skipped items by
               reason, warnings (exactly: no unexpected warning passes)
    posts      key, title, url, published (UTC), sorted by key
    comments   key, post_key, declared_parent (as the feed says), parent_key (as threaded:
               the top-level comment), author, published (UTC), url, text (its first 40
               characters), removed; sorted by key

Each case is read through its source url (the mirror folder or the feed file). Mirror
folders are also read as the blog serves them: the source's url is the blog's own
address and the mirror answers every request, so a case also shows what digest makes of
the bytes whatever becomes of reading folders. `pytest --regen-golden` rewrites the
expected.json files from what is stored now: review every change by hand.

huge-title's feed is written in the test (its 300,000-character title would make a
300 KB fixture): feed.template.xml and expected.json hold the placeholder @@HUGE_TITLE@@.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from digest import actions, config
from digest.db import Database
from digest.models import SourceReport
from digest.read.fetch import Fetcher, allowed_hosts_for
from digest.read.ingest import ingest
from digest.read.mirror import MirrorTransport

CORPUS = Path(__file__).resolve().parent / "data" / "corpus"
NOW = datetime(2017, 11, 1, 9, 0, tzinfo=UTC)
TEXT_CHARS = 40
PLACEHOLDER = "@@HUGE_TITLE@@"
HUGE_TITLE = ("Lorem ipsum dolor sit amet " * 11_112)[:299_999] + "!"   # 300,000 characters, one line
GENERATED = "huge-title"

# case -> its source's url, relative to the case folder ("." is the folder: a mirror)
CASES = {
    "blogger-absolute": ".",
    "blogger-relative": ".",
    "blogger-paged": ".",
    "wordpress-rss-rest": ".",
    "wordpress-atom-no-rest": ".",
    "wordpress-relative-links": ".",
    "wordpress-nested-cycle": ".",
    "rdf": "index.rdf",
    "utf16": "feed.atom",
    "latin1": "feed.xml",
    "missing-ids": "feed.xml",
    GENERATED: "feed.xml",          # written into tmp_path from feed.template.xml
}
MIRRORS = sorted(case for case, url in CASES.items() if url == ".")


def test_every_case_folder_is_listed() -> None:
    assert sorted(p.name for p in CORPUS.iterdir() if p.is_dir()) == sorted(CASES)


@pytest.mark.parametrize("case", sorted(CASES))
def test_case_is_stored_as_its_feed_says(case: str, tmp_path: Path, regen_golden: bool) -> None:
    settings, root = _source(case, tmp_path, served=False)
    with _database(settings) as db:
        report = _fetch(settings, db, root, served=False)
        got = _stored(db, settings.sources[0], report)
    golden = CORPUS / case / "expected.json"
    if regen_golden:
        golden.write_text(json.dumps(_readable(got), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    assert _readable(got) == _readable(_expected(case)), f"{case}: {report.summary()}"


@pytest.mark.parametrize("case", MIRRORS)
def test_mirror_served_as_the_blog_serves_it(case: str, tmp_path: Path) -> None:
    """The same bytes, fetched from the blog's own addresses (the source's url is the blog's
    posts feed; the mirror answers each request as the blog's server would)."""
    settings, root = _source(case, tmp_path, served=True)
    with _database(settings) as db:
        report = _fetch(settings, db, root, served=True)
        got = _stored(db, settings.sources[0], report)
    assert _readable(got) == _readable(_expected(case)), f"{case}: {report.summary()}"


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_second_fetch_changes_nothing_and_warns_of_nothing(case: str, tmp_path: Path) -> None:
    """Read as the blog serves it (mirrors) or from its file, twice: the second time finds
    nothing new, nothing changed, nothing to warn about, and stores the same."""
    served = case in MIRRORS
    settings, root = _source(case, tmp_path, served=served)
    with _database(settings) as db:
        _fetch(settings, db, root, served)
        first = _stored(db, settings.sources[0], SourceReport(case))
        again = _fetch(settings, db, root, served)
        second = _stored(db, settings.sources[0], SourceReport(case))
    assert (again.error, again.warnings) == (None, []), again.summary()
    assert (again.posts_new, again.posts_updated, again.comments_new, again.comments_updated) == (0, 0, 0, 0)
    assert _readable(second) == _readable(first)


def test_a_posts_page_that_could_not_be_read_is_read_next_time(tmp_path: Path) -> None:
    """blogger-paged with its next link on the blog's own host: page 2 is missing at the
    first fetch (kept what was read, said which), there at the second, which must read it."""
    mirror = tmp_path / "mirror"
    shutil.copytree(CORPUS / "blogger-paged", mirror)
    page_one = mirror / "posts-default.xml"
    page_one.write_text(page_one.read_text(encoding="utf-8").replace(
        "https://www.blogger.com/feeds/1900000000000000042/posts/default?start-index=3",
        "https://paged-case.blogspot.com/feeds/posts/default?start-index=3"), encoding="utf-8")
    manifest_file = mirror / "manifest.json"
    manifest = json.loads(manifest_file.read_text(encoding="utf-8"))
    page_two = "/feeds/posts/default?start-index=3&max-results=2&redirect=false"
    settings = _settings("paged", _start_url(mirror), mirror, tmp_path)
    with _database(settings) as db:
        first = _fetch(settings, db, mirror, served=True)
        assert [w for w in first.warnings if w.startswith("posts page 2 could not be read")], first.warnings
        manifest["urls"][page_two] = "posts-default-3.xml"
        manifest_file.write_text(json.dumps(manifest), encoding="utf-8")
        again = _fetch(settings, db, mirror, served=True)
        got = _stored(db, settings.sources[0], again)
    assert again.warnings == []
    assert got["posts"] == _expected("blogger-paged")["posts"]


def test_the_huge_title_is_stored_whole_and_its_edition_still_builds(tmp_path: Path) -> None:
    members = tmp_path / "members.csv"
    members.write_text("", encoding="utf-8")
    settings, root = _source(GENERATED, tmp_path, served=False,
                             lists=[{"name": "weekly", "file": str(members), "timezone": "UTC", "period": "7d"}])
    with _database(settings) as db:
        report = _fetch(settings, db, root, served=False)
        assert report.error is None, report.error
        assert HUGE_TITLE in [row.title for row in db.content.iter_posts()]
        built = actions.preview(settings, db, actions.mailing_list(settings, "weekly"),
                                datetime(2017, 10, 26, tzinfo=UTC), datetime(2017, 11, 2, tzinfo=UTC))
    html = built.edition.html
    assert built.html_bytes <= settings.email.max_html_bytes
    assert "After the import" in html and "Before the import" in html
    assert "https://oops.example.org/posts/imported-1" in html          # listed, its title cut short
    assert HUGE_TITLE not in html and HUGE_TITLE not in built.edition.text


def test_the_fixtures_are_in_the_encodings_their_names_say() -> None:
    utf16 = (CORPUS / "utf16" / "feed.atom").read_bytes()
    assert utf16.startswith(b"\xff\xfe")                              # a byte-order mark, little-endian
    assert utf16.decode("utf-16").startswith('<?xml version="1.0" encoding="UTF-16"?>')
    latin1 = (CORPUS / "latin1" / "feed.xml").read_bytes()
    assert latin1.startswith(b'<?xml version="1.0" encoding="ISO-8859-1"?>')
    assert "Crème brûlée".encode("iso-8859-1") in latin1
    with pytest.raises(UnicodeDecodeError):
        latin1.decode("utf-8")


# ------------------------------------------------------------------ helpers

def _source(case: str, tmp_path: Path, served: bool, **sections: Any) -> tuple[config.Settings, Path]:
    """Settings to read case with, and the folder its relative paths start from. served: the
    source's url is the blog's own posts feed (a mirror answers it); else the case's url."""
    folder = CORPUS / case
    if served:
        return _settings(case, _start_url(folder), folder, tmp_path, **sections), folder
    if case != GENERATED:
        return _settings(case, CASES[case], folder, tmp_path, **sections), folder
    feed = tmp_path / "feed" / CASES[case]            # huge-title: written here, not committed
    feed.parent.mkdir()
    template = (folder / "feed.template.xml").read_text(encoding="utf-8")
    feed.write_text(template.replace(PLACEHOLDER, HUGE_TITLE), encoding="utf-8")
    return _settings(case, str(feed), folder, tmp_path, **sections), folder


def _start_url(folder: Path) -> str:
    """The blog's posts feed: the first URL a mirror's manifest lists."""
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    return manifest["base_url"].rstrip("/") + next(iter(manifest["urls"]))


def _settings(case: str, url: str, root: Path, tmp_path: Path, **sections: Any) -> config.Settings:
    return config.from_dict({
        "sources": [{"name": case, "url": url, "backfill_days": 0}],
        "database": {"url": f"sqlite:///{tmp_path}/d.db"},
        "fetch": {"backoff": 0, "timeout": 5},
        **sections,
    }, root=root)


@contextmanager
def _database(settings: config.Settings) -> Iterator[Database]:
    db = Database.open(settings.database_url())
    try:
        yield db
    finally:
        db.close()


def _fetch(settings: config.Settings, db: Database, root: Path, served: bool) -> SourceReport:
    source = settings.sources[0]
    if not served:
        return ingest(source, settings.fetch, db, root, NOW)
    with Fetcher(settings.fetch, transport=MirrorTransport(root),
                 allowed_hosts=allowed_hosts_for(source.url, source.allow_hosts)) as fetcher:
        return ingest(source, settings.fetch, db, root, NOW, fetcher=fetcher)


def _stored(db: Database, source: config.Source, report: SourceReport) -> dict[str, Any]:
    """What the fetch stored, in expected.json's shape."""
    kind, _ = db.content.source_state(db.content.source_id(source.name, source.url, source.kind))
    comments = list(db.content.iter_comments())
    assert [c.key for c in comments if c.deleted] == [], "a first fetch marks nothing deleted"
    return {
        "kind": kind,
        "report": {
            "error": report.error, "posts_new": report.posts_new, "comments_new": report.comments_new,
            "orphans": report.orphans, "skipped": dict(sorted(report.skipped.items())),
            "warnings": list(report.warnings),
        },
        "posts": sorted(({"key": p.key, "title": p.title, "url": p.url, "published": p.published.isoformat()}
                         for p in db.content.iter_posts()), key=lambda p: p["key"]),
        "comments": sorted(({"key": c.key, "post_key": c.post_key, "declared_parent": c.declared_parent,
                             "parent_key": c.parent_key, "author": c.author, "published": c.published.isoformat(),
                             "url": c.url, "text": c.text[:TEXT_CHARS], "removed": c.removed}
                            for c in comments), key=lambda c: c["key"]),
    }


def _expected(case: str) -> dict[str, Any]:
    text = (CORPUS / case / "expected.json").read_text(encoding="utf-8")
    return json.loads(text.replace(PLACEHOLDER, HUGE_TITLE))


def _readable(data: dict[str, Any]) -> dict[str, Any]:
    """The huge title written as its placeholder: legible when a comparison fails, and as
    expected.json holds it."""
    return json.loads(json.dumps(data).replace(HUGE_TITLE, PLACEHOLDER))
