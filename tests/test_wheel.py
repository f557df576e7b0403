"""The wheel, installed for real: templates and migrations ship, the console script works.

Builds the wheel from a copy of the repository (offline, with this venv's setuptools),
installs it NON-editable into a fresh virtualenv, and runs the `digest` script there from a
folder outside the repository, with a config that names no templates folder, so only the
templates inside the wheel can be used. The dependencies come from this test venv through
a .pth line, which adds its site-packages to sys.path without running its .pth files: the
editable install of the repository (a meta path finder started by such a file) stays out.
"""

from __future__ import annotations

import email
import email.policy
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
WEEK = ["--since", "2017-10-25", "--until", "2017-11-01"]
TIMEOUT = 300
# Left out of the copy the wheel is built from: built or run-time state, never sources.
NOT_SOURCES = shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", "*.pyc",
                                     ".pytest_cache", ".mypy_cache", ".ruff_cache", "demo", "outbox")


def run(*args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=TIMEOUT, check=False)


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"{result.args} exited {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def sources(dest: Path) -> Path:
    """The repository's files as git sees them (tracked and new, less the ignored), else a filtered copy."""
    listed = run("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", cwd=ROOT)
    if listed.returncode != 0:
        shutil.copytree(ROOT, dest, ignore=NOT_SOURCES)
        return dest
    for name in filter(None, listed.stdout.split("\0")):
        source = ROOT / name
        if source.is_file() and "__pycache__" not in source.parts:   # a tracked file may be deleted
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    return dest


def build_wheel(tmp_path: Path) -> Path:
    """Offline and without build isolation; --check-build-dependencies makes pip refuse, rather than
    silently use, a setuptools older than [build-system].requires (the test extra installs a recent one)."""
    source = sources(tmp_path / "src")
    out = tmp_path / "wheelhouse"
    ok(run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--check-build-dependencies",
           "--no-index", "--quiet", "-w", out, source, cwd=tmp_path))
    (wheel,) = out.glob("digest-*.whl")
    return wheel


def fresh_venv(folder: Path, wheel: Path) -> Path:
    venv.EnvBuilder(with_pip=False, clear=True).create(folder)
    python = folder / "bin" / "python"
    ok(run(sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", "--quiet",
           wheel, cwd=folder))
    site_packages = Path(ok(run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])",
                                cwd=folder)).strip())
    ours = dict.fromkeys(sysconfig.get_paths()[key] for key in ("purelib", "platlib"))
    (site_packages / "zz_test_dependencies.pth").write_text("".join(f"{path}\n" for path in ours))
    return folder


def site_copy(tmp_path: Path) -> Path:
    """examples/ copied, its config pointed at the copy and naming no templates folder."""
    site = tmp_path / "site"
    shutil.copytree(ROOT / "examples", site)
    config = site / "config.toml"
    text = config.read_text(encoding="utf-8")
    text = re.sub(r"(?m)^templates\s*=.*\n", "", text).replace("../demo/", "state/")
    assert not re.search(r"(?m)^templates\s*=", text) and "../" not in text, text
    config.write_text(text, encoding="utf-8")
    return site


def isolated_env(bin_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP")}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONNOUSERSITE"] = "1"
    return env


def test_the_wheel_carries_templates_and_migrations_and_its_script_sends_an_edition(tmp_path):
    wheel = build_wheel(tmp_path)
    names = set(zipfile.ZipFile(wheel).namelist())
    source = tmp_path / "src"
    shipped_code = {p.relative_to(source).as_posix() for p in (source / "digest").rglob("*.py")}
    assert shipped_code - names == set(), "modules under digest/ missing from the wheel"
    templates = {"digest/" + p.relative_to(source).as_posix()
                 for p in (source / "templates").rglob("*") if p.is_file() and not p.name.startswith(".")}
    assert {"digest/templates/email.html", "digest/templates/email.txt", "digest/templates/subject.txt",
            "digest/templates/email.css", "digest/templates/web/base.html"} <= templates
    assert templates - names == set(), "templates/ files missing from the wheel"
    assert not any(n.startswith("templates/") for n in names), "templates must ship inside the package"
    assert {"digest/db/migrations/env.py", "digest/db/migrations/script.py.mako"} <= names
    assert any(re.fullmatch(r"digest/db/migrations/versions/[^/]+\.py", n) for n in names)

    env_dir = fresh_venv(tmp_path / "venv", wheel)
    python, script = env_dir / "bin" / "python", env_dir / "bin" / "digest"
    site = site_copy(tmp_path)
    env = isolated_env(env_dir / "bin")

    where = json.loads(ok(run(python, "-c", (
        "import json, sys, digest, digest.resources as r; print(json.dumps({"
        "'digest': digest.__file__, 'templates': str(r.templates_dir()), 'migrations': str(r.migrations_dir()),"
        "'finders': [type(f).__module__ if not isinstance(f, type) else f.__module__ for f in sys.meta_path]}))"),
        cwd=tmp_path, env=env)))
    installed = env_dir.resolve()
    assert Path(where["digest"]).resolve().is_relative_to(installed), where
    assert not Path(where["digest"]).resolve().is_relative_to(ROOT), where
    assert not any("__editable__" in name for name in where["finders"]), where
    templates_dir, migrations_dir = Path(where["templates"]), Path(where["migrations"])
    assert templates_dir.resolve().is_relative_to(installed) and (templates_dir / "email.html").is_file(), where
    assert migrations_dir.resolve().is_relative_to(installed), where
    assert (migrations_dir / "env.py").is_file() and (migrations_dir / "script.py.mako").is_file(), where
    assert list((migrations_dir / "versions").glob("*.py")), where

    cli = [script, "--config", site / "config.toml"]
    fetched = ok(run(*cli, "fetch", cwd=tmp_path, env=env))
    assert "on-probation: posts 9 new" in fetched

    ok(run(*cli, "preview", "weekly", *WEEK, "--out", "edition.html", cwd=tmp_path, env=env))
    html = (tmp_path / "edition.html").read_text(encoding="utf-8")
    assert "On Probation" in html and "Napo Responds To Panorama" in html and 'class="comment"' in html

    sent = run(*cli, "send", "weekly", *WEEK, "--yes", cwd=tmp_path, env=env)
    assert "edition 1: " in ok(sent) + sent.stderr
    messages = sorted((site / "state" / "outbox").rglob("*.eml"))
    assert messages, sent.stdout + sent.stderr
    message = email.message_from_bytes(messages[0].read_bytes(), policy=email.policy.default)
    body = message.get_body(("html",))
    assert body is not None and "Napo Responds To Panorama" in body.get_content(), message
