"""What a person can do, written once and used alike by the three fronts (the CLI, the
web app and the scheduler), which call nothing else of the library.

Each action takes the parsed settings (whole: actions hand each phase its own part),
an open Database and resolved objects, and raises a DigestError (a UsageError for a
wrong request) with one line saying what to do. Grouped by what the person is doing:

- `lookup`: a list or source named by a person;
- `blog`: set up for a blog, fetch it, what is stored (read);
- `editions`: the period, the preview, pins and excludes, the editor's voice, tuning
  and the editions sent (pick, write);
- `subscribers`: adding and removing them, sign-up, confirmation, unsubscribe, list files;
- `sends`: plan and send, test copies, resuming, the scheduled run (send);
- `site`: editor sessions, provider events (signals), the database's schema;
- `going_live`: the checks a real send depends on (`digest doctor`);
- `scheduling`: the scheduler's own record (its lock, runs and jobs);
- `approval`: editions held for the editor's approval, reviewed, approved or skipped;
- `desk`: the web editor's dashboard, editions as sent, subscribers page by page, send now;
- `notices`: a notice to the editor after every run (mail, and a webhook);
- `runs`: the scheduled run of a list, and the desk's errands every few seconds.
"""

import ast
import importlib
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:   # imported on first use, by __getattr__ below: a command loads only the phases it runs
    from ..send.readiness import NotReady
    from . import approval, bounces, clicks, desk, notices, runs, scheduling
    from .blog import FETCH_LOCK, Blog, Written, fetch, init, next_commands, source_overview
    from .editions import (
        FEW_PICKS,
        MAX_NOTE,
        MAX_SUBJECT,
        Built,
        Period,
        Tuning,
        archive_html,
        as_json,
        comment_key,
        dates,
        draft,
        exclude,
        find_comments,
        first_view,
        first_words,
        frozen,
        history,
        next_edition,
        of_edition,
        period,
        picked,
        picks,
        pin,
        preview,
        sample_values,
        sent_editions,
        set_note,
        set_subject,
        tune,
        unpick,
        write_weights,
    )
    from .going_live import Check, doctor, doctor_of, instance, keep_checks, last_checks
    from .lookup import mailing_list, sources
    from .runs import RunOutcome, counts_line, scheduled_run, tend
    from .sends import (
        INSECURE_KEY,
        AlreadySent,
        Mailer,
        MailerError,
        NothingToSend,
        Plan,
        SendReport,
        check_ready,
        finish_unfinished,
        holding_send_lock,
        mailer,
        plan,
        send,
        send_edition,
        send_test,
        signing_key,
    )
    from .site import end_session, provider_events, schema_status, session_live, start_session, upgrade
    from .subscribers import (
        WHY_BLOCKED,
        Added,
        SubscribeRefused,
        add_subscriber,
        confirm_subscription,
        confirmation_link,
        export_subscribers,
        import_subscribers,
        latest_edition_url,
        list_description,
        list_title,
        listing,
        mail_one,
        mailbox,
        read_confirmation,
        read_unsubscribe,
        remove_subscriber,
        send_confirmation,
        send_welcome,
        signup_address,
        subscribe,
        sync_list,
        unsubscribe,
        valid_address,
        valid_name,
    )


def __getattr__(name: str) -> Any:
    """`actions.NAME`: imported from the module the TYPE_CHECKING block names, on first use."""
    if name not in _origins():
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, attribute = _origins()[name]
    found = importlib.import_module(module, __name__)
    value = found if attribute is None else getattr(found, attribute)
    globals()[name] = value
    return value


@cache
def _origins() -> dict[str, tuple[str, str | None]]:
    """name -> (module, attribute; None for a submodule), read from this file's TYPE_CHECKING
    block so that the names are written once."""
    tree = ast.parse(Path(__file__).read_text(encoding="utf-8"))
    block = next(node for node in tree.body if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING")
    found: dict[str, tuple[str, str | None]] = {}
    for node in block.body:
        assert isinstance(node, ast.ImportFrom)
        base = "." * node.level + (node.module or "")
        for alias in node.names:
            found[alias.asname or alias.name] = (f".{alias.name}", None) if base == "." else (base, alias.name)
    return found


__all__ = [
    "approval", "bounces", "clicks", "desk", "notices", "runs", "RunOutcome", "tend",
    "latest_edition_url", "list_description", "list_title", "send_confirmation", "send_welcome",
    "Check", "doctor", "doctor_of", "instance", "keep_checks", "last_checks",
    "FETCH_LOCK", "FEW_PICKS", "INSECURE_KEY", "MAX_NOTE", "MAX_SUBJECT", "WHY_BLOCKED", "Added",
    "AlreadySent", "Blog", "Built", "Mailer", "MailerError", "NothingToSend", "Period", "Plan", "SendReport",
    "NotReady",
    "SubscribeRefused", "Tuning", "Written", "add_subscriber", "archive_html", "as_json", "check_ready",
    "comment_key", "confirm_subscription", "confirmation_link", "counts_line", "dates",
    "draft", "end_session", "exclude", "export_subscribers", "fetch", "find_comments", "finish_unfinished",
    "first_view", "first_words", "frozen", "history", "import_subscribers", "init", "listing", "mail_one", "mailbox",
    "mailer", "mailing_list", "next_commands", "next_edition", "of_edition", "period", "picked", "picks", "pin",
    "plan", "preview", "provider_events", "read_confirmation", "read_unsubscribe",
    "remove_subscriber", "sample_values", "scheduled_run", "scheduling", "schema_status", "send",
    "send_edition", "send_test", "holding_send_lock", "sent_editions", "session_live", "set_note", "set_subject",
    "signing_key", "signup_address", "source_overview", "sources", "start_session", "subscribe", "sync_list",
    "tune", "unpick", "unsubscribe", "upgrade", "valid_address", "valid_name", "write_weights",
]
