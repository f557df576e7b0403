"""Ingest speed: fetch + parse + thread + store, against bare feedparser.parse.

Builds a generated Blogger blog, serves it on loopback, ingests it into a fresh SQLite
database, then parses the very same feed bytes with feedparser.parse alone (the floor).
Prints comments per second for both and the ratio (target: ingest <= 1.3x feedparser).

    python bench/ingest.py [--posts 300] [--comments 6000] [--repeat 3] [--db URL]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import feedparser
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from digest import config  # noqa: E402
from digest.db import Database  # noqa: E402
from digest.db.tables import metadata  # noqa: E402
from digest.ingest import ingest  # noqa: E402
from tests.support.blog import Blog, generated  # noqa: E402
from tests.support.feedserver import FeedServer  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=300)
    parser.add_argument("--comments", type=int, default=6000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--db", help="database URL (default: a fresh SQLite file)")
    args = parser.parse_args()

    server = FeedServer().start()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        blog = Blog(server, folder / "blog", generated(args.posts, args.comments))
        comments = len(blog.all_comments())
        feed_bytes = sum((folder / "blog" / "feeds" / name).stat().st_size for name in set(blog.server.urls.values()))
        print(f"blog: {args.posts} posts, {comments} comments, {feed_bytes / 1e6:.1f} MB of feeds")
        ours = min(_ingest_once(blog, folder, args.db, n) for n in range(args.repeat))
        fetched = [folder / "blog" / "feeds" / blog.server.urls[r.path] for r in blog.server.requests
                   if r.status == 200 and r.path in blog.server.urls]
        floor = min(_feedparser_once(fetched) for _ in range(args.repeat))
    server.stop()
    print(f"ingest (fetch+parse+thread+store): {ours:.2f} s  {comments / ours:,.0f} comments/s")
    print(f"feedparser.parse on the same {len(fetched)} pages: {floor:.2f} s  {comments / floor:,.0f} comments/s")
    print(f"ratio ingest / feedparser: {ours / floor:.2f}x (target <= 1.3x)")


def _ingest_once(blog: Blog, folder: Path, db: str | None, number: int) -> float:
    url = db or f"sqlite:///{folder / f'bench-{number}.db'}"
    database = Database.open(url, upgrade=False)
    if db:                                  # start from an empty schema, made by the migrations
        metadata.drop_all(database.engine)
        with database.engine.begin() as connection:
            connection.execute(sa.text("DROP TABLE IF EXISTS alembic_version"))
    database.upgrade()
    settings = config.from_dict({"sources": [{"name": "bench", "url": blog.posts_url, "backfill_days": 0}],
                                 "fetch": {"max_pages": 10_000}})
    blog.server.reset_log()
    started = time.perf_counter()
    report = ingest(settings.sources[0], settings.fetch, database, folder, datetime.now(UTC))
    elapsed = time.perf_counter() - started
    database.close()
    assert report.error is None and report.comments_new == len(blog.all_comments()), report
    return elapsed


def _feedparser_once(files: list[Path]) -> float:
    pages = [f.read_bytes() for f in files]
    started = time.perf_counter()
    for page in pages:
        feedparser.parse(page)
    return time.perf_counter() - started


if __name__ == "__main__":
    main()
