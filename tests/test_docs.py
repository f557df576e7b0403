"""The documentation: a README a newcomer finishes, pages that build strictly, and a
reference written from the code (every setting and command, with its meaning), so it
cannot drift."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from digest import config

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def hooks():
    spec = importlib.util.spec_from_file_location("digest_docs_hooks", DOCS / "hooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_setting_has_a_meaning_in_the_schema():
    rows = hooks().settings_rows()
    keys = [key for key, _, _ in rows]
    assert "sources[].url" in keys and "sending.smtp.port" in keys and "sending.from" in keys
    assert "root" not in keys and "origin" not in keys
    undocumented = [key for key, _, meaning in rows if not meaning.strip()]
    assert undocumented == [], "give these fields a docstring in digest/config.py"


def test_the_settings_page_lists_every_setting_with_its_default():
    table = hooks().settings_table()
    for key, default, _ in hooks().settings_rows():
        assert f"| `{key}` | {default} |" in table
    assert '| `site.title` | `"Digest"` | the blog\'s name' in table
    assert "| `sources[].name` | required |" in table


def test_the_commands_page_has_every_command_with_its_options():
    from digest.cli import cli
    text = hooks().commands_reference()
    for name, command in hooks().commands():
        assert f"### `{name}`" in text and (command.help or "").split("\n")[0] in text
    assert "### `digest subscribers import`" in text and "`--retry-unknown`" in text
    assert len(hooks().commands()) >= len([c for c in cli.commands.values() if not hasattr(c, "commands")])


def test_the_readme_is_short_and_names_the_two_commands():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    words = len(readme.split())
    assert words <= 1500, f"README.md has {words} words; move detail into docs/"
    assert "make demo" in readme and "make test" in readme


def test_every_page_is_in_the_nav_and_every_nav_entry_exists():
    site = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))

    def pages(entries):
        for entry in entries:
            for value in entry.values() if isinstance(entry, dict) else [entry]:
                yield from pages(value) if isinstance(value, list) else [value]

    listed = set(pages(site["nav"]))
    written = {str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md")}
    assert listed == written


def test_the_docs_build_strictly(tmp_path):
    """A broken link or anchor, or a page outside the nav, fails the build."""
    mkdocs = shutil.which("mkdocs", path=str(Path(sys.executable).parent))
    assert mkdocs, "mkdocs is in the test extras: pip install -e '.[test]'"
    done = subprocess.run([mkdocs, "build", "--strict", "--site-dir", str(tmp_path / "site")], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    built = (tmp_path / "site" / "reference" / "settings" / "index.html").read_text(encoding="utf-8")
    assert "sending.smtp.port" in built and "digest:settings" not in built
    assert re.search(r"digest subscribers add", (tmp_path / "site" / "reference" / "commands" / "index.html")
                     .read_text(encoding="utf-8"))


def test_the_checks_above_can_fail():
    """A field without a docstring is found (its meaning is empty), and the schema's own
    docstrings really are the meanings."""
    class Bare(config.Section):
        said: int = 1
        """what it is"""
        unsaid: int = 2

    assert hooks().settings_rows(Bare) == [("said", "`1`", "what it is"), ("unsaid", "`2`", "")]
    assert config.Fetch.model_fields["timeout"].description == "seconds per request"
