"""Feedback: one line per scheduled run at the default level, APScheduler's chatter only
with --debug, a quiet period said as it is, empty listings that say so, errors naming
the config file used, usage errors exiting 2, counts in good English."""

from __future__ import annotations

import logging
import signal
import subprocess
import time
from datetime import UTC, datetime

import pytest
from click.testing import CliRunner

from digest import schedule
from digest.cli import cli

from .support.processes import start_digest
from .support.world import World

WEEK = ["--since", "2017-10-25", "--until", "2017-11-01"]


@pytest.fixture
def world(make_world):
    return make_world(None, 3)


def run(config_path, *args):
    return CliRunner().invoke(cli, ["--config", str(config_path), *args])


@pytest.fixture
def default_logging():
    """Logging as the CLI sets it up without -v: WARNING at the root."""
    root, ours, theirs = logging.getLogger(), logging.getLogger("digest.schedule"), logging.getLogger("apscheduler")
    saved = root.level, ours.level, theirs.level
    root.setLevel(logging.WARNING)
    yield
    root.setLevel(saved[0])
    ours.setLevel(saved[1])
    theirs.setLevel(saved[2])


# ------------------------------------------------------------------ the scheduler

def test_one_info_line_per_scheduled_run_at_the_default_level(world, caplog, default_logging):
    schedule.STOP.clear()                       # an earlier test may have stopped a scheduler in this process
    schedule.quiet_logs(debug=False)
    outcome = schedule._run(world.settings, world.db, "weekly", datetime(2017, 11, 1, 9, tzinfo=UTC))
    lines = [r for r in caplog.records if r.name == "digest.schedule"]
    assert len(lines) == 1 and lines[0].levelno == logging.INFO
    line = lines[0].getMessage()
    assert line.startswith("weekly: period 2017-10-25 to 2017-10-31; "
                           "recipients 3, accepted 3, failed 0, unknown 0; took ")
    assert line.endswith(" s") and outcome in line
    assert logging.getLogger("apscheduler").getEffectiveLevel() == logging.WARNING
    schedule.quiet_logs(debug=True)
    assert logging.getLogger("apscheduler").getEffectiveLevel() == logging.DEBUG


def scheduler_stderr(world, *options: str) -> str:
    """`digest [options] schedule` for two seconds after it started (the desk's errands
    run every second: time for two), then SIGTERM: what it logged."""
    process = start_digest([*options, "--config", str(world.config_path), "schedule"], stderr=subprocess.PIPE,
                           stdout=subprocess.DEVNULL, text=True, stdin=subprocess.DEVNULL)
    started = process.stderr.readline()
    time.sleep(2)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    return started + stderr


def test_apscheduler_chatter_only_with_debug(world):
    verbose = scheduler_stderr(world, "-v")
    assert "Scheduler running for 1 lists" in verbose
    assert "apscheduler" not in verbose, verbose            # no per-second "Running job ..." lines
    debug = scheduler_stderr(world, "--debug")
    assert "apscheduler" in debug                            # the same run says them with --debug


# ------------------------------------------------------------------ a quiet period

def test_a_quiet_period_after_a_fetch_says_so(world):
    result = run(world.config_path, "send", "weekly", "--since", "2020-01-06", "--until", "2020-01-13", "--yes")
    assert result.exit_code == 1
    assert "Error: no new posts or comments from 2020-01-06 to 2020-01-12 (last fetch 2017-11-01 09:00 UTC); " \
           "nothing to send for this period" in result.output
    assert "fetch` first" not in result.output


def test_nothing_fetched_yet_says_fetch_first(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text('[[sources]]\nname = "s"\nurl = "feed.xml"\n[[lists]]\nname = "weekly"\nfile = "w.csv"\n'
                    '[web]\ninsecure_dev_mode = true\n', encoding="utf-8")
    (tmp_path / "w.csv").write_text("email,name\na@example.org,A\n", encoding="utf-8")
    result = run(path, "send", "weekly", *WEEK, "--yes")
    assert result.exit_code == 1
    assert "nothing fetched yet, so nothing to send from 2017-10-25 to 2017-10-31; run `digest fetch` first" \
        in result.output


# ------------------------------------------------------------------ empty listings

def test_empty_commands_say_so(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text('[[sources]]\nname = "s"\nurl = "feed.xml"\n[[lists]]\nname = "weekly"\nfile = "w.csv"\n',
                    encoding="utf-8")
    assert run(path, "sources").output == "No sources fetched yet; run `digest fetch` (1 source in mine.toml).\n"
    assert run(path, "editions").output == "No editions yet.\n"
    assert run(path, "editions", "weekly").output == "No editions yet for weekly.\n"
    assert run(path, "subscribers", "list", "weekly").output == (
        "No subscribers on weekly yet; add them to w.csv (then --sync), or `digest subscribers add weekly EMAIL`.\n")
    picks = run(path, "picks", "weekly").output.strip().splitlines()
    assert len(picks) == 1 and "no picks" in picks[0].lower()


def test_listings_with_rows_have_no_empty_line(world):
    assert "No " not in run(world.config_path, "sources").output
    assert "No " not in run(world.config_path, "subscribers", "list", "weekly", "--sync").output


# ------------------------------------------------------------------ errors and counts

def test_errors_name_the_config_file_used(tmp_path):
    path = tmp_path / "elsewhere.toml"
    path.write_text('[database]\nurl = "sqlite:///d.db"\n', encoding="utf-8")
    result = run(path, "fetch")
    assert result.exit_code == 2
    assert result.output == "Error: no [[sources]] in elsewhere.toml; add one with a name and url\n"


def test_send_to_a_bad_address_is_a_usage_error(world):
    for bad in ("not-an-address", "two@@example.org", "x@"):
        result = run(world.config_path, "send", "weekly", *WEEK, "--to", bad)
        assert result.exit_code == 2, (bad, result.output)
        assert result.output.startswith(f"Error: --to {bad!r} is not a valid address")


def test_one_subscriber_is_singular(tmp_path):
    made = World(tmp_path, f"sqlite:///{tmp_path / 'digest.db'}", 1)
    try:
        result = run(made.config_path, "send", "weekly", *WEEK, "--dry-run")
        assert result.exit_code == 0, result.output
        assert " to 1 subscriber of weekly (" in result.output
    finally:
        made.close()
