# ruff: noqa: F401 - the names imported for mypy are the package's own (__all__ is built from _FROM)
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
- `inbox` and `by_mail`: the mailbox read once (`digest mailbox`), and what readers and the
  editor do by mail in mail mode (subscribe, confirm, unsubscribe, approve);
- `runs`: the scheduled run of a list, and the desk's errands every few seconds.
"""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:   # imported on first use, by __getattr__ below: a command loads only the phases it runs
    # (the same names stand in _FROM; tests/test_cli.py keeps the two lists the same)
    from ..send.readiness import NotReady
    from . import approval, bounces, by_mail, clicks, desk, inbox, notices, runs, scheduling
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
        PER_MAILBOX_DAY,
        PER_MAILBOX_HOUR,
        SIGNUPS_AN_HOUR,
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
        signup_mailto,
        signup_snippet,
        subscribe,
        sync_list,
        unsubscribe,
        valid_address,
        valid_name,
    )


_FROM: dict[str, tuple[str, ...]] = {    # module -> the names taken from it (".": submodules)
    "..send.readiness": ("NotReady",),
    ".": ("approval", "bounces", "by_mail", "clicks", "desk", "inbox", "notices", "runs", "scheduling"),
    ".blog": ("FETCH_LOCK", "Blog", "Written", "fetch", "init", "next_commands", "source_overview"),
    ".editions": ("FEW_PICKS", "MAX_NOTE", "MAX_SUBJECT", "Built", "Period", "Tuning", "archive_html", "as_json",
                  "comment_key", "dates", "draft", "exclude", "find_comments", "first_view", "first_words",
                  "frozen", "history", "next_edition", "of_edition", "period", "picked", "picks", "pin", "preview",
                  "sample_values", "sent_editions", "set_note", "set_subject", "tune", "unpick", "write_weights"),
    ".going_live": ("Check", "doctor", "doctor_of", "instance", "keep_checks", "last_checks"),
    ".lookup": ("mailing_list", "sources"),
    ".runs": ("RunOutcome", "counts_line", "scheduled_run", "tend"),
    ".sends": ("INSECURE_KEY", "AlreadySent", "Mailer", "MailerError", "NothingToSend", "Plan", "SendReport",
               "check_ready", "finish_unfinished", "holding_send_lock", "mailer", "plan", "send", "send_edition",
               "send_test", "signing_key"),
    ".site": ("end_session", "provider_events", "schema_status", "session_live", "start_session", "upgrade"),
    ".subscribers": ("PER_MAILBOX_DAY", "PER_MAILBOX_HOUR", "SIGNUPS_AN_HOUR", "WHY_BLOCKED", "Added",
                     "SubscribeRefused", "add_subscriber", "confirm_subscription",
                     "confirmation_link", "export_subscribers", "import_subscribers", "latest_edition_url",
                     "list_description", "list_title", "listing", "mail_one", "mailbox", "read_confirmation",
                     "read_unsubscribe", "remove_subscriber", "send_confirmation", "send_welcome", "signup_address",
                     "signup_mailto", "signup_snippet", "subscribe", "sync_list", "unsubscribe", "valid_address",
                     "valid_name"),
}
__all__ = [name for names in _FROM.values() for name in names]
_ORIGIN = {name: module for module, names in _FROM.items() for name in names}

if not TYPE_CHECKING:       # for mypy the imports above say what each name is (a typo stays an error)
    def __getattr__(name: str) -> Any:
        """`actions.NAME`, imported from its module on each use (sys.modules keeps the
        module: after the first, a look-up); nothing is kept here, so that what a test
        patches in a module is what the fronts find, and no more."""
        module = _ORIGIN.get(name)
        if module is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        if module == ".":
            return importlib.import_module(f".{name}", __name__)
        return getattr(importlib.import_module(module, __name__), name)
