"""Which days an edition covers.

A scheduled run sends the list's `period` ending at the local midnight of the run's
day. The default of `digest preview`, of the web editor and of an undated `digest send`
is the period of the list's NEXT scheduled run, so what the editor sees on Sunday is
what Monday's run sends ("so far" while its last day is still to come). Dates given by
hand are local midnights in the list's time zone, the end exclusive.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from ..config import MailingList
from ..db import Database
from ..errors import UsageError

NEXT, LATEST, EDITION, DATES = "next", "latest", "edition", "dates"
DASH = "\u2013"
MAX_STEPS = 50                  # runs looked at when finding the one whose period holds a moment


@dataclass(frozen=True)
class Period:
    """[since, until) in the list's time zone, and where it came from."""

    since: datetime
    until: datetime
    kind: str = DATES           # NEXT | LATEST (the latest with content) | EDITION (a past one) | DATES
    run_at: datetime | None = None   # the scheduled run that sends it
    so_far: bool = False        # its last day is still to come

    @property
    def bounds(self) -> tuple[datetime, datetime]:
        return self.since, self.until

    def label(self) -> str:
        """'16–22 Nov 2026 (so far)'."""
        text = span(self.since, self.until)
        return f"{text} (so far)" if self.so_far else text

    def describe(self) -> str:
        """One line for the operator: which edition, which days, when it goes."""
        if self.kind == NEXT and self.run_at is not None:
            run = self.run_at
            return f"next edition, {self.label()}, sent by the run of {run:%a} {run.day} {run:%b %Y %H:%M %Z}"
        return self.label()


def span(since: datetime, until: datetime) -> str:
    """The days of [since, until): '16–22 Nov 2026', '30 Oct – 5 Nov 2017', with times
    when an end is not a midnight."""
    if not (_is_midnight(since) and _is_midnight(until)):
        return f"{since:%d %b %Y %H:%M} {DASH} {until:%d %b %Y %H:%M}"
    return days(since.date(), until.date() - timedelta(days=1))


def days(first: date, last: date, month: str = "%b") -> str:
    """First to last day, inclusive, as few words as it takes: '16–22 Nov 2026'
    (month="%B": '16–22 November 2026'), '30 Oct – 5 Nov 2017', '1 Dec 2026'."""
    if last <= first:
        return f"{first.day} {first.strftime(month)} {first.year}"
    if (first.year, first.month) == (last.year, last.month):
        return f"{first.day}{DASH}{last.day} {last.strftime(month)} {last.year}"
    if first.year == last.year:
        return f"{first.day} {first.strftime(month)} {DASH} {last.day} {last.strftime(month)} {last.year}"
    return f"{first.day} {first.strftime(month)} {first.year} {DASH} {last.day} {last.strftime(month)} {last.year}"


def _is_midnight(moment: datetime) -> bool:
    return (moment.hour, moment.minute, moment.second, moment.microsecond) == (0, 0, 0, 0)


# ------------------------------------------------------------------ the arithmetic

def given(mailing_list: MailingList, since: date | None, until: date | None) -> Period:
    """The period of the dates given (at least one): local midnights, until exclusive;
    a missing end is the list's period from the other."""
    zone, length = mailing_list.timezone, mailing_list.period
    end = midnight(until, zone) if until else None
    start = midnight(since, zone) if since else None
    try:
        if end is None and start is not None:
            end = start + length
        if start is None and end is not None:
            start = end - length
    except OverflowError:
        option = f"--since {since}" if since else f"--until {until}"
        raise UsageError(f"{option}: the period runs off the calendar; give dates between the years 1900 "
                         "and 9000") from None
    if start is None or end is None:
        raise UsageError("give --since or --until (YYYY-MM-DD), or neither for the next edition")
    if start >= end:
        raise UsageError(f"--since {start.date()} is not before --until {end.date()}; give a since before until")
    return Period(normal(start, zone), normal(end, zone))


def ending(mailing_list: MailingList, moment: datetime, now: datetime | None = None) -> Period:
    """The period a run at `moment` sends: the list's period up to that day's local midnight."""
    zone = mailing_list.timezone
    until = midnight(moment.astimezone(zone).date(), zone)
    since = normal(until - mailing_list.period, zone)
    return Period(since, until, NEXT, moment.astimezone(zone), now is not None and now < until)


def next_run(mailing_list: MailingList, now: datetime) -> datetime | None:
    """The list's next scheduled run at or after now (None for a cron line that never fires)."""
    found = mailing_list.schedule.trigger.get_next_fire_time(None, now)
    return found.astimezone(mailing_list.timezone) if found is not None else None


def next_edition(mailing_list: MailingList, now: datetime) -> Period:
    """The period the list's next scheduled run will send (so far, while its last day is
    still to come); for a schedule that never fires, the period ending tonight."""
    run = next_run(mailing_list, now)
    if run is None:
        tonight = now.astimezone(mailing_list.timezone).date() + timedelta(days=1)
        return ending(mailing_list, midnight(tonight, mailing_list.timezone), now)
    return ending(mailing_list, run, now)


def chosen(mailing_list: MailingList, now: datetime, since: date | None = None,
           until: date | None = None) -> Period:
    """The dates given, or else the next edition's period (preview, editor, send)."""
    if since is None and until is None:
        return next_edition(mailing_list, now)
    return given(mailing_list, since, until)


def holding(mailing_list: MailingList, moment: datetime, now: datetime) -> Period:
    """The period of the scheduled run that covers `moment` (the first run after it whose
    period holds it), or the list's period ending at the midnight after it."""
    zone = mailing_list.timezone
    run = next_run(mailing_list, moment)
    for _ in range(MAX_STEPS):
        if run is None:
            break
        found = ending(mailing_list, run, now)
        if found.until > moment:
            if found.since <= moment:
                return Period(found.since, found.until, LATEST, found.run_at, found.so_far)
            break
        run = next_run(mailing_list, run + timedelta(seconds=1))
    after = ending(mailing_list, midnight(moment.astimezone(zone).date() + timedelta(days=1), zone), now)
    return Period(after.since, after.until, LATEST, None, after.so_far)


def of_edition(mailing_list: MailingList, since: datetime, until: datetime) -> Period:
    """A stored edition's period, in the list's time zone."""
    zone = mailing_list.timezone
    return Period(since.astimezone(zone), until.astimezone(zone), EDITION)


def midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=zone)


def normal(moment: datetime, zone: ZoneInfo) -> datetime:
    """Wall-clock arithmetic keeps the zone; re-attach it so the offset is right."""
    return moment.replace(tzinfo=None).replace(tzinfo=zone)


def first_view(mailing_list: MailingList, db: Database, now: datetime) -> tuple[Period, Period]:
    """(the period the editor is shown first, the next edition's). The next edition's,
    unless nothing is stored for it yet (the demo's 2017 sample seen today): then the
    latest period that has posts or comments."""
    upcoming = next_edition(mailing_list, now)
    latest = db.picks.latest_activity(upcoming.until)
    if latest is None or latest >= upcoming.since:
        return upcoming, upcoming
    return holding(mailing_list, latest, now), upcoming
