"""List sync cost: a first import, an unchanged file, and a file with one line added.

Each measurement runs in a child process (its peak RSS is its own) against one database:
a fresh SQLite file, or the PostgreSQL database given with --db (its tables are dropped
and made again first). The list file has N rows of realistic addresses over a few
hundred domains. Targets (issue 14): 1,000,000 rows imported in <= 60 s, re-synced after
a one-line change in <= 15 s, unchanged in <= 2 s, peak RSS <= 150 MB.

With --cli, the command an editor runs instead: `digest subscribers list weekly --sync`,
a process of its own printing every row (to a file), on an unchanged file and after one
line added (issue 25: 200,000 rows, at most 3 s each; its cost follows the change).

    python bench/sync.py [--rows 1000000] [--db postgresql+psycopg://127.0.0.1/test]
    python bench/sync.py --cli --rows 200000
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DOMAINS = [f"mail{n}.example.org" for n in range(300)] + ["gmail.com", "yahoo.co.uk", "bücher.de", "outlook.com"]


def write_list(path: Path, rows: int, seed: int = 7) -> None:
    chance = random.Random(seed)
    with path.open("w", encoding="utf-8", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["email", "name", "city"])
        for n in range(rows):
            domain = DOMAINS[0 if n % 3 else chance.randrange(len(DOMAINS))] if n % 7 else chance.choice(DOMAINS)
            out.writerow([f"reader.{n:07d}@{domain}", f"Reader {n}", chance.choice(["Leeds", "Hull", "Bath"])])


def child(url: str, path: str, fresh: bool) -> None:
    import sqlalchemy as sa

    from digest.db import Database
    from digest.db.tables import metadata
    from digest.send.subscribers import sync
    database = Database.open(url, upgrade=False)
    if fresh and not url.startswith("sqlite"):
        metadata.drop_all(database.engine)
        with database.engine.begin() as connection:
            connection.execute(sa.text("DROP TABLE IF EXISTS alembic_version"))
    database.upgrade()
    started = time.perf_counter()
    result = sync(database.lists, "weekly", Path(path), datetime.now(UTC), allow_retire=True)
    elapsed = time.perf_counter() - started
    members = database.lists.count("weekly")
    database.close()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": elapsed, "peak_mb": peak, "added": result.added, "updated": result.updated,
                      "retired": result.retired, "members": members, "problems": len(result.problems)}))


def run_child(url: str, path: Path, fresh: bool = False) -> dict:
    command = [sys.executable, __file__, "--child", url, str(path), "1" if fresh else "0"]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return json.loads(output.strip().splitlines()[-1])


CONFIG = """[site]
title = "Bench"
url = "https://example.blogspot.com"
[database]
url = "{url}"
[[sources]]
name = "bench"
url = "https://example.blogspot.com"
[email]
templates = "{templates}"
[[lists]]
name = "weekly"
file = "weekly.csv"
[sending]
backend = "outbox"
from = "Bench <digest@example.org>"
[web]
base_url = "http://localhost:8000"
insecure_dev_mode = true
"""


def listed(folder: Path) -> tuple[float, int]:
    """`digest subscribers list weekly --sync` end to end: seconds and rows printed."""
    command = [str(Path(sys.executable).with_name("digest")), "--config", str(folder / "config.toml"),
               "subscribers", "list", "weekly", "--sync", "--allow-retire"]
    started = time.perf_counter()
    with (folder / "listed.txt").open("w") as out:
        subprocess.run(command, stdout=out, stderr=subprocess.DEVNULL, check=True)
    elapsed = time.perf_counter() - started
    with (folder / "listed.txt").open("rb") as printed:
        return elapsed, sum(1 for _ in printed)


def cli(rows: int, url: str | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        url = url or f"sqlite:///{folder / 'bench.db'}"
        (folder / "config.toml").write_text(CONFIG.format(url=url, templates=ROOT / "templates"), encoding="utf-8")
        write_list(folder / "weekly.csv", rows)
        if not url.startswith("sqlite"):
            run_child(url, folder / "weekly.csv", fresh=True)
        first = listed(folder)
        print(f"subscribers list --sync, {rows:,} rows ({url.split(':')[0]}): first import {first[0]:.2f} s")
        for label in ("unchanged file", "one line added", "unchanged file", "one line added"):
            if label == "one line added":
                with (folder / "weekly.csv").open("a", encoding="utf-8") as handle:
                    handle.write(f"added.{time.monotonic_ns()}@example.net,One More,York\n")
            seconds, printed = listed(folder)
            print(f"  {label:15} {seconds:5.2f} s, {printed:,} rows printed (target 3 s)  "
                  f"{'ok' if seconds <= 3 else 'OVER'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--db", help="database URL (default: a fresh SQLite file)")
    parser.add_argument("--cli", action="store_true", help="time `digest subscribers list --sync` instead")
    args = parser.parse_args()
    if args.cli:
        cli(args.rows, args.db)
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        url = args.db or f"sqlite:///{folder / 'bench.db'}"
        path = folder / "weekly.csv"
        started = time.perf_counter()
        write_list(path, args.rows)
        print(f"list file: {args.rows:,} rows, {path.stat().st_size / 1e6:.0f} MB, written in "
              f"{time.perf_counter() - started:.1f} s; database: {url.split(':')[0]}")
        figures = [("first import", run_child(url, path, fresh=True), 60),
                   ("unchanged file", run_child(url, path), 2)]
        with path.open("a", encoding="utf-8") as handle:
            handle.write("one.more.reader@example.net,One More,York\n")
        figures.append(("one line added", run_child(url, path), 15))
        for label, found, target in figures:
            verdict = "ok" if found["seconds"] <= target and found["peak_mb"] <= 150 else "OVER"
            print(f"{label:15} {found['seconds']:7.2f} s (target {target} s)  peak RSS {found['peak_mb']:4.0f} MB  "
                  f"added {found['added']:,}, updated {found['updated']:,}, retired {found['retired']:,}, "
                  f"members {found['members']:,}  {verdict}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3], sys.argv[4] == "1")
    else:
        main()
