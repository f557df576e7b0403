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
    assert [(size, accepted, requests) for size, _, accepted, requests in sent] == [("30", "30", "4"),
                                                                                    ("60", "60", "4")]
    # a small edition is still shared by the four workers ([sending.sendgrid] concurrency): 4 requests each
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


def test_bench_editorial_measures_each_post_left_out(editorial: tuple[str, dict]):
    """Tuned on three labelled posts, measured on the fourth, for each: every post is there,
    with the shipped weights, the weights tuned on the others and those tuned on all."""
    out, figures = editorial
    loo = figures["leave_one_out"]
    assert set(loo["posts"]) == {"Reaction To Panorama", "Napo Responds To Panorama", "Damning Probation Report 3",
                                 "A Fantasy World"}
    assert all(len(row) == 3 and all(re.fullmatch(r"\d+/\d+ +\d+%", cell) for cell in row)
               for row in loo["posts"].values())
    assert 0 < loo["share"]["shipped"] <= 1 and loo["share"]["shipped"] >= loo["share"]["tuned_on_others"]
    assert "Leave one post out" in out and figures["napo_picks_shown"] == 5
