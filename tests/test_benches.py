"""`make bench` keeps working: each bench runs end to end at a tiny size, on SQLite and
PostgreSQL, and says what it measured. No figure is asserted here (speed is measured by
running the benches, never in tests); what is asserted is that they count right."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def bench(*args: str) -> str:
    done = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
def test_bench_deliver_sends_to_everyone_and_times_each_phase(store: str, request: pytest.FixtureRequest) -> None:
    db = ["--db", request.getfixturevalue("pg_url")] if store == "postgres" else []
    out = bench("bench/deliver.py", "--sizes", "30", "60", "--smtp", "20" if store == "sqlite" else "0", "--phases",
                *db)
    sent = re.findall(r"sendgrid +([\d,]+) subscribers \((\w+)\): ([\d,]+) accepted in (\d+) requests", out)
    assert [(size, accepted, requests) for size, _, accepted, requests in sent] == [("30", "30", "1"),
                                                                                    ("60", "60", "1")]
    assert {name for _, name, _, _ in sent} == {"PostgreSQL" if db else "SQLite"}
    assert "ledger: record outcomes and `sending`" in out and "peak RSS ratio 60 / 30" in out
    if not db:
        assert re.search(r"smtp +20 subscribers: 20 accepted \(20 received\)", out), out


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
def test_bench_sync_imports_then_adds_one_line(store: str, request: pytest.FixtureRequest) -> None:
    db = ["--db", request.getfixturevalue("pg_url")] if store == "postgres" else []
    out = bench("bench/sync.py", "--rows", "500", *db)
    assert re.search(r"first import .*added 500, updated 0, retired 0, members 500", out), out
    assert re.search(r"unchanged file .*added 0, updated 0, retired 0, members 500", out), out
    assert re.search(r"one line added .*added 1, updated 0, retired 0, members 501", out), out
