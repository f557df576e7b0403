"""Reading the blog: set up for one (`digest init`), fetch its sources, say what is stored."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from ..config import Fetch, Settings, Source
from ..db import Database
from ..live import setup
from ..live.setup import Blog, Written
from ..models import SourceReport
from ..read.ingest import ingest

FETCH_LOCK = "fetch"


def init(url: str, config_path: Path, force: bool = False, public_url: str | None = None,
         mailbox: str = "") -> Written:
    """Find the blog's feed at url; write a commented config file and an empty list beside it,
    for digest serve at public_url, or run by mail through mailbox (public_url "none")."""
    way = setup.choose(public_url, mailbox)
    return setup.write(setup.discover(url, Fetch()), config_path, force=force, way=way)


def next_commands(written: Written, default_config: bool) -> list[str]:
    """The three commands to run after init."""
    return setup.next_commands(written, default_config)


def fetch(settings: Settings, db: Database, chosen: list[Source], now: datetime, full: bool = False,
          progress: Callable[[Source], Callable[[str], None]] = lambda source: lambda text: None,
          wait: timedelta = timedelta(0)) -> list[SourceReport]:
    """Fetch the chosen sources, one fetch at a time per database (waiting up to `wait`
    for another to finish)."""
    with db.locks.hold(FETCH_LOCK, now=now, wait=wait, reentrant=False):   # beats while a long fetch runs
        return [ingest(source, settings.fetch, db, settings.root, now, full=full, progress=progress(source))
                for source in chosen]


def source_overview(db: Database) -> list[dict[str, Any]]:
    """Each source fetched: its posts, comments, replies, removed comments, last fetch and error."""
    return db.content.source_overview()


__all__ = ["Blog", "FETCH_LOCK", "Written", "fetch", "init", "next_commands", "source_overview"]
