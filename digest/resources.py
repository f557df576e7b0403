"""Where the files that ship beside the code are: the bundled templates and the migrations.

An installed wheel carries the top-level templates/ folder as digest/templates/ (see the
package-dir mapping in pyproject.toml); a source checkout or an editable install
(`pip install -e .`) reads it where it is, next to the digest/ package.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parent


def templates_dir() -> Path:
    """The bundled templates folder (email.html, email.txt, subject.txt, email.css, web/)."""
    installed = PACKAGE / "templates"
    if installed.is_dir():
        return installed
    return PACKAGE.parent / "templates"


def migrations_dir() -> Path:
    """The folder of the package digest.db.migrations: env.py, script.py.mako and versions/."""
    return PACKAGE / "db" / "migrations"
