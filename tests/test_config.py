"""Settings: read once, every problem reported together with its key path."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from digest import config
from digest.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent


def test_the_projects_own_config_files_are_valid():
    settings = config.load(ROOT / "config.toml")
    assert settings.sources[0].url.startswith("https://probationmatters.blogspot.com/")
    assert str(settings.lists[0].timezone) == "Europe/London"
    demo = config.load(ROOT / "examples" / "config.toml")
    assert demo.sources[0].backfill_days == 0
    assert demo.database_url() == f"sqlite:///{ROOT / 'examples' / '..' / 'demo' / 'digest.db'}"


def problems(data: dict) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        config.from_dict(data)
    return caught.value.problems


def test_all_errors_are_reported_together_with_key_paths():
    found = problems({
        "sources": [{"name": "ok", "url": "https://example.org/feed"},
                    {"name": "two", "url": "htp://example.org", "backfill_days": -1}],
        "sending": {"smtp": {"port": 99999}},
        "lists": [{"name": "weekly", "file": "w.csv", "timezone": "Mars/Olympus", "schedule": "every monday"}],
    })
    assert "config.toml [[sources]][1].url: not a URL (use http://, https:// or a local path)" in found
    assert any(p.startswith("config.toml [[sources]][1].backfill_days:") for p in found)
    assert any(p.startswith("config.toml [sending.smtp].port:") for p in found)
    assert any(p.startswith("config.toml [[lists]][0].timezone: unknown time zone") for p in found)
    assert any(p.startswith("config.toml [[lists]][0].schedule: not a cron line") for p in found)
    assert len(found) == 5


def test_unknown_key_suggests_the_right_one():
    found = problems({"sources": [{"name": "a", "url": "https://x.org/f", "backfil_days": 3}]})
    assert found == ["config.toml [[sources]][0].backfil_days: unknown key (did you mean 'backfill_days'?)"]


def test_missing_required_key_and_bad_choice():
    found = problems({"sources": [{"name": "a"}], "sending": {"backend": "carrier-pigeon"}})
    assert "config.toml [[sources]][0].url: missing; add it" in found
    assert any(p.startswith("config.toml [sending].backend: must be 'sendgrid', 'smtp' or 'outbox'") for p in found)


def test_duplicate_source_names_are_refused():
    found = problems({"sources": [{"name": "a", "url": "https://x.org/f"}, {"name": "a", "url": "https://y.org/f"}]})
    assert any("'a' is used twice" in p for p in found)


def test_toml_syntax_error_names_the_file_and_line(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('[site]\ntitle = "On Probation\n', encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        config.load(path)
    assert re.search(r"config.toml: not valid TOML \(.*line 2.*\); fix that line", str(caught.value))


def test_missing_file_says_how_to_fix_it(tmp_path):
    with pytest.raises(ConfigError, match="not found; create it"):
        config.load(tmp_path / "nope.toml")


def test_local_paths_are_relative_to_the_config_file(tmp_path):
    settings = config.from_dict({"database": {"url": "sqlite:///data/d.db"}}, root=tmp_path)
    assert settings.database_url() == f"sqlite:///{tmp_path / 'data' / 'd.db'}"
    assert config.from_dict({"database": {"url": "sqlite:////abs/d.db"}}).database_url() == "sqlite:////abs/d.db"


