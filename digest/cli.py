"""The `digest` command: translates between the shell and the library, nothing more.

Library errors (DigestError and kin) become `Error: ...` on stderr with exit code 2
for usage and configuration, 1 for run failures; a traceback only with --debug.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import sys
from collections.abc import Callable
from datetime import UTC, date, datetime
from functools import wraps
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import click
from rich.console import Console
from rich.progress import MofNCompleteColumn, Progress

from . import __version__, actions, config
from .db import Database, NoDatabase, safe_url
from .db.picks import first_words
from .errors import DigestError, UsageError
from .live import setup
from .models import DeliveryStatus, Origin
from .pick import tune as tuning
from .send.deliver import Plan, SendReport
from .write import periods
from .write.edition import Built, as_json

log = logging.getLogger("digest")
err = Console(stderr=True)


class App:
    """What every command needs: the settings and, on demand, the database (opened
    once per command, and upgraded to this code's schema on first use)."""

    def __init__(self, config_path: Path, debug: bool) -> None:
        self.config_path = config_path
        self.debug = debug
        self._settings: config.Settings | None = None
        self._db: Database | None = None

    @property
    def settings(self) -> config.Settings:
        if self._settings is None:
            self._settings = config.load(self.config_path)
        return self._settings

    @property
    def db(self) -> Database:
        return self.open_db(upgrade=True)

    def open_db(self, upgrade: bool, read_only: bool = False) -> Database:
        if self._db is None:
            self._db = Database.open(self.settings.database_url(), upgrade=upgrade, read_only=read_only)
        return self._db

    def list(self, name: str) -> config.MailingList:
        return actions.mailing_list(self.settings, name)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()


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


NO_ARGS_IS_HELP: type[click.UsageError] = getattr(click.exceptions, "NoArgsIsHelpError",
                                                  type("Never", (click.UsageError,), {}))


class OneLineErrors(click.Group):
    """click's own usage errors (a bad option, a missing argument) as one `Error:` line,
    with the help to read, like every other error; exit code 2."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["standalone_mode"] = False
        try:
            return super().main(*args, **kwargs)
        except NO_ARGS_IS_HELP as asked:        # `digest` or `digest db` alone: the help, as click shows it
            click.echo(asked.format_message(), err=True)
            sys.exit(2)
        except click.UsageError as error:
            where = error.ctx.command_path if error.ctx else "digest"
            click.echo(f"Error: {error.format_message().rstrip('.')}; see `{where} --help`", err=True)
            sys.exit(2)
        except click.ClickException as error:
            click.echo(f"Error: {error.format_message()}", err=True)
            sys.exit(error.exit_code)
        except click.exceptions.Exit as done:
            sys.exit(done.exit_code)
        except click.Abort:
            click.echo("Aborted.", err=True)
            sys.exit(1)


@click.group(cls=OneLineErrors, context_settings={"help_option_names": ["-h", "--help"]})
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
@click.argument("url")
@click.option("--force", is_flag=True, help="Replace an existing config file.")
@click.pass_obj
@handles_errors
def init(app: App, url: str, force: bool) -> None:
    """Find the blog's feed at URL and write a commented config file and an empty list.

    URL is the blog's address (Blogger, WordPress or any site with an RSS or Atom
    feed) or its feed. Writes --config (default ./config.toml; an existing one only
    with --force) and subscribers/weekly.csv beside it, then prints what to run next.
    """
    blog = setup.discover(url, config.Fetch())
    written = setup.write(blog, app.config_path, force=force)
    click.echo(f"Found the {blog.kind} feed of {blog.title or blog.site_url}: {blog.feed_url}")
    click.echo(f"Wrote {written.config_path}")
    click.echo(f"{'Wrote' if written.list_created else 'Kept'} {written.list_path}")
    click.echo("Next:")
    for command in setup.next_commands(written, app.config_path == config.DEFAULT_PATH):
        click.echo(f"  {command}")


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
    chosen = actions.sources(app.settings, sources)
    with err.status("fetching…") as status:
        def progress(source: config.Source) -> Callable[[str], None]:
            return lambda text: status.update(f"{source.name}: {text}")
        reports = actions.fetch(app.settings, app.db, chosen, datetime.now(UTC), full=full, progress=progress)
    for report in reports:
        click.echo(report.summary())
        for problem in report.warnings[:1]:
            click.echo(f"Warning: {problem}", err=True)
    if any(r.failed for r in reports):
        sys.exit(1)


@cli.command()
@click.pass_obj
@handles_errors
def sources(app: App) -> None:
    """List each source with what is stored for it and how its last fetch went."""
    overview = app.db.content.source_overview()
    if not overview:
        click.echo(f"No sources fetched yet; run `digest fetch` ({_count(len(app.settings.sources), 'source')} "
                   f"in {app.settings.origin}).")
    for row in overview:
        when = f"{row['last_fetch_at']:%Y-%m-%d %H:%M} UTC" if row["last_fetch_at"] else "never"
        state = f"FAILED: {row['last_error']}" if row["last_error"] else "ok"
        click.echo(f"{row['name']}: {row['posts']} posts, {row['comments']} comments "
                   f"({row['replies']} replies, {row['removed']} removed); last fetch {when}, {state}")


# ------------------------------------------------------------------ the edition

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
@click.option("--why", is_flag=True, help="Also print why each thread was picked (its score parts) on stderr.")
@click.pass_obj
@handles_errors
def preview(app: App, list_name: str, since: str | None, until: str | None, form: str,
            out: Path | None, why: bool) -> None:
    """Build the edition LIST would get now (or for the period given), without sending
    or recording anything."""
    listed = app.list(list_name)
    chosen = periods.chosen(listed, datetime.now(UTC), _date(since, "--since"), _date(until, "--until"))
    built = actions.preview(app.settings, app.db, listed, *chosen.bounds, show_why=why)
    html, text = built.edition.personalise(_preview_values(app.settings))
    output = {"html": html, "text": text,
              "json": json.dumps(as_json(built), indent=2, ensure_ascii=False) + "\n"}[form]
    if why:
        click.echo(_reasons(built), err=True)
    if out is None:
        click.echo(output, nl=False)
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(output, encoding="utf-8")
    click.echo(f"Wrote {out} ({built.html_bytes} bytes of HTML, budget {app.settings.email.max_html_bytes})", err=True)
    click.echo(f"Period: {chosen.describe()}", err=True)
    click.echo(_picked(built), err=True)


def _picked(built: Built) -> str:
    """What was picked, in a few lines, for the operator."""
    selection = built.selection
    lines = [f"Subject: {built.edition.subject}"]
    if selection.star is not None and selection.star_post is not None:
        top = selection.star.top.comment
        lines.append(f"Comment of the week: {top.author} on \"{selection.star_post.title}\" "
                     f"(score {selection.star.score:g}, id {top.key})")
    for pick in selection.posts:
        threads = ", ".join(f"{t.top.comment.key} ({t.score:g})" for t in pick.threads) or "no threads"
        lines.append(f"  [{pick.section}] {pick.post.title}: {pick.new_comments} new comments; {threads}")
    return "\n".join(lines)


def _reasons(built: Built) -> str:
    """Why each thread shown was picked (the email itself never says)."""
    context = built.edition.context
    star = [(context["star"]["post"]["title"], context["star"]["thread"])] if context["star"] else []
    shown = star + [(post["title"], thread) for post in context["posts"] for thread in post["threads"]]
    return "\n".join(f"{title}: {thread['comment']['author']} ({thread['comment']['id']}). Why: {thread['why']}"
                     for title, thread in shown)


def _preview_values(settings: config.Settings) -> dict[str, str]:
    return {"greeting": "Hello,", "email": "you@example.org",
            "unsubscribe_url": f"{settings.web.base_url}/unsubscribe/preview"}


@cli.command()
@click.argument("list_name", metavar="LIST")
@click.argument("comment")
@click.option("--since", help="First day of the period the comment is in (default: the next edition's).")
@click.option("--until", help="Day after that period (exclusive).")
@click.pass_obj
@handles_errors
def pin(app: App, list_name: str, comment: str, since: str | None, until: str | None) -> None:
    """Always show COMMENT (its id, `#c` anchor or permalink) in LIST's next edition;
    the best pinned thread becomes the comment of the week. The comment must be of the
    next edition's period, or of the period given."""
    listed = app.list(list_name)
    now = datetime.now(UTC)
    within = periods.chosen(listed, now, _date(since, "--since"), _date(until, "--until"))
    key = actions.pin(app.db, listed, comment, now, within)
    click.echo(f"{list_name}: pin {key} (of {within.label()}) for the next edition")


@cli.command()
@click.argument("list_name", metavar="LIST")
@click.argument("comment")
@click.pass_obj
@handles_errors
def exclude(app: App, list_name: str, comment: str) -> None:
    """Never show COMMENT in LIST's next edition."""
    key = actions.exclude(app.db, app.list(list_name), comment, datetime.now(UTC))
    click.echo(f"{list_name}: exclude {key} for the next edition")


@cli.command()
@click.argument("list_name", metavar="LIST")
@click.argument("comment", required=False)
@click.pass_obj
@handles_errors
def unpick(app: App, list_name: str, comment: str | None) -> None:
    """Forget the pin or exclusion of COMMENT (or every one) for LIST's next edition."""
    removed = actions.unpick(app.db, app.list(list_name), comment)
    click.echo(f"{list_name}: {removed} pick{'s' if removed != 1 else ''} removed")


@cli.command()
@click.argument("list_name", metavar="LIST")
@click.pass_obj
@handles_errors
def picks(app: App, list_name: str) -> None:
    """List the pins and exclusions waiting for LIST's next edition: author, post and
    first words of each comment."""
    waiting = actions.picked(app.db, app.list(list_name))
    if not waiting:
        click.echo(f"{list_name}: no picks waiting for the next edition (`digest pin` or the web editor adds some)")
    for key, action, brief in waiting:
        about = (f"{first_words(brief.author, 8)} on \"{first_words(brief.post_title, 12)}\": {brief.opening}"
                 if brief else "(no longer stored)")
        click.echo(f"{action}\t{key}\t{about}")


@cli.command()
@click.argument("list_name", metavar="LIST")
@click.argument("text", required=False)
@click.option("--clear", is_flag=True, help="Remove the note: the next edition goes without one.")
@click.pass_obj
@handles_errors
def note(app: App, list_name: str, text: str | None, clear: bool) -> None:
    """Set the editor's note (Markdown, shown under the greeting) for LIST's next
    edition; without TEXT, show the note waiting. It goes out with the next edition."""
    _voice(app, list_name, "note", text, clear, actions.set_note)


@cli.command()
@click.argument("list_name", metavar="LIST")
@click.argument("text", required=False)
@click.option("--clear", is_flag=True, help="Go back to the usual subject (templates/subject.txt).")
@click.pass_obj
@handles_errors
def subject(app: App, list_name: str, text: str | None, clear: bool) -> None:
    """Set the subject of LIST's next edition instead of the usual one; without TEXT,
    show the subject waiting."""
    _voice(app, list_name, "subject", text, clear, actions.set_subject)


def _voice(app: App, list_name: str, part: str, text: str | None, clear: bool, setter: Callable[..., None]) -> None:
    listed = app.list(list_name)
    if clear and text is not None:
        raise UsageError(f"give {part} TEXT or --clear, not both; to replace the {part}, give only TEXT")
    if clear or text is not None:
        setter(app.db, listed, None if clear else text, datetime.now(UTC))
    value = getattr(actions.draft(app.db, listed), part)
    shown = "\n" + value if part == "note" and value else f" {value}"
    click.echo(f"{list_name}: {part} for the next edition:{shown}" if value else
               f"{list_name}: no {part} set for the next edition (`digest {part} {list_name} TEXT` sets one)")


@cli.command()
@click.argument("list_name", metavar="LIST")
@click.option("--write", is_flag=True, help="Write the better weights into [selection] of the config file.")
@click.pass_obj
@handles_errors
def tune(app: App, list_name: str, write: bool) -> None:
    """Replay LIST's past editions: how well the [selection] weights agree with the editor's
    pins and excludes, and weights that agree better (written only with --write)."""
    mailing_list = app.list(list_name)
    found = tuning.tune(app.db, mailing_list.name, app.settings.selection, mailing_list.timezone)
    click.echo(f"{list_name}: {found.editions} past edition{'s' if found.editions != 1 else ''} with picks")
    for label, score in (("now", found.before), ("tuned", found.after)):
        click.echo(f"  {label:5}  pinned shown {score.pinned_shown}/{score.pinned}, excluded kept out "
                   f"{score.excluded_hidden}/{score.excluded}: {score.share:.0%} agreement")
    changes = found.changes()
    if not changes:
        click.echo("The current weights agree best; nothing to change.")
        return
    for name, (before, after) in changes.items():
        click.echo(f"  selection.{name}: {before:g} -> {after:g}")
    if found.before.pinned + found.before.excluded < tuning.FEW_PICKS:
        click.echo(f"Only {found.before.pinned + found.before.excluded} picks to learn from: weights fitted to so "
                   "few follow them too closely; wait for more editions before writing.")
    if write:
        tuning.write_weights(app.config_path, {name: after for name, (_, after) in changes.items()})
        click.echo(f"Written to {app.config_path}.")
    else:
        click.echo("Run again with --write to put them in the config file.")


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
    listed = app.list(list_name)
    chosen = periods.chosen(listed, datetime.now(UTC), _date(since, "--since"), _date(until, "--until"))
    start, end = chosen.bounds
    if to:
        subject = actions.send_test(app.settings, app.db, listed, start, end, to)
        click.echo(f"Sent a test copy of \"{subject}\" to {to}; nothing recorded for {list_name}")
        return
    with actions.sending(app.db, listed):          # no other send or sync of the list meanwhile
        planned = actions.plan(app.settings, app.db, listed, start, end, again, retry_unknown=retry_unknown)
        for problem in planned.problems:
            click.echo(f"Warning: {problem}", err=True)
        what = "Resume" if planned.resume_id else "Send"
        click.echo(f"{what} \"{planned.subject}\" to {_count(planned.recipients, 'subscriber')} of {list_name} "
                   f"({planned.html_bytes} bytes of HTML)", err=True)
        click.echo(f"Period: {chosen.describe()}", err=True)
        if dry_run:
            click.echo("Dry run: nothing sent, nothing recorded.")
            return
        if not yes and sys.stdin.isatty() and not click.confirm("Send now?", default=False, err=True):
            click.echo("Not sent.", err=True)
            sys.exit(1)
        report = _send_with_progress(app, planned, retry_unknown)
        for problem in report.problems[len(planned.problems):]:
            click.echo(f"Warning: {problem}", err=True)
        click.echo(report.summary())
        if report.cut_off:
            click.echo(f"Warning: {report.cut_off} messages were in flight when an earlier run stopped; "
                       "their outcome is unknown", err=True)
    if report.counts.get(DeliveryStatus.REFUSED) or report.counts.get(DeliveryStatus.UNKNOWN):
        sys.exit(1)


def _send_with_progress(app: App, planned: Plan, retry_unknown: bool) -> SendReport:
    """Send exactly the edition the operator was shown."""
    with Progress(*Progress.get_default_columns(), MofNCompleteColumn(), console=err, transient=True) as bar:
        task = bar.add_task(f"Sending {planned.mailing_list.name}", total=None)
        return actions.send(app.settings, app.db, planned, retry_unknown=retry_unknown,
                            progress=lambda done, total: bar.update(task, completed=done, total=total))


@cli.command()
@click.argument("list_name", metavar="LIST", required=False)
@click.pass_obj
@handles_errors
def editions(app: App, list_name: str | None) -> None:
    """Past editions: when, period, recipients, delivered, failed."""
    history = app.db.ledger.history(list_name)
    if not history:
        click.echo(f"No editions yet for {list_name}." if list_name else "No editions yet.")
    for row in history:
        counts = row["counts"]
        listed = app.settings.mailing_list(row["list_name"])
        zone = listed.timezone if listed else ZoneInfo("UTC")
        row["since"], row["until"] = row["since"].astimezone(zone), row["until"].astimezone(zone)
        when = f"{row['finished_at'] or row['created_at']:%Y-%m-%d %H:%M} UTC"
        accepted, refused = counts.get(DeliveryStatus.ACCEPTED, 0), counts.get(DeliveryStatus.REFUSED, 0)
        unknown = counts.get(DeliveryStatus.UNKNOWN, 0) + counts.get(DeliveryStatus.SENDING, 0)
        click.echo(f"{row['id']}\t{row['list_name']}\t{row['since']:%Y-%m-%d}..{row['until']:%Y-%m-%d}\t"
                   f"{row['status']} {when}\trecipients {sum(counts.values())}\t"
                   f"delivered {accepted}\tfailed {refused}\tunknown {unknown}")


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
    listed = app.list(list_name)
    added = actions.add_subscriber(app.settings, app.db, listed, email, name, Origin.CLI, datetime.now(UTC))
    note = " (but it is suppressed: it will not be mailed)" if added.suppressed else ""
    click.echo(f"{list_name}: added {added.address}{note}")


@subscribers.command("remove")
@click.argument("list_name", metavar="LIST")
@click.argument("email")
@click.pass_obj
@handles_errors
def subscribers_remove(app: App, list_name: str, email: str) -> None:
    """Take EMAIL off LIST for good (it stays off even if the list file names it)."""
    found = actions.remove_subscriber(app.db, app.list(list_name), email, datetime.now(UTC))
    click.echo(f"{list_name}: removed {email}" + ("" if found else " (it was not a member; suppressed anyway)"))


@subscribers.command("import")
@click.argument("list_name", metavar="LIST")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_obj
@handles_errors
def subscribers_import(app: App, list_name: str, file: Path) -> None:
    """Add the members of a CSV FILE (email, name, ...) to LIST; bad rows are reported and skipped."""
    result = actions.import_subscribers(app.settings, app.db, app.list(list_name), file, datetime.now(UTC))
    for problem in result.problems:
        click.echo(f"Warning: {problem}", err=True)
    click.echo(f"{list_name}: {result.added} added, {result.updated} updated, {len(result.problems)} rows skipped")


@subscribers.command("export")
@click.argument("list_name", metavar="LIST")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write here instead of stdout.")
@click.pass_obj
@handles_errors
def subscribers_export(app: App, list_name: str, out: Path | None) -> None:
    """Write LIST's members who will get the next edition as CSV (email, name)."""
    listed = app.list(list_name)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["email", "name"])
    for row in app.db.lists.members(listed.name):
        writer.writerow([spreadsheet_safe(row.email), spreadsheet_safe(row.name)])
    if out is None:
        click.echo(buffer.getvalue(), nl=False)
    else:
        out.write_text(buffer.getvalue(), encoding="utf-8")


@subscribers.command("list")
@click.argument("list_name", metavar="LIST")
@click.option("--sync", is_flag=True, help="Read the list file first.")
@click.option("--allow-retire", is_flag=True,
              help="With --sync: apply the file even if it takes more than 10% of the list off it.")
@click.pass_obj
@handles_errors
def subscribers_list(app: App, list_name: str, sync: bool, allow_retire: bool) -> None:
    """Every address ever on LIST, with its state (active, retired, or why suppressed)."""
    listed = app.list(list_name)
    if sync:
        synced = actions.sync_list(app.settings, app.db, listed, datetime.now(UTC), allow_retire)
        for problem in synced.problems:
            click.echo(f"Warning: {problem}", err=True)
    listing = app.db.lists.listing(listed.name)
    if not listing:
        click.echo(f"No subscribers on {list_name} yet; add them to {listed.file} (then --sync), "
                   f"or `digest subscribers add {list_name} EMAIL`.")
    for row in listing:
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
    scheduling.quiet_logs(app.debug)
    running = scheduling.build(app.settings, app.config_path, app.db)
    scheduling.install_signal_handlers(running)
    click.echo(f"Scheduler running for {len(app.settings.lists)} lists; Ctrl-C or SIGTERM to stop.", err=True)
    try:
        running.start()
    finally:
        running.stop()


def _list_jobs(app: App, scheduling: Any) -> None:
    now = datetime.now(UTC)
    last = scheduling.last_runs(app.db)
    stored = app.db.runs.stored_jobs()
    for name, when in scheduling.next_runs(app.settings, now):
        listed = app.list(name)
        local = when.astimezone(listed.timezone) if when else None
        nxt = f"{local:%Y-%m-%d %H:%M %Z} ({when.astimezone(UTC):%Y-%m-%d %H:%M} UTC)" if local else "never"
        previous = last.get(name)
        outcome = f"{previous['started_at']:%Y-%m-%d %H:%M} UTC: {previous['outcome']}" if previous else "none yet"
        retry = stored.get(scheduling.RETRY_PREFIX + name)
        pending = f"\tretry at {retry[1]:%Y-%m-%d %H:%M} UTC" if retry and retry[1] else ""
        click.echo(f"{name}\t{listed.schedule} {listed.timezone}\tnext {nxt}{pending}\tlast run {outcome}")


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
    web_serve(app.settings, app.db, host, port)


# ------------------------------------------------------------------ the database

@cli.group("db")
def db_group() -> None:
    """The database's schema: see where it stands, upgrade it by hand."""


@db_group.command("status")
@click.pass_obj
@handles_errors
def db_status(app: App) -> None:
    """Say which schema revision the database is at and whether it needs an upgrade."""
    try:
        state = app.open_db(upgrade=False, read_only=True).schema_state().describe()
    except NoDatabase as missing:
        state = str(missing)
    click.echo(f"{safe_url(app.settings.database_url())}: {state}")


@db_group.command("upgrade")
@click.pass_obj
@handles_errors
def db_upgrade(app: App) -> None:
    """Upgrade the database to this digest's schema (every command also does it on first use)."""
    before, after = app.open_db(upgrade=False).upgrade()
    if before.up_to_date:
        click.echo(f"Already up to date (revision {after.current})")
    elif before.current is None and not before.legacy:
        click.echo(f"Created the schema (revision {after.current})")
    else:
        click.echo(f"Upgraded from {before.current or 'the schema before versions'} to revision {after.current}")


def _count(number: int, noun: str) -> str:
    """1 subscriber, 2 subscribers."""
    return f"{number} {noun}{'' if number == 1 else 's'}"


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: str) -> str:
    """A cell a spreadsheet will not run as a formula: a leading =, +, -, @, tab or CR
    gets a ' in front (OWASP's advice for CSV injection). Addresses too (`=cmd|...@x` is
    a valid address); reading a list file takes that ' off again."""
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def main() -> None:
    cli(prog_name="digest", auto_envvar_prefix=None)


if __name__ == "__main__":  # pragma: no cover
    main()
