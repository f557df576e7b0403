"""Commands that keep digest running: the web server, the scheduler, the database's schema."""

from __future__ import annotations

import click

from .. import actions
from . import App, cli, handles_errors, now


@cli.command()
@click.option("--list-jobs", is_flag=True, help="Print each list's next run and last outcome, then exit.")
@click.pass_obj
@handles_errors
def schedule(app: App, list_jobs: bool) -> None:
    """Run the scheduler in the foreground: each list's edition goes out on its own
    schedule (cron, in the list's time zone). Stop with Ctrl-C or SIGTERM: the batch in
    flight finishes and is recorded first."""
    from .. import schedule as scheduling
    if list_jobs:
        for line in scheduling.jobs(app.settings, app.db, now()):
            click.echo(line)
        return
    scheduling.quiet_logs(app.debug)
    running = scheduling.build(app.settings, app.config_path, app.db)
    scheduling.install_signal_handlers(running)
    click.echo(f"Scheduler running for {len(app.settings.lists)} lists; Ctrl-C or SIGTERM to stop.", err=True)
    try:
        running.start()
    finally:
        running.stop()


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=int, help="Port to listen on.")
@click.pass_obj
@handles_errors
def serve(app: App, host: str, port: int) -> None:
    """Serve the editor's preview, the archive, subscribe, unsubscribe and the provider webhook."""
    from ..web import serve as web_serve
    click.echo(f"Serving on http://{host}:{port}/ (links in emails use {app.settings.web.base_url})", err=True)
    web_serve(app.settings, app.db, host, port)


@cli.group("db")
def db_group() -> None:
    """The database's schema: see where it stands, upgrade it by hand."""


@db_group.command("status")
@click.pass_obj
@handles_errors
def db_status(app: App) -> None:
    """Say which schema revision the database is at and whether it needs an upgrade."""
    click.echo(actions.schema_status(app.settings))


@db_group.command("upgrade")
@click.pass_obj
@handles_errors
def db_upgrade(app: App) -> None:
    """Upgrade the database to this digest's schema (every command also does it on first use)."""
    click.echo(actions.upgrade(app.settings))
