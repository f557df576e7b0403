"""Names a person types (a list, a source) resolved against the settings, or a
UsageError that lists what there is."""

from __future__ import annotations

from collections.abc import Iterable

from ..config import MailingList, Settings, Source
from ..errors import NotFound, UsageError


def mailing_list(settings: Settings, name: str) -> MailingList:
    found = settings.mailing_list(name)
    if found is None:
        known = ", ".join(item.name for item in settings.lists) or "none: add a [[lists]] table"
        raise NotFound(f"unknown list {name!r}; choose from: {known}")
    return found


def sources(settings: Settings, names: Iterable[str] = ()) -> list[Source]:
    names = list(names)
    if not settings.sources:
        raise UsageError(f"no [[sources]] in {settings.origin}; add one with a name and url")
    unknown = [n for n in names if settings.source(n) is None]
    if unknown:
        known = ", ".join(s.name for s in settings.sources)
        raise UsageError(f"unknown source {unknown[0]!r}; choose from: {known}")
    return [s for s in settings.sources if s.name in names] if names else list(settings.sources)
