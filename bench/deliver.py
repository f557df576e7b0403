"""Delivery cost: subscribers to the local SendGrid stand-in, and over SMTP.

Each run is a child process: it stores the sample week, writes a list file of N
subscribers, imports it (timed apart: addresses are checked once, when first seen),
then sends the edition, which re-reads the file as every send does. Prints requests,
wall time, recipients per second and the peak RSS of the import and of the send (each
measured from where it starts: writing the list file is not counted), for 10,000 and
100,000 subscribers (SendGrid) and for the SMTP server on loopback; `--db` runs the
SendGrid sends on PostgreSQL. Targets (issue 14): 100,000 already synced in at most
8 s and 100 requests, 15 s with the first import; 1,000,000 on PostgreSQL in at most
100 s; the send's peak RSS for 1,000,000 within 1.3x of 100,000's.

    python bench/deliver.py [--sizes 10000 100000] [--smtp 10000] [--db postgresql+psycopg://...] [--phases]
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


PHASES: dict[str, float] = {}


def _time_phases() -> None:
    """--phases: a timer around each phase of a send (not the profiler, which inflates
    Python against the database and the network)."""
    import functools

    from digest.db.ledger import Ledger
    from digest.send import deliver, workers
    from digest.send.mailers.sendgrid import SendGridMailer
    places = [(Ledger, name, f"ledger: {what}") for name, what in (
        ("freeze", "freeze the edition and its ledger"), ("record", "record outcomes and `sending`"),
        ("claim", "take a batch of rows (and suppressions since the freeze)"))]
    places += [(SendGridMailer, "_post", "sendgrid: the requests (JSON, the stand-in's answer)"),
               (SendGridMailer, "_body", "sendgrid: build the personalizations"),
               (workers, "recipient", "each subscriber's values and headers"),
               (deliver, "plan", "plan: sync the list file, build the edition")]
    for owner, name, label in places:
        original = getattr(owner, name)

        @functools.wraps(original)
        def timed(*args, _original=original, _label=label, **kwargs):
            started = time.perf_counter()
            try:
                return _original(*args, **kwargs)
            finally:
                PHASES[_label] = PHASES.get(_label, 0.0) + time.perf_counter() - started
        setattr(owner, name, timed)


def child(backend: str, size: int, host: str, port: int, db: str = "") -> None:
    if os.environ.get("BENCH_PHASES"):
        _time_phases()
    from digest.actions import send_edition
    from tests.support.world import World
    with tempfile.TemporaryDirectory() as tmp:
        options = ({"sendgrid": {"host": host}} if backend == "sendgrid"
                   else {"smtp": {"host": "127.0.0.1", "port": port}})
        if db:
            _empty(db)
        world = World(Path(tmp), db or f"sqlite:///{tmp}/bench.db", size, backend=backend, **options)
        from datetime import UTC, datetime

        from digest.send.subscribers import sync
        _reset_peak()                         # the setup (writing the list file) is not counted
        started = time.perf_counter()
        sync(world.db.lists, "weekly", world.settings.path(world.weekly.file), datetime.now(UTC))
        imported, import_peak = time.perf_counter() - started, _peak_mb()
        _reset_peak()
        started = time.perf_counter()
        report = send_edition(world.settings, world.db, world.weekly, world.since, world.until)
        elapsed = time.perf_counter() - started
        world.close()
    print(json.dumps({"accepted": report.counts.get("accepted", 0), "seconds": elapsed, "peak_mb": _peak_mb(),
                      "import": imported, "import_peak_mb": import_peak, "phases": PHASES}))


def _reset_peak() -> None:
    """Start the peak RSS again from the present (Linux: clear_refs 5); elsewhere the
    peak stays the process's own since it started."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def _peak_mb() -> float:
    try:
        status = Path("/proc/self/status").read_text()
        return next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")) / 1024
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


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
    parser.add_argument("--phases", action="store_true", help="also print the seconds of each phase of a send")
    args = parser.parse_args()
    from tests.support.sendgrid_server import SendGridStandIn
    server = SendGridStandIn(keep=False)        # it counts what it accepts, keeps none of it
    env = {**os.environ, "SENDGRID_API_KEY": server.api_key, "DIGEST_SECRET_KEY": "bench-secret",
           **({"BENCH_PHASES": "1"} if args.phases else {})}
    peaks = []
    for size in args.sizes:
        before, counted = server.requests, server.counted
        result = run_child("sendgrid", size, server.host, env=env, db=args.db)
        requests, received = server.requests - before, server.counted - counted
        assert received == result["accepted"], f"the stand-in took {received:,}, the ledger says {result['accepted']:,}"
        peaks.append(result["peak_mb"])
        store = "PostgreSQL" if args.db else "SQLite"
        print(f"sendgrid {size:>9,} subscribers ({store}): {result['accepted']:,} accepted in {requests} requests, "
              f"{result['seconds']:.2f} s, {result['accepted'] / result['seconds']:,.0f} recipients/s, "
              f"peak RSS {result['peak_mb']:.0f} MB (first import of the list file: {result['import']:.2f} s, "
              f"peak RSS {result['import_peak_mb']:.0f} MB)")
        for label, seconds in sorted(result["phases"].items(), key=lambda item: -item[1]):
            print(f"    {seconds:7.2f} s  {label}")
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
