"""Delivery at real distance (issue 25): each send measured with a provider that answers
at once and with one that waits, side by side in one run, and the ratio printed.

- SendGrid stand-in, 100,000 readers, default settings: 0 ms and 250 ms a request;
- an SMTP sink (aiosmtpd), 1,000 readers, `connections = 20`: 0 ms and 50 ms a message;
- two senders on PostgreSQL, 20,000 readers, 1 s a request, `concurrency = 1` each,
  against one sender alone (everyone must get exactly one copy);
- `--million`: 1,000,000 readers on PostgreSQL, two senders, 250 ms a request: the time,
  and each process's peak RSS (with 100,000 for comparison).

Each send is a child process (the list file written and imported first, not counted).
Targets: at most 1.5x the zero-latency time for the first two; two senders together at
most 0.7x one alone.

    python bench/distance.py [--db postgresql+psycopg://postgres@127.0.0.1:5432/test] [--million]
                             [--only sendgrid|smtp|shared] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from deliver import _empty, _peak_mb, _reset_peak  # noqa: E402

WEEK = ["--since", "2017-10-25", "--until", "2017-11-01"]


def prepare(folder: str, backend: str, size: int, db: str, options: dict) -> None:
    """A world of `size` readers, its list already imported (what a weekly send finds)."""
    from datetime import UTC, datetime

    from digest.send.subscribers import sync
    from tests.support.world import World
    if db:
        _empty(db)
    world = World(Path(folder), db or f"sqlite:///{folder}/bench.db", size, backend=backend, **options)
    sync(world.db.lists, "weekly", world.settings.path(world.weekly.file), datetime.now(UTC))
    world.close()
    print(json.dumps({"config": str(Path(folder) / "examples" / "config.toml")}))


def send(config: str) -> None:
    """One `digest send` in this process, timed, with its peak RSS."""
    from click.testing import CliRunner

    from digest.cli import cli
    _reset_peak()
    started = time.perf_counter()
    result = CliRunner().invoke(cli, ["--config", config, "send", "weekly", *WEEK, "--yes"])
    elapsed = time.perf_counter() - started
    print(json.dumps({"seconds": elapsed, "peak_mb": _peak_mb(), "output": result.output.strip().splitlines()[-1:],
                      "code": result.exit_code}))


def child(*args: str, env: dict) -> dict:
    output = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, env=env)
    if output.returncode:
        raise SystemExit(f"child {args[0]} failed: {output.stderr[-3000:]}")
    return json.loads(output.stdout.strip().splitlines()[-1])


def world_of(folder: str, backend: str, size: int, db: str, options: dict, env: dict) -> str:
    return child("--prepare", folder, backend, str(size), db, json.dumps(options), env=env)["config"]


def senders(config: str, n: int, env: dict) -> list[dict]:
    """n `digest send` processes started at the same moment; their results."""
    processes = [subprocess.Popen([sys.executable, __file__, "--send", config], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, env=env) for _ in range(n)]
    found = []
    for process in processes:
        out, err = process.communicate()
        if process.returncode:
            raise SystemExit(f"a sender failed: {err[-3000:]}")
        found.append(json.loads(out.strip().splitlines()[-1]))
    return found


def sendgrid_pair(size: int, latency: float, db: str, options: dict, env: dict, n: int = 1) -> tuple[float, list]:
    from tests.support.sendgrid_server import SendGridStandIn
    server = SendGridStandIn(keep=False, latency=latency)
    try:
        with tempfile.TemporaryDirectory() as folder:
            config = world_of(folder, "sendgrid", size, db, {"sendgrid": {"host": server.host, **options}},
                              {**env, "SENDGRID_API_KEY": server.api_key})
            started = time.perf_counter()
            results = senders(config, n, {**env, "SENDGRID_API_KEY": server.api_key})
            wall = time.perf_counter() - started
        assert server.counted == size, f"the stand-in took {server.counted:,} of {size:,}"
        return wall, results
    finally:
        server.stop()


def smtp_pair(size: int, latency: float, connections: int, env: dict) -> tuple[float, int]:
    from collections import Counter

    from tests.support import smtp_server
    controller, recorder = smtp_server.start()
    recorder.delay = latency
    try:
        with tempfile.TemporaryDirectory() as folder:
            config = world_of(folder, "smtp", size, "", {"smtp": {"host": "127.0.0.1", "port": controller.port,
                                                                  "connections": connections}}, env)
            started = time.perf_counter()
            senders(config, 1, env)
            wall = time.perf_counter() - started
        received = Counter(address for r in recorder.received for address in r.rcpt_tos)
        assert len(received) == size and set(received.values()) == {1}, "everyone exactly once"
        return wall, len(received)
    finally:
        controller.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default=os.environ.get("DIGEST_TEST_PG_URL",
                                                       "postgresql+psycopg://postgres@127.0.0.1:5432/test"))
    parser.add_argument("--sendgrid", type=int, default=100_000)
    parser.add_argument("--smtp", type=int, default=1_000)
    parser.add_argument("--shared", type=int, default=20_000)
    parser.add_argument("--million", action="store_true", help="also 1,000,000 readers, two senders (PostgreSQL)")
    parser.add_argument("--only", choices=("sendgrid", "smtp", "shared"), action="append",
                        help="measure only these (repeatable; default: all)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="measure each pair this many times, alternating, and take the medians")
    args = parser.parse_args()
    env = {**os.environ, "DIGEST_TEST_REAL_SECRET": "bench-distance-7Qm2-Zx9v-Lp4k-Hs8w"}
    wanted = set(args.only or ("sendgrid", "smtp", "shared"))

    if "sendgrid" in wanted:
        near, far = paired(args.rounds, lambda latency: sendgrid_pair(args.sendgrid, latency, "", {}, env)[0], 0.25)
        print(f"sendgrid {args.sendgrid:,} readers, defaults: {near:.1f} s at 0 ms, {far:.1f} s at 250 ms a request: "
              f"{far / near:.2f}x (target at most 1.5x)")
    if "smtp" in wanted:
        near, far = paired(args.rounds, lambda latency: smtp_pair(args.smtp, latency, 20, env)[0], 0.05)
        print(f"smtp {args.smtp:,} readers, 20 connections: {near:.1f} s at 0 ms, {far:.1f} s at 50 ms a "
              f"message: {far / near:.2f}x (target at most 1.5x)")
    if "shared" in wanted:
        shared(args, env)
    if args.million:
        for size in (100_000, 1_000_000):
            wall, results = sendgrid_pair(size, 0.25, args.db, {}, env, n=2)
            peaks = ", ".join(f"{r['peak_mb']:.0f} MB" for r in results)
            print(f"{size:,} readers on PostgreSQL, two senders, 250 ms a request: {wall:.1f} s, peak RSS {peaks}")


def paired(rounds: int, measure: Callable[[float], float], latency: float) -> tuple[float, float]:
    """Median seconds with no latency and with `latency`, measured alternately."""
    near, far = [], []
    for _ in range(rounds):
        near.append(measure(0.0))
        far.append(measure(latency))
    return statistics.median(near), statistics.median(far)


def shared(args: argparse.Namespace, env: dict) -> None:
    one, _ = sendgrid_pair(args.shared, 1.0, args.db, {"concurrency": 1}, env)
    two, results = sendgrid_pair(args.shared, 1.0, args.db, {"concurrency": 1}, env, n=2)
    print(f"{args.shared:,} readers on PostgreSQL, 1 s a request, concurrency 1: one sender {one:.1f} s, two "
          f"together {two:.1f} s: {two / one:.2f}x (target at most 0.7x); each once: "
          + "; ".join(r["output"][0] for r in results))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--prepare":
        prepare(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5], json.loads(sys.argv[6]))
    elif len(sys.argv) > 1 and sys.argv[1] == "--send":
        send(sys.argv[2])
    else:
        main()
