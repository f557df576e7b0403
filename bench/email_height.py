"""How long the email is to scroll: the demo week's page height in Chromium.

Renders the bundled week of On Probation (25-31 October 2017, examples/) into a fresh
SQLite database and prints the height in CSS pixels of the personalised HTML part at a
phone width (390 px) and a desktop width (1280 px), light and dark. Pass --templates to
measure another template folder (e.g. the previous release's templates/).

    python bench/email_height.py [--templates DIR] [--chromium /usr/bin/chromium]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from datetime import UTC, date, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from digest import config  # noqa: E402
from digest.db import Database  # noqa: E402
from digest.read.ingest import ingest  # noqa: E402
from digest.write.edition import build, period  # noqa: E402
from digest.write.render import Renderer  # noqa: E402

VALUES = {"greeting": "Hello Reader One,", "email": "reader.one@example.org",
          "unsubscribe_url": "https://digest.example/unsubscribe/TOKEN"}
WIDTHS = (390, 1280)


def demo_html(templates: Path | None) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copytree(ROOT / "examples", Path(tmp) / "examples")
        settings = config.load(Path(tmp) / "examples" / "config.toml")
        if templates is not None:
            email = settings.email.model_copy(update={"templates": str(templates.resolve())})
            settings = settings.model_copy(update={"email": email})
        db = Database.open(settings.database_url())
        ingest(settings.sources[0], settings.fetch, db, settings.root, datetime.now(UTC))
        weekly = settings.lists[0]
        since, until = period(weekly, datetime.now(UTC), date(2017, 10, 25), date(2017, 11, 1))
        built = build(settings.write_settings(), db, Renderer(settings.write_settings()), weekly, since, until)
        db.close()
    return built.edition.personalise(VALUES)[0]


def heights(html: str, chromium: str) -> dict[tuple[int, str], int]:
    from playwright.sync_api import sync_playwright
    found = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--headless", "--no-sandbox"])
        for width in WIDTHS:
            for scheme in ("light", "dark"):
                page = browser.new_page(viewport={"width": width, "height": 800}, color_scheme=scheme)
                page.set_content(html, wait_until="load")
                found[(width, scheme)] = int(page.evaluate("document.documentElement.scrollHeight"))
                page.close()
        browser.close()
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--templates", type=Path, help="template folder to measure (default: the bundled one)")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    html = demo_html(args.templates)
    print(f"demo week 2017-10-25..2017-11-01: {len(html.encode()):,} bytes of HTML")
    for (width, scheme), height in heights(html, args.chromium).items():
        print(f"{width:>5} px wide, {scheme:<5}: {height:>6,} px tall")


if __name__ == "__main__":
    main()
