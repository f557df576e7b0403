"""Commands for the blog: set up for one, fetch its sources, see what is stored."""

from __future__ import annotations

import sys
from collections.abc import Callable

import click

from .. import actions, config
from ..config import Source
from . import App, cli, count, err, handles_errors, now

QUESTION = "A public web address for digest serve (e.g. https://news.example.org), or none: run everything by mail"
MAILBOX = "The mailbox digest reads and sends from, which readers write to (e.g. pickoftheweek@gmail.com)"


@cli.command()
@click.argument("url")
@click.option("--force", is_flag=True, help="Replace an existing config file.")
@click.option("--public-url", metavar="URL|none", help="The public https address of digest serve, or none: run "
                                                         "everything by mail (asked when run in a terminal).")
@click.option("--mailbox", default="", metavar="ADDRESS", help="By mail: the mailbox digest reads and sends from, "
                                                                "e.g. pickoftheweek@gmail.com.")
@click.pass_obj
@handles_errors
def init(app: App, url: str, force: bool, public_url: str | None, mailbox: str) -> None:
    """Find the blog's feed at URL and write a commented config file and an empty list.

    URL is the blog's address (Blogger, WordPress or any site with an RSS or Atom
    feed) or its feed. Writes --config (default ./config.toml; an existing one only
    with --force) and subscribers/weekly.csv beside it, then prints what to run next.
    With --public-url none digest runs by mail: the mailbox's provider (Gmail, Fastmail,
    Outlook.com, iCloud, Yahoo) gets its SMTP and IMAP servers written in.
    """
    if public_url is None and not mailbox and sys.stdin.isatty():
        public_url = click.prompt(QUESTION, default="none")
    if (public_url or "").strip().lower() == "none" and not mailbox and sys.stdin.isatty():
        mailbox = click.prompt(MAILBOX)
    written = actions.init(url, app.config_path, force=force, public_url=public_url, mailbox=mailbox)
    _report(written, app.config_path == config.DEFAULT_PATH)


def _report(written: actions.Written, default_config: bool) -> None:
    blog, way = written.blog, written.way
    click.echo(f"Found the {blog.kind} feed of {blog.title or blog.site_url}: {blog.feed_url}")
    by = f" (mail mode: {way.mailbox}, {way.provider.name if way.provider else 'a provider digest does not know'})"
    click.echo(f"Wrote {written.config_path}" + (by if way.mail_mode else ""))
    click.echo(f"{'Wrote' if written.list_created else 'Kept'} {written.list_path}")
    click.echo("Next:")
    for command in actions.next_commands(written, default_config):
        click.echo(f"  {command}")
    if way.mail_mode:
        settings = config.load(written.config_path)
        click.echo("The sign-up button for the blog (Blogger: Layout > Add a Gadget > HTML/JavaScript; WordPress: "
                   "a Custom HTML widget):")
        click.echo(actions.signup_snippet(settings, settings.lists[0]))


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
        def progress(source: Source) -> Callable[[str], None]:
            return lambda text: status.update(f"{source.name}: {text}")
        reports = actions.fetch(app.settings, app.db, chosen, now(), full=full, progress=progress)
    for report in reports:
        click.echo(report.summary())
        for problem in report.warnings[:1]:
            click.echo(f"Warning: {problem}", err=True)
    if any(r.failed for r in reports):
        raise SystemExit(1)


@cli.command()
@click.pass_obj
@handles_errors
def sources(app: App) -> None:
    """List each source with what is stored for it and how its last fetch went."""
    overview = actions.source_overview(app.db)
    if not overview:
        click.echo(f"No sources fetched yet; run `digest fetch` ({count(len(app.settings.sources), 'source')} "
                   f"in {app.settings.origin}).")
    for row in overview:
        when = f"{row['last_fetch_at']:%Y-%m-%d %H:%M} UTC" if row["last_fetch_at"] else "never"
        state = f"FAILED: {row['last_error']}" if row["last_error"] else "ok"
        click.echo(f"{row['name']}: {row['posts']} posts, {row['comments']} comments "
                   f"({row['replies']} replies, {row['removed']} removed); last fetch {when}, {state}")
