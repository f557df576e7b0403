"""The `digest` command: translates between the shell and the library, nothing more.

Library errors (DigestError and kin) become `Error: ...` on stderr with exit code 2
for usage and configuration, 1 for run failures; a traceback only with --debug.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
import csv
import io
import json
from datetime import UTC, date, datetime
from functools import wraps
from pathlib import Path
from zoneinfo import ZoneInfo
from typing import Any

import click
from rich.console import Console
from rich.progress import MofNCompleteColumn, Progress

from . import __version__, config
from .errors import DigestError, UsageError
from .deliver import SendReport, plan, send_test
from .deliver import send as deliver_send
from .edition import Built, as_json, build, period, picks_for
from .ledger import Ledger
from .subscribers import Lists, Member, check_address, read_csv
from .ingest import ingest
from .render import Renderer
from .lock import hold
from .store import Store, connect

log = logging.getLogger("digest")
err = Console(stderr=True)


class App:
    """What every command needs: the settings and, on demand, the database."""

    def __init__(self, config_path: Path, debug: bool) -> None:
        self.config_path = config_path
        self.debug = debug
        self._settings: config.Settings | None = None
        self._store: Store | None = None

    @property
    def settings(self) -> config.Settings:
        if self._settings is None:
            self._settings = config.load(self.config_path)
        return self._settings

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = connect(self.settings.database_url())
        return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()


def handles_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn library errors into `Error: ...` lines and exit codes."""
    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        app: App = click.get_current_context().obj
        try:
            return command(*args, **kwargs)
        except DigestError as error:
            if app.debug:
                raise
            for line in getattr(error, "problems", None) or [str(error)]:
                click.echo(f"Error: {line}", err=True)
            sys.exit(error.exit_code)
        finally:
            app.close()
    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", type=click.Path(path_type=Path), envvar="DIGEST_CONFIG",
              default=config.DEFAULT_PATH, show_default=True, help="Settings file (env DIGEST_CONFIG).")
@click.option("-v", "--verbose", count=True, help="Log more (-v info, -vv debug).")
@click.option("--debug", is_flag=True, help="Show tracebacks and debug logs.")
@click.version_option(__version__, prog_name="digest")
@click.pass_context
def cli(ctx: click.Context, config_path: Path, verbose: int, debug: bool) -> None:
    """Email digests of a blog's best comment threads."""
    level = logging.DEBUG if debug or verbose > 1 else logging.INFO if verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    ctx.obj = App(config_path, debug)


@cli.command()
@click.argument("sources", nargs=-1)
@click.option("--full", is_flag=True,
              help="Re-read every comment feed of the posts read, not only those whose count changed.")
@click.pass_obj
@handles_errors
def fetch(app: App, sources: tuple[str, ...], full: bool) -> None:
    """Poll SOURCES (default: all) and store new and changed posts and comments.

    Prints one summary line per source; exits 1 if any source failed (the
    others are still stored).
    """
    chosen = _chosen_sources(app.settings, sources)
    now = datetime.now(UTC)
    with hold(app.store, "fetch"):
        reports = [_fetch_one(app, source, now, full) for source in chosen]
    for report in reports:
        click.echo(report.summary())
        for problem in report.warnings[:1]:
            click.echo(f"Warning: {problem}", err=True)
    if any(r.failed for r in reports):
        sys.exit(1)


def _chosen_sources(settings: config.Settings, names: tuple[str, ...]) -> list[config.Source]:
    if not settings.sources:
        raise UsageError(f"no [[sources]] in {settings.root / 'config.toml'}; add one with a name and url")
    unknown = [n for n in names if settings.source(n) is None]
    if unknown:
        known = ", ".join(s.name for s in settings.sources)
        raise UsageError(f"unknown source {unknown[0]!r}; choose from: {known}")
    return [settings.source(n) for n in names] if names else list(settings.sources)


def _fetch_one(app: App, source: config.Source, now: datetime, full: bool):
    with err.status(f"{source.name}: fetching…") as status:
        return ingest(source, app.settings.fetch, app.store, app.settings.root, now, full=full,
                      progress=lambda text: status.update(f"{source.name}: {text}"))


@cli.command()
@click.pass_obj
@handles_errors
def sources(app: App) -> None:
    """List each source with what is stored for it and how its last fetch went."""
    for row in app.store.source_overview():
        when = f"{row['last_fetch_at']:%Y-%m-%d %H:%M} UTC" if row["last_fetch_at"] else "never"
        state = f"FAILED: {row['last_error']}" if row["last_error"] else "ok"
        click.echo(f"{row['name']}: {row['posts']} posts, {row['comments']} comments "
                   f"({row['replies']} replies, {row['removed']} removed); last fetch {when}, {state}")


# ------------------------------------------------------------------ the edition

def _mailing_list(settings: config.Settings, name: str) -> config.MailingList:
    found = settings.mailing_list(name)
    if found is None:
        known = ", ".join(item.name for item in settings.lists) or "none: add a [[lists]] table"
        raise UsageError(f"unknown list {name!r}; choose from: {known}")
    return found


def _date(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise UsageError(f"{option} {value!r} is not a date; use YYYY-MM-DD, e.g. 2017-10-25") from None


@cli.command()
@click.argument("list_name", metavar="LIST")
@click.option("--since", help="First day of the period (YYYY-MM-DD, in the list's time zone).")
@click.option("--until", help="Day after the period (exclusive).")
@click.option("--format", "form", type=click.Choice(["html", "text", "json"]), default="html", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write here instead of stdout.")
@click.option("--why", is_flag=True, help="Show each thread's score parts in the HTML (editor's view).")
@click.pass_obj
@handles_errors
def preview(app: App, list_name: str, since: str | None, until: str | None, form: str,
            out: Path | None, why: bool) -> None:
    """Build the edition LIST would get now (or for the period given), without sending
    or recording anything."""
    mailing_list = _mailing_list(app.settings, list_name)
    start, end = period(mailing_list, datetime.now(UTC), _date(since, "--since"), _date(until, "--until"))
    renderer = Renderer(app.settings, show_why=why)
    built = build(app.settings, app.store, renderer, mailing_list, start, end, picks_for(app.store, list_name))
    html, text = built.edition.personalise(_preview_values(app.settings))
    output = {"html": html, "text": text,
              "json": json.dumps(as_json(built), indent=2, ensure_ascii=False) + "\n"}[form]
    if out is None:
        click.echo(output, nl=False)
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(output, encoding="utf-8")
    click.echo(f"Wrote {out} ({built.html_bytes} bytes of HTML, budget {app.settings.email.max_html_bytes})", err=True)
    click.echo(_picked(built), err=True)


def _picked(built: Built) -> str:
    """What was picked, in a few lines, for the operator."""
    selection = built.selection
    lines = [f"Subject: {built.edition.subject}"]
    if selection.star is not None:
        top = selection.star.top.comment
        lines.append(f"Comment of the week: {top.author} on \"{selection.star_post.title}\" "
                     f"(score {selection.star.score:g}, id {top.key})")
    for pick in selection.posts:
        threads = ", ".join(f"{t.top.comment.key} ({t.score:g})" for t in pick.threads) or "no threads"
        lines.append(f"  [{pick.section}] {pick.post.title}: {pick.new_comments} new comments; {threads}")
    return "\n".join(lines)


def _preview_values(settings: config.Settings) -> dict[str, str]:
    return {"greeting": "Hello,", "email": "you@example.org",
            "unsubscribe_url": f"{settings.web.base_url}/unsubscribe/preview"}


@cli.command()
@click.argument("list_name", metavar="LIST")
@click.argument("comment")
@click.pass_obj
@handles_errors
def pin(app: App, list_name: str, comment: str) -> None:
    """Always show COMMENT (an id from `preview --format json`) in LIST's next edition;
    the best pinned thread becomes the comment of the week."""
    _pick(app, list_name, comment, "pin")


@cli.command()
@click.argument("list_name", metavar="LIST")
@click.argument("comment")
@click.pass_obj
@handles_errors
def exclude(app: App, list_name: str, comment: str) -> None:
    """Never show COMMENT in LIST's next edition."""
    _pick(app, list_name, comment, "exclude")


@cli.command()
@click.argument("list_name", metavar="LIST")
@click.argument("comment", required=False)
@click.pass_obj
@handles_errors
def unpick(app: App, list_name: str, comment: str | None) -> None:
    """Forget the pin or exclusion of COMMENT (or every one) for LIST's next edition."""
    _mailing_list(app.settings, list_name)
    removed = app.store.clear_picks(list_name, comment)
    click.echo(f"{list_name}: {removed} pick{'s' if removed != 1 else ''} removed")


@cli.command()
@click.argument("list_name", metavar="LIST")
@click.pass_obj
@handles_errors
def picks(app: App, list_name: str) -> None:
    """List the pins and exclusions waiting for LIST's next edition."""
    _mailing_list(app.settings, list_name)
    for key, action in app.store.picks(list_name).items():
        click.echo(f"{action}\t{key}")


def _pick(app: App, list_name: str, comment: str, action: str) -> None:
    _mailing_list(app.settings, list_name)
    if not app.store.has_comment(comment):
        raise UsageError(f"no stored comment has id {comment!r}; find ids with "
                         f"`digest preview {list_name} --format json`")
    app.store.set_pick(list_name, comment, action, datetime.now(UTC))
    click.echo(f"{list_name}: {action} {comment} for the next edition")


# ------------------------------------------------------------------ delivery

@cli.command()
@click.argument("list_name", metavar="LIST")
@click.option("--since", help="First day of the period (YYYY-MM-DD, in the list's time zone).")
@click.option("--until", help="Day after the period (exclusive).")
@click.option("--dry-run", is_flag=True, help="Say what would be sent; send and record nothing.")
@click.option("--to", "to", metavar="EMAIL", help="Send one test copy to EMAIL; record nothing for the list.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option("--again", is_flag=True, help="Send a new copy of an edition already sent, to everyone.")
@click.option("--retry-unknown", is_flag=True,
              help="Also send messages whose outcome is unknown after a crash (may duplicate them).")
@click.pass_obj
@handles_errors
def send(app: App, list_name: str, since: str | None, until: str | None, dry_run: bool, to: str | None,
         yes: bool, again: bool, retry_unknown: bool) -> None:
    """Build (or resume) LIST's edition and deliver it to every member.

    Re-running after a crash resumes from the ledger: nobody gets a second copy.
    """
    mailing_list = _mailing_list(app.settings, list_name)
    start, end = period(mailing_list, datetime.now(UTC), _date(since, "--since"), _date(until, "--until"))
    if to:
        subject = send_test(app.settings, app.store, list_name, start, end, to)
        click.echo(f"Sent a test copy of \"{subject}\" to {to}; nothing recorded for {list_name}")
        return
    planned = plan(app.settings, app.store, list_name, start, end, again)
    for problem in planned.problems:
        click.echo(f"Warning: {problem}", err=True)
    what = "Resume" if planned.resume_id else "Send"
    click.echo(f"{what} \"{planned.subject}\" to {planned.recipients} subscribers of {list_name} "
               f"({planned.html_bytes} bytes of HTML)", err=True)
    if dry_run:
        click.echo("Dry run: nothing sent, nothing recorded.")
        return
    if not yes and sys.stdin.isatty() and not click.confirm("Send now?", default=False, err=True):
        click.echo("Not sent.", err=True)
        sys.exit(1)
    report = _send_with_progress(app, list_name, start, end, again, retry_unknown)
    click.echo(report.summary())
    if report.cut_off:
        click.echo(f"Warning: {report.cut_off} messages were in flight when an earlier run stopped; "
                   "their outcome is unknown", err=True)
    if report.counts.get("refused") or report.counts.get("unknown"):
        sys.exit(1)


def _send_with_progress(app: App, list_name: str, start: datetime, end: datetime, again: bool,
                        retry_unknown: bool) -> SendReport:
    with Progress(*Progress.get_default_columns(), MofNCompleteColumn(), console=err, transient=True) as bar:
        task = bar.add_task(f"Sending {list_name}", total=None)
        return deliver_send(app.settings, app.store, list_name, start, end, again=again,
                            retry_unknown=retry_unknown,
                            progress=lambda done, total: bar.update(task, completed=done, total=total))


@cli.command()
@click.argument("list_name", metavar="LIST", required=False)
@click.pass_obj
@handles_errors
def editions(app: App, list_name: str | None) -> None:
    """Past editions: when, period, recipients, delivered, failed."""
    for row in Ledger(app.store).history(list_name):
        counts = row["counts"]
        listed = app.settings.mailing_list(row["list_name"])
        zone = ZoneInfo(listed.timezone if listed else "UTC")
        row["since"], row["until"] = row["since"].astimezone(zone), row["until"].astimezone(zone)
        when = f"{row['finished_at'] or row['created_at']:%Y-%m-%d %H:%M} UTC"
        click.echo(f"{row['id']}\t{row['list_name']}\t{row['since']:%Y-%m-%d}..{row['until']:%Y-%m-%d}\t"
                   f"{row['status']} {when}\trecipients {sum(counts.values())}\t"
                   f"delivered {counts.get('accepted', 0)}\tfailed {counts.get('refused', 0)}\t"
                   f"unknown {counts.get('unknown', 0) + counts.get('sending', 0)}")


@cli.group()
def subscribers() -> None:
    """Manage list members: add, remove, import, export, list."""


@subscribers.command("add")
@click.argument("list_name", metavar="LIST")
@click.argument("email")
@click.option("--name", default="", help="The subscriber's name.")
@click.pass_obj
@handles_errors
def subscribers_add(app: App, list_name: str, email: str, name: str) -> None:
    """Add EMAIL to LIST (kept even if the list file does not name it)."""
    _mailing_list(app.settings, list_name)
    try:
        address = check_address(email)
    except ValueError as error:
        raise UsageError(f"{email!r} is not a valid address ({error}); give one like you@example.org") from None
    lists = Lists(app.store)
    lists.merge(list_name, [Member(address, name)], "cli", datetime.now(UTC))
    note = " (but it is suppressed: it will not be mailed)" if lists.is_suppressed(list_name, address) else ""
    click.echo(f"{list_name}: added {address}{note}")


@subscribers.command("remove")
@click.argument("list_name", metavar="LIST")
@click.argument("email")
@click.pass_obj
@handles_errors
def subscribers_remove(app: App, list_name: str, email: str) -> None:
    """Take EMAIL off LIST for good (it stays off even if the list file names it)."""
    _mailing_list(app.settings, list_name)
    found = Lists(app.store).remove(list_name, email, datetime.now(UTC))
    click.echo(f"{list_name}: removed {email}" + ("" if found else " (it was not a member; suppressed anyway)"))


@subscribers.command("import")
@click.argument("list_name", metavar="LIST")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_obj
@handles_errors
def subscribers_import(app: App, list_name: str, file: Path) -> None:
    """Add the members of a CSV FILE (email, name, ...) to LIST; bad rows are reported and skipped."""
    _mailing_list(app.settings, list_name)
    read = read_csv(file)
    for problem in read.problems:
        click.echo(f"Warning: {problem}", err=True)
    result = Lists(app.store).merge(list_name, read.members, "import", datetime.now(UTC))
    click.echo(f"{list_name}: {result.added} added, {result.updated} updated, {len(read.problems)} rows skipped")


@subscribers.command("export")
@click.argument("list_name", metavar="LIST")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write here instead of stdout.")
@click.pass_obj
@handles_errors
def subscribers_export(app: App, list_name: str, out: Path | None) -> None:
    """Write LIST's members who will get the next edition as CSV (email, name)."""
    _mailing_list(app.settings, list_name)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["email", "name"])
    for row in Lists(app.store).members(list_name):
        writer.writerow([row.email, row.name])
    if out is None:
        click.echo(buffer.getvalue(), nl=False)
    else:
        out.write_text(buffer.getvalue(), encoding="utf-8")


@subscribers.command("list")
@click.argument("list_name", metavar="LIST")
@click.option("--sync", is_flag=True, help="Read the list file first.")
@click.pass_obj
@handles_errors
def subscribers_list(app: App, list_name: str, sync: bool) -> None:
    """Every address ever on LIST, with its state (active, retired, or why suppressed)."""
    mailing_list = _mailing_list(app.settings, list_name)
    lists = Lists(app.store)
    if sync:
        for problem in lists.sync(list_name, app.settings.path(mailing_list.file), datetime.now(UTC)).problems:
            click.echo(f"Warning: {problem}", err=True)
    for row in lists.listing(list_name):
        state = row["reason"] or ("active" if row["active"] else "retired")
        click.echo(f"{row['email']}\t{row['name']}\t{state}\t{row['origin']}")


# ------------------------------------------------------------------ the scheduler

@cli.command()
@click.option("--list-jobs", is_flag=True, help="Print each list's next run and last outcome, then exit.")
@click.pass_obj
@handles_errors
def schedule(app: App, list_jobs: bool) -> None:
    """Run the scheduler in the foreground: each list's edition goes out on its own
    schedule (cron, in the list's time zone). Stop with Ctrl-C or SIGTERM: the batch in
    flight finishes and is recorded first."""
    from . import schedule as scheduling
    if list_jobs:
        _list_jobs(app, scheduling)
        return
    running = scheduling.build(app.settings, app.config_path, app.store)
    scheduling.install_signal_handlers(running)
    click.echo(f"Scheduler running for {len(app.settings.lists)} lists; Ctrl-C or SIGTERM to stop.", err=True)
    try:
        running.start()
    finally:
        running.stop()


def _list_jobs(app: App, scheduling) -> None:
    now = datetime.now(UTC)
    last = scheduling.last_runs(app.store)
    for name, when in scheduling.next_runs(app.settings, now):
        listed = app.settings.mailing_list(name)
        local = when.astimezone(ZoneInfo(listed.timezone)) if when else None
        nxt = f"{local:%Y-%m-%d %H:%M %Z} ({when.astimezone(UTC):%Y-%m-%d %H:%M} UTC)" if local else "never"
        previous = last.get(name)
        outcome = f"{previous['started_at']:%Y-%m-%d %H:%M} UTC: {previous['outcome']}" if previous else "none yet"
        click.echo(f"{name}\t{listed.schedule} {listed.timezone}\tnext {nxt}\tlast run {outcome}")


# ------------------------------------------------------------------ the web

@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=int, help="Port to listen on.")
@click.pass_obj
@handles_errors
def serve(app: App, host: str, port: int) -> None:
    """Serve the editor's preview, the archive, subscribe, unsubscribe and the provider webhook."""
    from .web import serve as web_serve
    click.echo(f"Serving on http://{host}:{port}/ (links in emails use {app.settings.web.base_url})", err=True)
    web_serve(app.settings, app.store, host, port)


def main() -> None:
    cli(prog_name="digest", auto_envvar_prefix=None)


if __name__ == "__main__":  # pragma: no cover
    main()
