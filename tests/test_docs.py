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


def mapped(architecture: str) -> set[str]:
    """The paths the map of the code names (`digest/read/`, `digest/read/fetch.py`), each
    line's place in the tree read from its indentation (two spaces a level)."""
    section = architecture.split("## The map of the code", 1)[1].split("\n## ", 1)[0]
    found: set[str] = set()
    parents: list[str] = []
    for line in section.splitlines():
        if not line.startswith("    ") or not line.strip():
            continue                                   # prose around the code block
        indent = len(line) - len(line.lstrip(" "))
        assert indent % 2 == 0, f"odd indentation in the map: {line!r}"
        parents[(indent - 4) // 2:] = [line.split()[0]]
        found.add("".join(parents))
    return found


def modules(package: Path) -> set[str]:
    """What the map must name: every module, a package by its folder (its __init__.py),
    and the revisions by their folder (one file per schema change)."""
    found = set()
    for path in package.rglob("*.py"):
        name = path.relative_to(package.parent).as_posix()
        if "/migrations/versions/" in name:
            name = name.split("versions/")[0] + "versions/"
        elif path.name == "__init__.py":
            name = name.removesuffix("__init__.py")
        found.add(name)
    return found


def test_the_map_of_the_code_names_every_module_and_nothing_else():
    named = mapped((DOCS / "architecture.md").read_text(encoding="utf-8"))
    there = modules(ROOT / "digest")
    assert sorted(there - named) == [], "give these a line in docs/architecture.md's map of the code"
    assert sorted(named - there) == [], "docs/architecture.md's map names these, which are gone"


def test_the_checks_above_can_fail():
    """A field without a docstring is found (its meaning is empty), the schema's own
    docstrings really are the meanings, and a module missing from the map is found."""
    class Bare(config.Section):
        said: int = 1
        """what it is"""
        unsaid: int = 2

    assert hooks().settings_rows(Bare) == [("said", "`1`", "what it is"), ("unsaid", "`2`", "")]
    assert config.Fetch.model_fields["timeout"].description == "seconds per request"
    page = ("## The map of the code\n\nprose\n\n    digest/\n      read/   x\n        fetch.py   y\n"
            "      models.py\n\n## Next\n")
    assert mapped(page) == {"digest/", "digest/read/", "digest/read/fetch.py", "digest/models.py"}
    assert "digest/read/parse.py" in modules(ROOT / "digest") - mapped(page)
