"""`digest preview`, `pin`, `exclude`, `unpick` and `picks` through the CLI runner."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from digest.cli import cli

ROOT = Path(__file__).resolve().parent.parent
WEEK = ["--since", "2017-10-25", "--until", "2017-11-01"]


def run(config: str, *args: str):
    return CliRunner().invoke(cli, ["--config", config, *args])


def preview_json(config: str) -> dict:
    result = run(config, "preview", "weekly", *WEEK, "--format", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_preview_json_has_the_contract_shape(demo):
    data = preview_json(demo)
    assert data["list"] == "weekly"
    assert data["since"] == "2017-10-25T00:00:00+01:00" and data["until"] == "2017-11-01T00:00:00+00:00"
    assert isinstance(data["html_bytes"], int) and data["html_bytes"] < 102_000
    post = next(p for p in data["posts"] if p["threads"])
    assert {"id", "title", "url", "published", "comments_total", "new_comments", "section", "threads"} <= set(post)
    thread = post["threads"][0]
    assert {"score", "score_parts", "comment", "replies", "more_replies"} <= set(thread)
    assert {"id", "author", "published", "url", "words", "text"} <= set(thread["comment"])
    assert all({"id", "author", "words", "text"} <= set(r) for r in thread["replies"])
    assert thread["score"] == pytest.approx(sum(thread["score_parts"].values()), abs=0.05)


def test_preview_html_and_text_to_stdout_and_to_a_file(demo, tmp_path):
    html_out = run(demo, "preview", "weekly", *WEEK)
    assert html_out.exit_code == 0 and html_out.output.startswith("<!DOCTYPE html>")
    assert "/unsubscribe/preview" in html_out.output
    text_out = run(demo, "preview", "weekly", *WEEK, "--format", "text")
    assert text_out.output.startswith("ON PROBATION\n")
    target = tmp_path / "out" / "edition.html"
    written = run(demo, "preview", "weekly", *WEEK, "--out", str(target))
    assert written.exit_code == 0 and target.read_text(encoding="utf-8") == html_out.output
    assert "Comment of the week: Anonymous on" in written.output


def test_why_shows_the_score_parts_in_the_html(demo):
    plain = run(demo, "preview", "weekly", *WEEK).output
    why = run(demo, "preview", "weekly", *WEEK, "--why").output
    assert "Why: score" not in plain and "Why: score" in why


def _dump(config: str) -> list[str]:
    with sqlite3.connect(Path(config).parent.parent / "demo" / "digest.db") as db:
        return list(db.iterdump())


def test_preview_records_nothing(demo):
    before = _dump(demo)
    assert any("INSERT INTO \"comments\"" in line for line in before)
    assert run(demo, "preview", "weekly", *WEEK, "--format", "json").exit_code == 0
    assert _dump(demo) == before
    run(demo, "pin", "weekly", json.loads(run(demo, "preview", "weekly", *WEEK, "--format", "json").output)
        ["posts"][1]["threads"][0]["comment"]["id"], *WEEK)       # a comment of that week: pins check the period
    assert _dump(demo) != before          # the check can see a change


def test_pin_makes_a_comment_the_star_and_exclude_hides_one(demo):
    data = preview_json(demo)
    star = data["comment_of_the_week"]["comment"]["id"]
    panorama = next(p for p in data["posts"] if p["title"] == "Reaction To Panorama")
    chosen = panorama["threads"][-1]["comment"]["id"]

    assert run(demo, "pin", "weekly", chosen, *WEEK).exit_code == 0
    assert run(demo, "exclude", "weekly", star).exit_code == 0
    assert [line.split("\t")[:2] for line in run(demo, "picks", "weekly").output.splitlines()] == \
        [["pin", chosen], ["exclude", star]]
    after = preview_json(demo)
    assert after["comment_of_the_week"]["comment"]["id"] == chosen
    assert after["comment_of_the_week"]["pinned"] is True
    shown = json.dumps(after)
    assert f'"id": "{star}"' not in shown

    assert run(demo, "unpick", "weekly").output == "weekly: 2 picks removed\n"
    assert preview_json(demo)["comment_of_the_week"]["comment"]["id"] == star


def test_pin_of_an_unknown_comment_or_list_is_a_usage_error(demo):
    result = run(demo, "pin", "weekly", "123")
    assert result.exit_code == 2 and "Error: no stored comment has id '123'" in result.output
    result = run(demo, "preview", "monthly")
    assert result.exit_code == 2 and "Error: unknown list 'monthly'; choose from: weekly" in result.output


def test_bad_dates_are_usage_errors(demo):
    result = run(demo, "preview", "weekly", "--since", "25/10/2017")
    assert result.exit_code == 2 and "--since '25/10/2017' is not a date; use YYYY-MM-DD" in result.output
    result = run(demo, "preview", "weekly", "--since", "2017-11-01", "--until", "2017-10-25")
    assert result.exit_code == 2 and "is not before --until" in result.output
