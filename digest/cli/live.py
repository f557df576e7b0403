"""Commands for going live: `digest doctor`."""

from __future__ import annotations

import json
import sys

import click

from .. import actions
from . import App, cli, handles_errors


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of {check, ok, detail, fix}.")
@click.pass_obj
@handles_errors
def doctor(app: App, as_json: bool) -> None:
    """Run every check a real send depends on: the config, the secret, the editor's
    password, the database, the sender domain's SPF, DKIM and DMARC, the relay, the public
    address, bounce handling, the scheduler, who approves, the mailbox (in mail mode it
    mails its own plus address and reads it back) and the provider's daily limits. One line
    each, with the fix; exits 1 when any check fails. DIGEST_NAMESERVER=HOST:PORT makes the
    DNS look-ups ask that server."""
    found = actions.doctor(app.config_path)
    if as_json:
        click.echo(json.dumps([c.as_json() for c in found], indent=2, ensure_ascii=False))
    else:
        for check in found:
            click.echo(f"{'✓' if check.ok else '✗'} {check.check}: {check.detail}")
            if not check.ok and check.fix:
                click.echo(f"    fix: {check.fix}")
        failed = sum(not c.ok for c in found)
        click.echo(f"{len(found) - failed} of {len(found)} checks pass" + ("." if not failed else
                                                                              "; fix the ones marked ✗."))
    if any(not c.ok for c in found):
        sys.exit(1)
