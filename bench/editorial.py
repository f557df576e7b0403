"""Editorial quality: the edition of 25-31 October 2017 against an editor's labels.

Loads the bundled On Probation sample (examples/, read offline) into a fresh SQLite
database, builds the weekly edition for [2017-10-25, 2017-11-01) with no editor's picks,
reads it as `preview --format json` does (digest.write.edition.as_json), and compares what is
shown with the labels in tests/data/editorial/ (written by judgement, before tuning):

    threads recall    labelled best threads shown / labelled best threads
    comments recall   labelled best comments shown / labelled best comments
    precision         shown comments labelled best / comments shown
    must-not shown    comments labelled must_not that were shown

plus the editor's real picks (Pick of the Week 28) shown on "Napo Responds To
Panorama", and whether the comment of the week is a labelled best comment and one of
the editor's picks. The comment of the week counts as shown on its post.

Then, leave one post out: for each labelled post, the weights are tuned (digest.pick.tune's
search, as `digest tune` does) on the other labelled posts, their best comments as pins
and their must-not comments as excludes, and measured on the post left out; beside that,
the shipped weights and the weights tuned on every post (in sample) measured on the same
post. The shipped weights should do at least as well out of sample as tuned ones.

    .venv/bin/python bench/editorial.py [--shown] [--json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from digest import config  # noqa: E402
from digest.db import Database  # noqa: E402
from digest.models import Picks  # noqa: E402
from digest.pick.tune import Agreement, Case, agreement, search  # noqa: E402
from digest.read.ingest import ingest  # noqa: E402
from digest.write.edition import as_json, build, period  # noqa: E402
from digest.write.render import Renderer  # noqa: E402

LABELS = ROOT / "tests" / "data" / "editorial"
WEEK = (date(2017, 10, 25), date(2017, 11, 1))
FETCHED = datetime(2017, 11, 1, 9, tzinfo=UTC)      # as tests/support/world.py


def edition_json() -> dict[str, Any]:
    """The edition of WEEK as `preview weekly --format json` would print it, from a fresh database."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "examples"
        shutil.copytree(ROOT / "examples", folder)
        settings = config.load(folder / "config.toml")
        db = Database.open(settings.database_url())
        try:
            report = ingest(settings.sources[0], settings.fetch, db, settings.root, FETCHED)
            if report.error is not None:
                raise SystemExit(f"Error: reading the sample failed: {report.error}")
            weekly = settings.lists[0]
            since, until = period(weekly, FETCHED, *WEEK)
            write = settings.write_settings()
            built = build(write, db, Renderer(write), weekly, since, until, Picks())
            return as_json(built)
        finally:
            db.close()


def shown_comments(thread: dict[str, Any]) -> list[str]:
    """Keys of every comment shown in a thread: any nested dict that is a comment (an id,
    an author and a text), so that comments shown as context or as responses count too."""
    found: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            if {"id", "author", "text"} <= value.keys() and value["id"] not in found:
                found.append(str(value["id"]))
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)
    walk(thread)
    return found


def shown_by_post(data: dict[str, Any]) -> tuple[dict[str, list[str]], dict[str, list[str]], str | None]:
    """(post key -> top comments of shown threads, post key -> shown comments, star key)."""
    tops: dict[str, list[str]] = {}
    comments: dict[str, list[str]] = {}
    threads = [(post["id"], thread) for post in data["posts"] for thread in post.get("threads", [])]
    star = data.get("comment_of_the_week")
    star_key = None
    if star:
        threads.insert(0, (star["post"]["id"], star))
        star_key = str(star["comment"]["id"])
    for post_key, thread in threads:
        tops.setdefault(post_key, []).append(str(thread["comment"]["id"]))
        keys = comments.setdefault(post_key, [])
        keys += [k for k in shown_comments(thread) if k not in keys]
    return tops, comments, star_key


def ratio(part: int, whole: int) -> str:
    return f"{part}/{whole} {part / whole:4.0%}" if whole else f"{part}/{whole}   -"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the figures as JSON too")
    parser.add_argument("--shown", action="store_true", help="list every shown comment with its label")
    args = parser.parse_args()
    labels = json.loads((LABELS / "labels.json").read_text(encoding="utf-8"))
    picks = json.loads((LABELS / "editor_picks.json").read_text(encoding="utf-8"))

    started = time.perf_counter()
    data = edition_json()
    elapsed = time.perf_counter() - started
    tops, shown, star_key = shown_by_post(data)
    in_edition = {post["id"] for post in data["posts"]} | ({data["comment_of_the_week"]["post"]["id"]}
                                                           if data.get("comment_of_the_week") else set())

    head = f"{'post':<30} {'threads rec.':>12} {'comments rec.':>13} {'precision':>12} {'shown':>5} {'must-not':>8}"
    print(f"Edition {data['since'][:10]} .. {data['until'][:10]} (until exclusive), built in {elapsed:.1f} s; "
          "labels: tests/data/editorial/")
    print(head)
    print("-" * len(head))
    total = {"best_threads": 0, "threads_hit": 0, "best": 0, "best_hit": 0, "shown": 0, "must_not": 0}
    figures: dict[str, Any] = {"posts": {}}
    outside = []
    for post in labels["posts"]:
        key = post["post_key"]
        if key not in in_edition:
            outside.append(post["title"])
            continue
        best_threads = {t["thread_key"] for t in post["threads"] if t["label"] == "best"}
        best = {c["comment_key"] for c in post["comments"] if c["label"] == "best"}
        must_not = {c["comment_key"] for c in post["comments"] if c["label"] == "must_not"}
        here, threads_here = shown.get(key, []), tops.get(key, [])
        row = {"best_threads": len(best_threads), "threads_hit": len(best_threads & set(threads_here)),
               "best": len(best), "best_hit": len(best & set(here)), "shown": len(here),
               "must_not": len(must_not & set(here))}
        for name in total:
            total[name] += row[name]
        figures["posts"][post["title"]] = row
        print(f"{post['title'][:30]:<30} {ratio(row['threads_hit'], row['best_threads']):>12} "
              f"{ratio(row['best_hit'], row['best']):>13} {ratio(row['best_hit'], row['shown']):>12} "
              f"{row['shown']:>5} {row['must_not']:>8}")
    unlabelled = [p["title"] for p in data["posts"] if p["id"] not in {x["post_key"] for x in labels["posts"]}
                  and shown.get(p["id"])]
    print("-" * len(head))
    print(f"{'total':<30} {ratio(total['threads_hit'], total['best_threads']):>12} "
          f"{ratio(total['best_hit'], total['best']):>13} {ratio(total['best_hit'], total['shown']):>12} "
          f"{total['shown']:>5} {total['must_not']:>8}")
    figures["total"] = total
    if outside:
        print(f"(labelled but not in this edition: {', '.join(outside)})")
    if unlabelled:
        print(f"(shown with comments but not labelled: {', '.join(unlabelled)})")

    napo = picks["napo_post"]
    napo_picks = napo["picks"]
    napo_shown = shown.get(napo["post_key"], [])
    hit = [k for k in napo_picks if k in napo_shown]
    missed = [k for k in napo_picks if k not in napo_shown]
    print()
    print(f"Editor's picks shown on \"{napo['title']}\": {len(hit)}/{len(napo_picks)}, "
          f"with {len(napo_shown)} comments shown there")
    words = {c["comment_key"]: c["opening"] for p in labels["posts"] for c in p["comments"]}
    for key in napo_picks:
        mark = "shown " if key in napo_shown else "MISSED"
        star = " (editor's star)" if key == picks["pick_of_the_week"]["star"]["comment_key"] else ""
        print(f"  {mark} {key}{star}  {words.get(key, '')[:60]}")
    promoted = picks["promoted_next_day"]["comment"]["comment_key"]
    promoted_post = picks["promoted_next_day"]["comment"]["post_key"]
    print(f"Reply promoted on 31 October ({promoted}): "
          f"{'shown' if promoted in shown.get(promoted_post, []) else 'not shown'}")

    all_best = {c["comment_key"] for p in labels["posts"] for c in p["comments"] if c["label"] == "best"}
    all_picks = {p["comment_key"] for p in picks["pick_of_the_week"]["picks"]}
    editor_star = picks["pick_of_the_week"]["star"]["comment_key"]
    print()
    if star_key is None:
        print("Comment of the week: none")
    else:
        print(f"Comment of the week: {star_key}  {words.get(star_key, '')[:60]}")
        print(f"  a labelled best comment: {'yes' if star_key in all_best else 'no'}; "
              f"one of the editor's picks: {'yes' if star_key in all_picks | {editor_star} else 'no'}; "
              f"the editor's star: {'yes' if star_key == editor_star else 'no'}")
    figures.update({"napo_picks_shown": len(hit), "napo_picks": len(napo_picks),
                    "napo_comments_shown": len(napo_shown), "napo_picks_missed": missed,
                    "promoted_shown": promoted in shown.get(promoted_post, []),
                    "comment_of_the_week": star_key, "cotw_best": star_key in all_best,
                    "cotw_editor_pick": star_key in all_picks | {editor_star},
                    "cotw_editor_star": star_key == editor_star})
    if args.shown:
        print()
        print("Shown comments and their labels:")
        label = {c["comment_key"]: c["label"] for p in labels["posts"] for c in p["comments"]}
        for post in labels["posts"]:
            for key in shown.get(post["post_key"], []):
                print(f"  {post['title'][:26]:<26} {key} {label.get(key, '?'):<8} {words.get(key, '')[:50]}")
    figures["leave_one_out"] = leave_one_out(labels)
    if args.json:
        print(json.dumps(figures, indent=1))


def post_cases(labels: dict[str, Any]) -> tuple[dict[str, Case], Any]:
    """Each labelled post as a tuning case: its own discussion over the days of its
    comments, its best comments pinned and its must-not comments excluded."""
    from digest.db.history import PastEdition
    cases: dict[str, Case] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "examples"
        shutil.copytree(ROOT / "examples", folder)
        settings = config.load(folder / "config.toml")
        with Database.open(settings.database_url()) as db:
            ingest(settings.sources[0], settings.fetch, db, settings.root, FETCHED)
            every = {d.post.key: d for d in db.content.discussions(datetime(2000, 1, 1, tzinfo=UTC), FETCHED)}
    for post in labels["posts"]:
        found = every[post["post_key"]]
        times = [c.published for c in found.comments] or [found.post.published]
        since, until = min(times) - timedelta(seconds=1), max(times) + timedelta(seconds=1)
        best = frozenset(c["comment_key"] for c in post["comments"] if c["label"] == "best")
        must_not = frozenset(c["comment_key"] for c in post["comments"] if c["label"] == "must_not")
        cases[post["title"]] = (PastEdition(0, since, until, best, must_not), [found])
    return cases, settings.selection


def leave_one_out(labels: dict[str, Any]) -> dict[str, Any]:
    """Agreement (best shown, must-not hidden) on each post: shipped weights, weights tuned
    on the other posts (out of sample), weights tuned on all (in sample)."""
    cases, shipped = post_cases(labels)
    everything, _ = search(list(cases.values()), shipped, UTC)
    print()
    print("Leave one post out: agreement on the post (best comments shown + must-not hidden)")
    head = f"{'post left out':<30} {'shipped':>9} {'tuned on others':>16} {'tuned on all':>13}"
    print(head)
    print("-" * len(head))
    rows: dict[str, Any] = {}
    sums = [Agreement(), Agreement(), Agreement()]
    for title, case in cases.items():
        others, _ = search([c for t, c in cases.items() if t != title], shipped, UTC)
        found = [agreement([case], knobs, UTC) for knobs in (shipped, others, everything)]
        sums = [a + b for a, b in zip(sums, found, strict=True)]
        rows[title] = [_agreed(a) for a in found]
        print(f"{title[:30]:<30} {_agreed(found[0]):>9} {_agreed(found[1]):>16} {_agreed(found[2]):>13}")
    print("-" * len(head))
    print(f"{'total':<30} {_agreed(sums[0]):>9} {_agreed(sums[1]):>16} {_agreed(sums[2]):>13}")
    out_of_sample = {"shipped": sums[0].share, "tuned_on_others": sums[1].share, "tuned_on_all": sums[2].share}
    better = "the shipped weights" if sums[0].share >= sums[1].share else "weights tuned on the others"
    print(f"Out of sample, {better} do best ({sums[0].share:.0%} shipped, {sums[1].share:.0%} tuned on the "
          f"other posts; {sums[2].share:.0%} in sample, tuned on all).")
    return {"posts": rows, "share": out_of_sample}


def _agreed(found: Agreement) -> str:
    agreed = found.pinned_shown + found.excluded_hidden
    whole = found.pinned + found.excluded
    return f"{agreed}/{whole} {agreed / whole:4.0%}" if whole else "-"


if __name__ == "__main__":
    main()
