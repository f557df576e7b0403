"""List sync cost: a first import, an unchanged file, and a file with one line added.

Each measurement runs in a child process (its peak RSS is its own) against one database:
a fresh SQLite file, or the PostgreSQL database given with --db (its tables are dropped
and made again first). The list file has N rows of realistic addresses over a few
hundred domains. Targets (issue 14): 1,000,000 rows imported in <= 60 s, re-synced after
a one-line change in <= 15 s, unchanged in <= 2 s, peak RSS <= 150 MB.

    python bench/sync.py [--rows 1000000] [--db postgresql+psycopg://127.0.0.1/test]
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--db", help="database URL (default: a fresh SQLite file)")
    args = parser.parse_args()
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
