"""The doctor's probe of mail mode's mailbox: one message to `LOCAL+probe-TOKEN@DOMAIN`
through the configured relay, read back from the mailbox within a bounded wait and marked
read. When it does not come, one to the plain address tells a provider that has no plus
addresses from a mailbox that is not where the mail goes.

The probe says it is automatic (Auto-Submitted, RFC 3834), so a `digest mailbox` that
reads it first takes it for an auto-reply and changes nothing; it is found by its token
in the subject, read or not.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from ..config import Mailbox as MailboxSettings
from ..config import SendSettings
from ..models import DeliveryStatus, Letter
from ..send.mailers import make_mailer
from ..send.message import Recipient
from ..signals.mailbox import Imap, Mailbox, MailboxError, Maildir

WAIT_SECONDS = 60.0           # how long one probe waits for its message to come back
POLL_SECONDS = 0.5
HEAD_BYTES = 64 * 1024        # what is read of a Maildir message to find the token
CLOCK_SLACK = 120.0           # seconds a Maildir file's time may be before the probe was sent
KIND = "probe"


@dataclass(frozen=True)
class Probe:
    """One message sent to address, and what became of it."""

    address: str
    arrived: bool
    seconds: float                # until it came, or waited in vain
    refused: str = ""             # the relay's answer when it did not take the address


def plus_address(mailbox: MailboxSettings, token: str) -> str:
    local, _, domain = mailbox.address.rpartition("@")
    return f"{local}+{KIND}-{token}@{domain}"


def token() -> str:
    return secrets.token_hex(6)


def probe(settings: SendSettings, box: Mailbox, address: str, wait: float) -> Probe:
    """Mail address through the relay and wait up to wait seconds for it in box; mark it
    read there. MailerError when the relay cannot be used at all."""
    mark = token()
    started, sent_at = time.monotonic(), time.time() - CLOCK_SLACK
    refused = _send(settings, address, mark)
    if refused:
        return Probe(address, False, 0.0, refused)
    while True:
        found = find(box, mark, sent_at)
        if found is not None:
            _mark_read(box, found)
            return Probe(address, True, time.monotonic() - started)
        if time.monotonic() - started >= wait:
            return Probe(address, False, wait)
        time.sleep(POLL_SECONDS)


def _send(settings: SendSettings, address: str, mark: str) -> str:
    """"" when the relay took it, else its answer."""
    letter = Letter(list_name="doctor", subject=f"digest doctor probe {mark}",
                    html=f"<p>{_BODY}</p><p>{mark}</p>", text=f"{_BODY}\n\n{mark}\n")
    to = Recipient(0, address, "", {}, {"Auto-Submitted": "auto-generated", "X-Digest-Probe": mark})
    mailer = make_mailer(settings)
    try:
        for outcome in mailer.send(letter, [to], lambda ids: ids, f"probe-{mark}"):
            if outcome.status != DeliveryStatus.ACCEPTED:
                return f"{outcome.status}: {outcome.error or 'no reason given'}"
    finally:
        mailer.close()
    return ""


_BODY = ("digest doctor sent this to check that mail to this address reaches the mailbox digest reads. "
         "It is marked read; there is nothing to do.")


def find(box: Mailbox, mark: str, since: float = 0.0) -> str | None:
    """The handle of the message carrying mark in box, read or not (None: not there); in a
    Maildir, of the messages read already only those written since (a Unix time)."""
    if isinstance(box, Maildir):
        return _in_maildir(box.path, mark, since)
    if isinstance(box, Imap):
        return _in_imap(box, mark)
    return next((handle for handle, raw in box.messages() if mark.encode() in raw), None)


def _in_maildir(path: Path, mark: str, since: float) -> str | None:
    for sub in ("new", "cur"):
        for file in sorted((path / sub).iterdir()):
            try:
                if sub == "cur" and file.stat().st_mtime < since:      # years of read mail: not looked into
                    continue
                with file.open("rb") as handle:
                    head = handle.read(HEAD_BYTES)
            except OSError:                     # taken meanwhile, or not ours to read
                continue
            if mark.encode() in head:
                return f"{sub}/{file.name}"
    return None


def _in_imap(box: Imap, mark: str) -> str | None:
    from imapclient.exceptions import IMAPClientError
    try:
        box.client.noop()                          # the server looks for new mail in the folder
        uids = box.client.search(["SUBJECT", mark])
    except (OSError, IMAPClientError) as error:
        raise MailboxError(f"{box.where}: the search for the probe failed ({error})") from None
    return str(max(uids)) if uids else None


def _mark_read(box: Mailbox, handle: str) -> None:
    if isinstance(box, Maildir):
        sub, _, name = handle.partition("/")
        if sub == "new":                        # in cur/: another reader marked it already
            box.done(name, kept=False)
        return
    box.done(handle, kept=False)
