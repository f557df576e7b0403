"""Ingest speed: fetch + parse + thread + store, against bare feedparser.parse.

Builds a generated Blogger blog, serves it on loopback from a process of its own (the
server's work is not ingest's), ingests it into a fresh SQLite database, then parses the
very same feed bytes with feedparser.parse alone (the floor). The two alternate, best of
--repeat each, so a noisy machine slows both alike. Prints comments per second for both
and the ratio (target: ingest <= 1.3x feedparser).

    python bench/ingest.py [--posts 300] [--comments 6000] [--repeat 3] [--db URL]
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import feedparser
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from digest import config  # noqa: E402
from digest.db import Database  # noqa: E402
from digest.db.tables import metadata  # noqa: E402
from digest.read.ingest import ingest  # noqa: E402
from tests.support.blog import Blog, generated  # noqa: E402
from tests.support.feedserver import FeedServer  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=300)
    parser.add_argument("--comments", type=int, default=6000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--db", help="database URL (default: a fresh SQLite file)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        builder = FeedServer()                       # only for its port: the feeds name it
        blog = Blog(builder, folder / "blog", generated(args.posts, args.comments))
        comments = len(blog.all_comments())
        feed_bytes = sum((folder / "blog" / "feeds" / name).stat().st_size for name in set(builder.urls.values()))
        print(f"blog: {args.posts} posts, {comments} comments, {feed_bytes / 1e6:.1f} MB of feeds")
        with _served(builder, folder) as log:
            times, floors = [], []
            for number in range(args.repeat):
                log.write_text("")
                times.append(_ingest_once(blog, folder, args.db, number))
                fetched = [folder / "blog" / "feeds" / builder.urls[path]
                           for status, path in (line.split(" ", 1) for line in log.read_text().splitlines())
                           if status == "200" and path in builder.urls]
                floors.append(_feedparser_once(fetched))
        ours, floor = min(times), min(floors)
    print(f"ingest (fetch+parse+thread+store): {ours:.2f} s  {comments / ours:,.0f} comments/s")
    print(f"feedparser.parse on the same {len(fetched)} pages: {floor:.2f} s  {comments / floor:,.0f} comments/s")
    print(f"ratio ingest / feedparser: {ours / floor:.2f}x (target <= 1.3x)")


@contextmanager
def _served(builder: FeedServer, folder: Path) -> Iterator[Path]:
    port = builder.httpd.server_address[1]
    builder.httpd.server_close()
    log = folder / "requests.log"
    log.write_text("")
    server = subprocess.Popen([sys.executable, "-m", "tests.support.feedserver", str(folder / "blog" / "feeds"),
                               str(port), str(log)], cwd=ROOT)
    try:
        _wait_for(port)
        yield log
    finally:
        server.terminate()
        server.wait()


def _wait_for(port: int) -> None:
    for _ in range(200):
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise SystemExit("the feed server did not start")


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
