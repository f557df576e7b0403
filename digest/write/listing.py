"""How a list presents itself to subscribers: its title, its one-line description, and when
its editions arrive, said the way a person would ("Mondays at 07:00, London time")."""

from __future__ import annotations

from datetime import datetime, timedelta

from ..config import MailingList
from . import periods

RUNS_LOOKED_AT = 4


def title(listed: MailingList, site_title: str) -> str:
    """What subscribers see as the list's name: its title, or one made from the site's title."""
    return listed.title or f"The {site_title} digest"


def description(listed: MailingList, site_title: str) -> str:
    return listed.description or f"The best of the discussion on {site_title}, in one email {cadence(listed.period)}."


def cadence(length: timedelta) -> str:
    """'a week', 'a day', 'every 3 days', 'every 12 hours'."""
    days, hours = length / timedelta(days=1), length / timedelta(hours=1)
    named = {1.0: "a day", 7.0: "a week"}
    if days in named:
        return named[days]
    if days.is_integer():
        return f"every {int(days)} days"
    return "an hour" if hours == 1 else f"every {hours:g} hours"


def arrives(listed: MailingList, now: datetime) -> str:
    """When the list's editions go out, read off its next scheduled runs: 'on Mondays at
    07:00 (Europe/London time)', 'every day at 06:30 (...)', else the next run's date."""
    runs: list[datetime] = []
    moment = now
    for _ in range(RUNS_LOOKED_AT):
        found = periods.next_run(listed, moment)
        if found is None:
            break
        runs.append(found)
        moment = found + timedelta(seconds=1)
    if not runs:
        return "when the editor sends one"
    zone = f"({listed.timezone} time)"
    at = {f"{run:%H:%M}" for run in runs}
    gaps = {(b - a).days for a, b in zip(runs, runs[1:], strict=False)}
    if len(at) == 1 and len(runs) > 1 and gaps == {7}:
        return f"on {runs[0]:%A}s at {runs[0]:%H:%M} {zone}"
    if len(at) == 1 and len(runs) > 1 and gaps == {1}:
        return f"every day at {runs[0]:%H:%M} {zone}"
    return f"next on {runs[0]:%A} {runs[0].day} {runs[0]:%B} at {runs[0]:%H:%M} {zone}"
