"""Commands for the subscribers: `digest subscribers add|remove|import|export|list`, and what
comes back from them and what they ask by mail: `digest mailbox` (`digest bounces`)."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.progress import Progress, SpinnerColumn, TextColumn

from .. import actions
from ..models import Origin
from . import App, cli, err, handles_errors, now


@cli.group()
def subscribers() -> None:
    """Manage a list's subscribers: add, remove, import, export, list."""


@subscribers.command("add")
@click.argument("list_name", metavar="LIST")
@click.argument("email")
@click.option("--name", default="", help="The subscriber's name.")
@click.pass_obj
@handles_errors
def subscribers_add(app: App, list_name: str, email: str, name: str) -> None:
    """Add EMAIL to LIST (kept even if the list file does not name it)."""
    added = actions.add_subscriber(app.settings, app.db, app.list(list_name), email, name, Origin.CLI, now())
    note = " (but it is suppressed: it will not be mailed)" if added.suppressed else ""
    click.echo(f"{list_name}: added {added.address}{note}")


@subscribers.command("remove")
@click.argument("list_name", metavar="LIST")
@click.argument("email")
@click.pass_obj
@handles_errors
def subscribers_remove(app: App, list_name: str, email: str) -> None:
    """Take EMAIL off LIST for good (it stays off even if the list file names it)."""
    found = actions.remove_subscriber(app.db, app.list(list_name), email, now())
    click.echo(f"{list_name}: removed {email}" + ("" if found else " (it was not subscribed; suppressed anyway)"))


@subscribers.command("import")
@click.argument("list_name", metavar="LIST")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_obj
@handles_errors
def subscribers_import(app: App, list_name: str, file: Path) -> None:
    """Add the subscribers of a CSV FILE (email, name, ...) to LIST; bad rows are reported and skipped."""
    result = actions.import_subscribers(app.settings, app.db, app.list(list_name), file, now())
    for problem in result.problems:
        click.echo(f"Warning: {problem}", err=True)
    click.echo(f"{list_name}: {result.added} added, {result.updated} updated, {len(result.problems)} rows skipped")


@subscribers.command("export")
@click.argument("list_name", metavar="LIST")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write here instead of stdout.")
@click.pass_obj
@handles_errors
def subscribers_export(app: App, list_name: str, out: Path | None) -> None:
    """Write LIST's subscribers who will get the next edition as CSV (email, name)."""
    text = actions.export_subscribers(app.db, app.list(list_name))
    if out is None:
        click.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")


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
        for problem in actions.sync_list(app.settings, app.db, listed, now(), allow_retire).problems:
            click.echo(f"Warning: {problem}", err=True)
    out = sys.stdout
    lines: list[str] = []
    printed = 0
    for line in actions.listing(app.db, listed):        # written in chunks: a million lines, not a million writes
        lines.append(line)
        if len(lines) == 10_000:
            out.write("".join(lines))
            printed, lines = printed + len(lines), []
    out.write("".join(lines))
    if not printed + len(lines):
        click.echo(f"No subscribers on {list_name} yet; add them to {listed.file} (then --sync), "
                   f"or `digest subscribers add {list_name} EMAIL`.")


@cli.command()
@click.option("--dry-run", is_flag=True, help="Say what each new message would do; change nothing, mark nothing.")
@click.pass_obj
@handles_errors
def mailbox(app: App, dry_run: bool) -> None:
    """Read the mailbox ([mailbox]: a Maildir or IMAP) once and act on each new message
    once: a hard bounce or a complaint suppresses the address on every list, soft bounces
    do after [mailbox].soft_limit editions in a row, auto-replies change nothing; in mail
    mode, sign-ups, confirmations, unsubscribes and approvals by mail are applied. What
    cannot be classified stays in the mailbox, flagged, for you. Reading it again changes
    nothing."""
    _read_mailbox(app, dry_run)


@cli.command()
@click.option("--dry-run", is_flag=True, help="Say what each new message would do; change nothing, mark nothing.")
@click.pass_obj
@handles_errors
def bounces(app: App, dry_run: bool) -> None:
    """The older name of `digest mailbox`: read the mailbox once."""
    _read_mailbox(app, dry_run)


def _read_mailbox(app: App, dry_run: bool) -> None:
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), console=err, transient=True) as bar:
        task = bar.add_task("reading the mailbox", total=None)
        report = actions.inbox.read_mailbox(
            app.settings, app.db, now(), dry_run,
            progress=lambda n: bar.update(task, description=f"reading the mailbox: {n} message(s)"))
    for line in report.lines:
        where = f"edition {line.edition_id} ({line.list_name})" if line.edition_id else line.list_name or "-"
        click.echo(f"  {actions.bounces.SHOWN[line.kind]:<12} {line.status or '-':<6} {line.address or '-':<32} "
                   f"{where:<22} {line.outcome}")
    if report.already:
        click.echo(f"  ({report.already} message(s) recorded before and now marked read)")
    click.echo(report.summary())
