"""The `digest` command: translates between the shell and `actions`, nothing more.

Commands are grouped by what the person is doing: `blog` (init, fetch, sources),
`editions` (preview, picks, the editor's voice, tune, send, editions), `subscribers`
(subscribers ..., bounces), `live` (doctor) and `server` (serve, schedule, db). Each
loads the settings, calls one action and prints what it returned.

Library errors (DigestError and kin) become `Error: ...` on stderr with the error's
exit code (2 for usage and configuration, 1 for run failures); a traceback only
with --debug.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from datetime import UTC, date, datetime
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console

from .. import __version__, actions, config
from ..config import MailingList, Settings
from ..errors import DigestError, UsageError

if TYPE_CHECKING:
    from ..db import Database

log = logging.getLogger("digest")
err = Console(stderr=True)


class App:
    """What every command needs: the settings and, on demand, the database (opened
    once per command, and upgraded to this code's schema on first use)."""

    def __init__(self, config_path: Path, debug: bool) -> None:
        self.config_path = config_path
        self.debug = debug
        self._settings: Settings | None = None
        self._db: Database | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = config.load(self.config_path)
        return self._settings

    @property
    def db(self) -> Database:
        if self._db is None:
            from ..db import Database  # here, not above: `digest --help` needs no database
            self._db = Database.open(self.settings.database_url())
        return self._db

    def list(self, name: str) -> MailingList:
        return actions.mailing_list(self.settings, name)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()


def now() -> datetime:
    return datetime.now(UTC)


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


# ------------------------------------------------------------------ helpers of the commands

def day(value: str | None, option: str) -> date | None:
    """A --since/--until date, or UsageError saying how to write one."""
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise UsageError(f"{option} {value!r} is not a date; use YYYY-MM-DD, e.g. 2017-10-25") from None


def chosen_period(listed: MailingList, since: str | None, until: str | None) -> actions.Period:
    """The period the --since/--until options name, or the next edition's."""
    return actions.period(listed, now(), day(since, "--since"), day(until, "--until"))


def count(number: int, noun: str) -> str:
    """1 subscriber, 2 subscribers."""
    return f"{number} {noun}{'' if number == 1 else 's'}"


def main() -> None:
    cli(prog_name="digest", auto_envvar_prefix=None)


from . import blog, editions, live, server, subscribers  # noqa: E402,F401 - each adds its commands to `cli`
