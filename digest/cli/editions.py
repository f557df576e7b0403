"""Commands for the edition: preview it, pick and drop comments, the editor's note and
subject, tune the weights, send it, and the editions sent."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from zoneinfo import ZoneInfo

import click
from rich.progress import MofNCompleteColumn, Progress

from .. import actions
from ..errors import UsageError
from ..models import DeliveryStatus
from . import App, chosen_period, cli, count, err, handles_errors, now

PERIOD_OPTIONS = (click.option("--since", help="First day of the period (YYYY-MM-DD, in the list's time zone)."),
                  click.option("--until", help="Day after the period (exclusive)."))


def period_options(command: Callable[..., object]) -> Callable[..., object]:
    for option in reversed(PERIOD_OPTIONS):
        command = option(command)
    return command


@cli.command()
@click.argument("list_name", metavar="LIST")
@period_options
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
    chosen = chosen_period(listed, since, until)
    built = actions.preview(app.settings, app.db, listed, *chosen.bounds, show_why=why)
    if why:
        click.echo(_reasons(built), err=True)
    output = _as(built, form, actions.sample_values(app.settings))
    if out is None:
        click.echo(output, nl=False)
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(output, encoding="utf-8")
    click.echo(f"Wrote {out} ({built.html_bytes} bytes of HTML, budget {app.settings.email.max_html_bytes})", err=True)
    click.echo(f"Period: {chosen.describe()}\n{_picked(built)}", err=True)


def _as(built: actions.Built, form: str, values: dict[str, str]) -> str:
    if form == "json":
        return json.dumps(actions.as_json(built), indent=2, ensure_ascii=False) + "\n"
    html, text = built.edition.personalise(values)
    return html if form == "html" else text


def _picked(built: actions.Built) -> str:
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


def _reasons(built: actions.Built) -> str:
    """Why each thread shown was picked (the email itself never says)."""
    context = built.edition.context
    star = [(context["star"]["post"]["title"], context["star"]["thread"])] if context["star"] else []
    shown = star + [(post["title"], thread) for post in context["posts"] for thread in post["threads"]]
    return "\n".join(f"{title}: {thread['comment']['author']} ({thread['comment']['id']}). Why: {thread['why']}"
                     for title, thread in shown)


# ------------------------------------------------------------------ the editor's picks

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
    within = chosen_period(listed, since, until)
    key = actions.pin(app.db, listed, comment, now(), within)
    click.echo(f"{list_name}: pin {key} (of {within.label()}) for the next edition")


@cli.command()
@click.argument("list_name", metavar="LIST")
@click.argument("comment")
@click.pass_obj
@handles_errors
def exclude(app: App, list_name: str, comment: str) -> None:
    """Never show COMMENT in LIST's next edition."""
    key = actions.exclude(app.db, app.list(list_name), comment, now())
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
        about = (f"{actions.first_words(brief.author, 8)} on \"{actions.first_words(brief.post_title, 12)}\": "
                 f"{brief.opening}" if brief else "(no longer stored)")
        click.echo(f"{action}\t{key}\t{about}")


# ------------------------------------------------------------------ the editor's voice

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
        setter(app.db, listed, None if clear else text, now())
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
    pins and excludes and with the threads subscribers opened (clicks corrected for the place
    each thread was shown at), and weights that agree better (written only with --write)."""
    found = actions.tune(app.settings, app.db, app.list(list_name))
    click.echo(f"{list_name}: {found.editions} past edition{'s' if found.editions != 1 else ''} with picks, "
               f"{found.clicked_editions} with readers' clicks ({found.clicks:,} clicks)")
    if found.position_bias:
        places = ", ".join(f"{place}: {share:.2f}" for place, share in list(found.position_bias.items())[:6])
        click.echo(f"  clicks by place shown (the first = 1.00; corrected for): {places}")
    for label, score in (("now", found.before), ("tuned", found.after)):
        click.echo(f"  {label:5}  pinned shown {score.pinned_shown}/{score.pinned}, excluded kept out "
                   f"{score.excluded_hidden}/{score.excluded}, readers' clear preferences scored alike "
                   f"{score.preferred_higher}/{score.preferred}: {score.share:.0%} agreement")
    changes = found.changes()
    if not changes:
        click.echo("The current weights agree best; nothing to change.")
        return
    for name, (before, after) in changes.items():
        click.echo(f"  selection.{name}: {before:g} -> {after:g}")
    _write_weights(app, found, changes, write)


def _write_weights(app: App, found: actions.Tuning, changes: dict[str, tuple[float, float]], write: bool) -> None:
    learnt = found.before.pinned + found.before.excluded + found.before.preferred
    if learnt < actions.FEW_PICKS:
        click.echo(f"Only {learnt} picks and preferences to learn from: weights fitted to so "
                   "few follow them too closely; wait for more editions before writing.")
    if not write:
        click.echo("Run again with --write to put them in the config file.")
        return
    actions.write_weights(app.config_path, {name: after for name, (_, after) in changes.items()})
    click.echo(f"Written to {app.config_path}.")


# ------------------------------------------------------------------ delivery

@cli.command()
@click.argument("list_name", metavar="LIST")
@period_options
@click.option("--dry-run", is_flag=True, help="Say what would be sent; send and record nothing.")
@click.option("--to", "to", metavar="EMAIL", help="Send one test copy to EMAIL; record nothing for the list.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option("--again", is_flag=True, help="Send a new copy of an edition already sent, to everyone.")
@click.option("--retry-unknown", is_flag=True,
              help="Also send messages whose outcome is unknown after a crash (may duplicate them).")
@click.option("--hold", is_flag=True,
              help="Build and hold it for approval instead, and mail the editor the review (`digest approve` sends).")
@click.pass_obj
@handles_errors
def send(app: App, list_name: str, since: str | None, until: str | None, dry_run: bool, to: str | None,
         yes: bool, again: bool, retry_unknown: bool, hold: bool) -> None:
    """Build (or resume) LIST's edition and deliver it to every subscriber.

    Re-running after a crash resumes from the ledger: nobody gets a second copy.
    """
    listed = app.list(list_name)
    chosen = chosen_period(listed, since, until)
    if hold:
        click.echo(actions.approval.hold_for_review(app.settings, app.db, listed, *chosen.bounds, now()))
        return
    if to:
        copy = actions.send_test(app.settings, app.db, listed, *chosen.bounds, to)
        for warning in copy.warnings:
            click.echo(f"Warning: {warning}", err=True)
        click.echo(f"Sent a test copy of \"{copy.subject}\" to {to}; nothing recorded for {list_name}")
        return
    with actions.holding_send_lock(app.db, listed):          # no other send or sync of the list meanwhile
        planned = actions.plan(app.settings, app.db, listed, *chosen.bounds, again, retry_unknown=retry_unknown)
        _announce(planned, chosen)
        if _go_ahead(dry_run, yes):
            report = _send_with_progress(app, planned, retry_unknown)
            _report(report, planned)
            if report.counts.get(DeliveryStatus.REFUSED) or report.counts.get(DeliveryStatus.UNKNOWN):
                sys.exit(1)


def _go_ahead(dry_run: bool, yes: bool) -> bool:
    """Whether to send now: not on a dry run; with --yes or without a terminal; else when asked."""
    if dry_run:
        click.echo("Dry run: nothing sent, nothing recorded.")
        return False
    if not yes and sys.stdin.isatty() and not click.confirm("Send now?", default=False, err=True):
        click.echo("Not sent.", err=True)
        sys.exit(1)
    return True


def _announce(planned: actions.Plan, chosen: actions.Period) -> None:
    """What is about to go: the problems found, the subject, the recipients, the period."""
    for problem in planned.problems:
        click.echo(f"Warning: {problem}", err=True)
    what = "Resume" if planned.resume_id else "Send"
    click.echo(f"{what} \"{planned.subject}\" to {count(planned.recipients, 'subscriber')} of "
               f"{planned.mailing_list.name} ({planned.html_bytes} bytes of HTML)", err=True)
    click.echo(f"Period: {chosen.describe()}", err=True)


def _send_with_progress(app: App, planned: actions.Plan, retry_unknown: bool) -> actions.SendReport:
    """Send exactly the edition the operator was shown."""
    with Progress(*Progress.get_default_columns(), MofNCompleteColumn(), console=err, transient=True) as bar:
        task = bar.add_task(f"Sending {planned.mailing_list.name}", total=None)
        return actions.send(app.settings, app.db, planned, retry_unknown=retry_unknown,
                            progress=lambda done, total: bar.update(task, completed=done, total=total))


def _report(report: actions.SendReport, planned: actions.Plan) -> None:
    for problem in report.problems[len(planned.problems):]:
        click.echo(f"Warning: {problem}", err=True)
    click.echo(report.summary())
    if report.cut_off:
        click.echo(f"Warning: {report.cut_off} messages were in flight when an earlier run stopped; "
                   "their outcome is unknown", err=True)


@cli.command()
@click.argument("list_name", metavar="LIST", required=False)
@click.option("--format", "form", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.pass_obj
@handles_errors
def editions(app: App, list_name: str | None, form: str) -> None:
    """Past editions: when, period, recipients, delivered, failed (json: also bounced,
    complaints and unsubscribes after each)."""
    if form == "json":
        click.echo(json.dumps(actions.desk.editions_json(app.settings, app.db, list_name), indent=2))
        return
    history = actions.history(app.db, list_name)
    if not history:
        click.echo(f"No editions yet for {list_name}." if list_name else "No editions yet.")
    for row in history:
        click.echo(_edition_line(app, row))


def _edition_line(app: App, row: dict) -> str:
    counts = row["counts"]
    listed = app.settings.mailing_list(row["list_name"])
    zone = listed.timezone if listed else ZoneInfo("UTC")
    since, until = row["since"].astimezone(zone), row["until"].astimezone(zone)
    when = f"{row['finished_at'] or row['created_at']:%Y-%m-%d %H:%M} UTC"
    accepted, refused = counts.get(DeliveryStatus.ACCEPTED, 0), counts.get(DeliveryStatus.REFUSED, 0)
    unknown = counts.get(DeliveryStatus.UNKNOWN, 0) + counts.get(DeliveryStatus.IN_FLIGHT, 0)
    return (f"{row['id']}\t{row['list_name']}\t{since:%Y-%m-%d}..{until:%Y-%m-%d}\t"
            f"{row['status']} {when}\trecipients {sum(counts.values())}\t"
            f"delivered {accepted}\tfailed {refused}\tunknown {unknown}")


@cli.command()
@click.argument("list_name", metavar="LIST")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.pass_obj
@handles_errors
def approve(app: App, list_name: str, yes: bool) -> None:
    """Send LIST's edition held for approval (approval = "required") to every subscriber, once.

    Again, or after a crash, it sends nothing twice: an approved edition cut off mid-send
    is resumed; with nothing held it says so.
    """
    listed = app.list(list_name)
    waiting = actions.approval.held(app.db, listed)
    if waiting is None:
        reports = actions.finish_unfinished(app.settings, app.db, listed)
        click.echo("\n".join(f"Resumed: {r.summary()}" for r in reports) or
                   actions.approval.nothing_held(app.db, listed))
        return
    days = actions.of_edition(listed, waiting.since, waiting.until).label()
    click.echo(f"Approve \"{waiting.subject}\" ({days}) to {count(waiting.recipients, 'subscriber')} of "
               f"{list_name}", err=True)
    if not yes and sys.stdin.isatty() and not click.confirm("Send now?", default=False, err=True):
        click.echo("Not approved: it is still held.", err=True)
        sys.exit(1)
    decided = actions.approval.approve(app.settings, app.db, listed, waiting.edition_id, now())
    for report in decided.reports:
        click.echo(report.summary())
