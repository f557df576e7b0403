"""A blog under test: threads.json data, built into Blogger feeds served on loopback."""

from __future__ import annotations

import copy
import json
import random
from datetime import datetime, timedelta
from pathlib import Path

from .build_blogger_feeds import build_feeds
from .feedserver import FeedServer

DATA = Path(__file__).resolve().parent.parent / "data"
ONPROBATION = DATA / "onprobation" / "threads.json"


class Blog:
    """Edit `data` (threads.json as a dict), then publish() to rebuild the served feeds."""

    def __init__(self, server: FeedServer, folder: Path, data: dict, page_size: int = 25) -> None:
        self.server, self.folder, self.data, self.page_size = server, folder, data, page_size
        self.publish()

    @property
    def posts_url(self) -> str:
        return f"{self.server.base_url}/feeds/posts/default"

    def publish(self) -> dict:
        self.folder.mkdir(parents=True, exist_ok=True)
        source = self.folder / "threads.json"
        source.write_text(json.dumps(self.data), encoding="utf-8")
        manifest = build_feeds(source, self.folder / "feeds", base_url=self.server.base_url,
                               page_size=self.page_size)
        self.server.serve(self.folder / "feeds")
        return manifest

    def post(self, title: str) -> dict:
        return next(p for p in self.data["posts"] if p["title"] == title)

    def all_comments(self) -> list[tuple[dict, dict, dict | None]]:
        """(post, comment, parent) for every comment and reply."""
        found = []
        for post in self.data["posts"]:
            for top in post.get("comments", []):
                found.append((post, top, None))
                found.extend((post, reply, top) for reply in top["replies"])
        return found


def onprobation() -> dict:
    return json.loads(ONPROBATION.read_text(encoding="utf-8"))


def stamp(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds")


def generated(posts: int, comments: int, seed: int = 7) -> dict:
    """A blog of `posts` posts over ~8 years and about `comments` comments, replies one deep."""
    rng = random.Random(seed)
    base = copy.deepcopy(onprobation())
    words = " ".join(p for post in base["posts"] for c in post["comments"] for p in c["paragraphs"]).split()
    start = datetime.fromisoformat("2010-01-04T08:00:00+00:00")
    data = {"blog": base["blog"], "posts": []}
    ids = iter(range(10**18, 10**18 + 10**7))
    for number in range(posts):
        published = start + timedelta(days=7 * number, minutes=rng.randint(0, 600))
        post = {"id": str(next(ids)), "title": f"Post number {number}",
                "path": f"/{published:%Y/%m}/post-number-{number}.html",
                "published": stamp(published), "updated": stamp(published), "author": "Jim Brown",
                "body": [" ".join(rng.choices(words, k=120)) for _ in range(3)], "comments": []}
        moment = published
        per_post = rng.randint(0, 2 * comments // posts)
        for _ in range(per_post):
            moment += timedelta(minutes=rng.randint(1, 300))
            comment = {"id": str(next(ids)), "author": "Anonymous", "published": stamp(moment),
                       "paragraphs": [" ".join(rng.choices(words, k=rng.randint(5, 150)))], "replies": []}
            if post["comments"] and rng.random() < 0.45:
                post["comments"][-1]["replies"].append(comment)
                del comment["replies"]
            else:
                post["comments"].append(comment)
        data["posts"].append(post)
    data["posts"].reverse()
    return data


def new_comment(data: dict, post: dict, text: str, when: datetime, parent: dict | None = None,
                ident: str = "999000000000000001") -> dict:
    comment = {"id": ident, "author": "Anonymous", "published": stamp(when), "paragraphs": [text]}
    if parent is None:
        post["comments"].append({**comment, "replies": []})
    else:
        parent["replies"].append(comment)
    return comment
