"""Edition cost: select + render + inline once, then personalise per subscriber.

Loads the bundled week of On Probation (examples/) into a fresh SQLite database and
prints the time to build one edition, the cost of one more subscriber (token
substitution in the finished strings), and the same for the naive design that
renders and inlines once per subscriber. Target: ours at least 50x cheaper.

    python bench/edition.py [--subscribers 5000] [--naive 30]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from digest import config  # noqa: E402
from digest.db import Database  # noqa: E402
from digest.read.ingest import ingest  # noqa: E402
from digest.send.message import recipient  # noqa: E402
from digest.write.edition import build, period  # noqa: E402
from digest.write.render import Renderer  # noqa: E402


def values(number: int) -> dict[str, str]:
    return {"greeting": f"Hello Reader {number},", "email": f"reader{number}@example.org",
            "unsubscribe_url": f"https://digest.example/unsubscribe/{number:08d}.signature-goes-here"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=5000)
    parser.add_argument("--naive", type=int, default=30, help="subscribers rendered the naive way")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copytree(ROOT / "examples", Path(tmp) / "examples")
        settings = config.load(Path(tmp) / "examples" / "config.toml")
        db = Database.open(settings.database_url())
        ingest(settings.sources[0], settings.fetch, db, settings.root, datetime.now(UTC))
        weekly = settings.lists[0]
        since, until = period(weekly, datetime.now(UTC), date(2017, 10, 25), date(2017, 11, 1))
        renderer = Renderer(settings.write_settings())
        build(settings.write_settings(), db, renderer, weekly, since, until)          # warm the template cache

        started = time.perf_counter()
        built = build(settings.write_settings(), db, renderer, weekly, since, until)
        once = time.perf_counter() - started

        started = time.perf_counter()
        sending = settings.send_settings()
        for number in range(args.subscribers):
            built.edition.personalise(values(number))
        ours = (time.perf_counter() - started) / args.subscribers

        started = time.perf_counter()                              # what a provider send does per subscriber
        sending = settings.send_settings()
        for number in range(args.subscribers):
            address = f"reader{number:06d}@example.org"
            to = recipient(sending, key="bench-secret-key", list_name=weekly.name, delivery_id=number, email=address,
                           email_key=address, name=f"Reader {number}", edition_id=1)
            built.edition.substitutions(to.values)
        provider = (time.perf_counter() - started) / args.subscribers

        started = time.perf_counter()
        for number in range(args.naive):
            edition = renderer.render(built.selection, weekly, built.trim)
            edition.personalise(values(number))
        naive = (time.perf_counter() - started) / args.naive
        db.close()

    print(f"edition: {built.html_bytes:,} bytes of HTML, {len(built.edition.text):,} characters of text")
    print(f"select + render + inline once: {once * 1000:.1f} ms")
    print(f"per extra subscriber, personalise: {ours * 1e6:.1f} µs ({args.subscribers} subscribers)")
    print(f"per extra subscriber, sign the unsubscribe link and fill the values (a provider send): "
          f"{provider * 1e6:.1f} µs (target <= 10 µs)")
    print(f"per extra subscriber, naive render + inline: {naive * 1000:.1f} ms ({args.naive} subscribers)")
    print(f"ratio naive / ours: {naive / ours:,.0f}x (target >= 50x)")


if __name__ == "__main__":
    main()
