"""Delivery cost: 100,000 subscribers to the local SendGrid stand-in, and over SMTP.

Each run is a child process (so its peak RSS is its own): it stores the sample week,
writes a list file of N subscribers, imports it (timed apart: addresses are checked
once, when first seen), then sends the edition, which re-reads the file as every send
does. Prints requests, wall time,
recipients per second and peak RSS, for 10,000 and 100,000 subscribers (SendGrid) and
for the SMTP server on loopback. Targets: 100,000 recipients in at most 100 requests
and under 10 s, peak RSS under 150 MB and flat from 10,000 to 100,000.

    python bench/deliver.py [--sizes 10000 100000] [--smtp 10000]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def child(backend: str, size: int, host: str, port: int, db: str = "") -> None:
    from digest.actions import send_edition
    from tests.support.world import World
    with tempfile.TemporaryDirectory() as tmp:
        options = ({"sendgrid": {"host": host}} if backend == "sendgrid"
                   else {"smtp": {"host": "127.0.0.1", "port": port}})
        if db:
            _empty(db)
        world = World(Path(tmp), db or f"sqlite:///{tmp}/bench.db", size, backend=backend, **options)
        from datetime import UTC, datetime

        from digest.subscribers import sync
        started = time.perf_counter()
        sync(world.db.lists, "weekly", world.settings.path(world.weekly.file), datetime.now(UTC))
        imported = time.perf_counter() - started
        started = time.perf_counter()
        report = send_edition(world.settings, world.db, world.weekly, world.since, world.until)
        elapsed = time.perf_counter() - started
        world.close()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"accepted": report.counts.get("accepted", 0), "seconds": elapsed, "peak_mb": peak,
                      "import": imported}))


def _empty(url: str) -> None:
    """A PostgreSQL database given with --db starts empty (its tables dropped)."""
    import sqlalchemy as sa

    from digest.db.tables import metadata
    engine = sa.create_engine(url)
    metadata.drop_all(engine)
    with engine.begin() as connection:
        connection.execute(sa.text("DROP TABLE IF EXISTS alembic_version"))
        connection.execute(sa.text("DROP TABLE IF EXISTS apscheduler_jobs"))
    engine.dispose()


def run_child(backend: str, size: int, host: str = "", port: int = 0, env: dict | None = None, db: str = "") -> dict:
    command = [sys.executable, __file__, "--child", backend, str(size), host, str(port), db]
    output = subprocess.run(command, capture_output=True, text=True, check=True, env=env).stdout
    return json.loads(output.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--smtp", type=int, default=10_000, help="subscribers for the SMTP run (0: skip)")
    parser.add_argument("--db", default="", help="a PostgreSQL URL for the SendGrid runs (default: SQLite files)")
    args = parser.parse_args()
    from tests.support.sendgrid_server import SendGridStandIn
    server = SendGridStandIn()
    env = {**os.environ, "SENDGRID_API_KEY": server.api_key, "DIGEST_SECRET_KEY": "bench-secret"}
    peaks = []
    for size in args.sizes:
        before = server.requests
        result = run_child("sendgrid", size, server.host, env=env, db=args.db)
        requests = server.requests - before
        peaks.append(result["peak_mb"])
        store = "PostgreSQL" if args.db else "SQLite"
        print(f"sendgrid {size:>9,} subscribers ({store}): {result['accepted']:,} accepted in {requests} requests, "
              f"{result['seconds']:.2f} s, {result['accepted'] / result['seconds']:,.0f} recipients/s, "
              f"peak RSS {result['peak_mb']:.0f} MB (first import of the list file: {result['import']:.2f} s)")
    server.stop()
    if len(peaks) > 1:
        print(f"peak RSS ratio {args.sizes[-1]:,} / {args.sizes[0]:,}: {peaks[-1] / peaks[0]:.2f}")
    if args.smtp:
        from tests.support import smtp_server
        controller, recorder = smtp_server.start()
        result = run_child("smtp", args.smtp, port=controller.port, env=env)
        controller.stop()
        print(f"smtp     {args.smtp:>7,} subscribers: {result['accepted']:,} accepted "
              f"({len(recorder.messages):,} received), {result['seconds']:.2f} s, "
              f"{result['accepted'] / result['seconds']:,.0f} recipients/s, peak RSS {result['peak_mb']:.0f} MB")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5]), sys.argv[6] if len(sys.argv) > 6 else "")
    else:
        main()
