"""Commands for the blog: set up for one, fetch its sources, see what is stored."""

from __future__ import annotations

from collections.abc import Callable

import click

from .. import actions, config
from ..config import Source
from . import App, cli, count, err, handles_errors, now


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
    written = actions.init(url, app.config_path, force=force)
    blog = written.blog
    click.echo(f"Found the {blog.kind} feed of {blog.title or blog.site_url}: {blog.feed_url}")
    click.echo(f"Wrote {written.config_path}")
    click.echo(f"{'Wrote' if written.list_created else 'Kept'} {written.list_path}")
    click.echo("Next:")
    for command in actions.next_commands(written, app.config_path == config.DEFAULT_PATH):
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
