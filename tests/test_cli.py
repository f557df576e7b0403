"""The command line, run through click's runner and as a real process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from digest.cli import cli

from .support.blog import Blog
from .support.feedserver import Fault
from .support.processes import run_digest

ROOT = Path(__file__).resolve().parent.parent


def write_config(tmp_path: Path, *urls: str, extra: str = "") -> Path:
    sources = "".join(f'[[sources]]\nname = "s{i}"\nurl = "{u}"\nbackfill_days = 0\n\n' for i, u in enumerate(urls))
    path = tmp_path / "config.toml"
    path.write_text(f'[database]\nurl = "sqlite:///digest.db"\n[fetch]\nretries = 0\n\n{sources}{extra}',
                    encoding="utf-8")
    return path


def invoke(*args: str) -> object:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [prefix]
    for name, command in group.commands.items():
        found.extend(_commands(command, prefix + (name,)) if isinstance(command, click.Group) else [prefix + (name,)])
    return found


@pytest.mark.parametrize("path", _commands(cli))
def test_every_command_has_help(path):
    result = invoke(*path, "--help")
    assert result.exit_code == 0
    command = cli
    for name in path:
        command = command.commands[name]
    assert command.help and command.help.strip(), f"{path} has no help text"
    assert "Usage:" in result.output


def test_fetch_prints_one_summary_line_per_source(blog: Blog, tmp_path):
    path = write_config(tmp_path, blog.posts_url)
    result = invoke("--config", str(path), "fetch")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "s0: posts 9 new, 0 updated; comments 74 new, 0 updated; 4 requests, 0 not modified"
    again = invoke("--config", str(path), "fetch")
    assert "posts 0 new" in again.output and "2 not modified" in again.output


def test_one_failing_source_exits_1_and_the_others_are_stored(blog: Blog, tmp_path):
    path = write_config(tmp_path, blog.server.base_url + "/missing/feed", blog.posts_url)
    result = CliRunner().invoke(cli, ["--config", str(path), "fetch"])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert lines[0].startswith("s0: FAILED: http://127.0.0.1:") and "HTTP 404" in lines[0]
    assert lines[1].startswith("s1: posts 9 new")
    listing = invoke("--config", str(path), "sources")
    assert "s1: 9 posts, 74 comments (36 replies, 2 removed)" in listing.output
    assert "s0: 0 posts" in listing.output and "FAILED" in listing.output


def test_fetch_of_named_sources_only(blog: Blog, tmp_path):
    path = write_config(tmp_path, blog.server.base_url + "/missing/feed", blog.posts_url)
    result = invoke("--config", str(path), "fetch", "s1")
    assert result.exit_code == 0 and result.output.startswith("s1:")


def test_unknown_source_is_a_usage_error(tmp_path):
    path = write_config(tmp_path, "https://example.org/feed")
    result = CliRunner().invoke(cli, ["--config", str(path), "fetch", "nope"])
    assert result.exit_code == 2
    assert "Error: unknown source 'nope'; choose from: s0" in result.output


def test_bad_config_gives_every_error_and_exit_2(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('[[sources]]\nname = "a"\nurl = "htp://x"\n[sending]\nbackend = "fax"\n', encoding="utf-8")
    result = run_digest(["--config", str(path), "fetch"],
                            capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 2
    assert "Error: bad.toml [[sources]][0].url: not a URL" in result.stderr
    assert "Error: bad.toml [sending].backend: must be" in result.stderr
    assert "Traceback" not in result.stderr


def test_database_that_cannot_be_opened_is_one_line(tmp_path):
    path = write_config(tmp_path, "https://example.org/feed")
    path.write_text(path.read_text().replace("sqlite:///digest.db", "postgresql+psycopg://nobody@127.0.0.1:1/x"))
    result = CliRunner().invoke(cli, ["--config", str(path), "fetch"])
    assert result.exit_code == 1
    assert result.output.startswith("Error: cannot open database postgresql+psycopg://nobody@127.0.0.1:1/x")
    assert len(result.output.strip().splitlines()) == 1


def test_second_fetch_while_one_runs_is_refused(blog: Blog, tmp_path):
    from digest import config
    from digest.db import Database
    path = write_config(tmp_path, blog.posts_url)
    db = Database.open(config.load(path).database_url())
    with db.locks.hold("fetch"):
        result = CliRunner().invoke(cli, ["--config", str(path), "fetch"])
    db.close()
    assert result.exit_code == 1
    assert "Error: fetch is already running" in result.output
    assert blog.server.requests == []


def test_demo_config_reads_the_bundled_sample_offline(tmp_path):
    demo = tmp_path / "examples"
    subprocess.run(["cp", "-r", str(ROOT / "examples"), str(demo)], check=True)
    result = invoke("--config", str(demo / "config.toml"), "fetch")
    assert result.exit_code == 0, result.output
    assert "posts 9 new, 0 updated; comments 74 new" in result.output
    again = invoke("--config", str(demo / "config.toml"), "fetch")
    assert "posts 0 new" in again.output and "comments 0 new" in again.output and "2 not modified" in again.output


def test_version():
    assert invoke("--version").output.startswith("digest, version ")


def test_debug_shows_the_traceback(tmp_path):
    result = CliRunner().invoke(cli, ["--debug", "--config", str(tmp_path / "none.toml"), "fetch"])
    assert result.exception is not None and type(result.exception).__name__ == "ConfigError"


def test_server_error_exits_1_with_the_reason(blog: Blog, tmp_path):
    blog.server.fail("/feeds/posts/default", Fault(status=500))
    path = write_config(tmp_path, blog.posts_url)
    result = CliRunner().invoke(cli, ["--config", str(path), "fetch"])
    assert result.exit_code == 1 and "HTTP 500 after 1 attempts" in result.output


PHASES = ("digest.db", "digest.read", "digest.pick", "digest.write", "digest.send", "digest.signals",
          "digest.live", "digest.web", "digest.schedule")


def loaded_by(code: str) -> set[str]:
    """digest's packages a fresh interpreter has imported after running code."""
    done = subprocess.run([sys.executable, "-c", f"{code}; import sys; print(' '.join(sys.modules))"],
                          capture_output=True, text=True, timeout=120, check=True)
    return {phase for phase in PHASES for name in done.stdout.split() if name == phase or name.startswith(phase + ".")}


def test_the_command_loads_only_what_its_command_runs(tmp_path):
    """`digest --help` loads no phase; a command loads its own (actions import on first use)."""
    assert loaded_by("import digest.cli") == set()
    config = tmp_path / "config.toml"
    config.write_text('[[sources]]\nname = "b"\nurl = "https://b.example.org"\n[database]\n'
                      f'url = "sqlite:///{tmp_path / "d.db"}"\n', encoding="utf-8")
    sources = loaded_by(f"from digest.cli import cli; cli.main(['--config', {str(config)!r}, 'sources'], "
                        "standalone_mode=False)")
    assert "digest.read" in sources and "digest.db" in sources
    assert not sources & {"digest.web", "digest.signals", "digest.schedule"}, sources


def test_every_action_is_named_the_same_for_mypy_and_at_run_time():
    """The actions package names each action twice: in its TYPE_CHECKING imports (what mypy
    reads) and in _FROM (what is imported at run time, with no need of the source). They
    are the same names from the same modules, and each is found."""
    import ast

    import digest.actions as actions
    tree = ast.parse(Path(actions.__file__).read_text(encoding="utf-8"))
    block = next(node for node in tree.body if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING")
    imported = {("." * node.level + (node.module or ""), alias.name) for node in block.body
                if isinstance(node, ast.ImportFrom) for alias in node.names}
    assert imported == {(module, name) for module, names in actions._FROM.items() for name in names}
    assert all(getattr(actions, name) is not None for name in actions.__all__)
