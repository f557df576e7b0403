"""Safe first send: a real mail backend (smtp, sendgrid) only sends from a config that
is ready for subscribers. Links in emails must reach them (no localhost or example
`web.base_url`) unless digest runs in mail mode (a `[mailbox] address` and no public
base_url: readers unsubscribe by mail, and the mailbox must then be read); the From must
be a real address, and links must be signed with a real secret (never the public key of
`web.insecure_dev_mode`). Only a backend that declares
it sends to nobody (the outbox: the demo, tests, a look at the .eml files) is never
refused; any other, and a name nobody registered, gets every check (digest/backends.py).
"""

from __future__ import annotations

import os
from email.utils import parseaddr
from urllib.parse import urlsplit

from .. import backends
from ..config import SendSettings
from ..errors import SendError
from ..hosts import example, local, private
from .signing import INSECURE_KEY

PLACEHOLDER_WORDS = ("change", "replace", "placeholder", "secret-key", "your-", "todo")   # xxxx…: too few characters
GUESSABLE_WORDS = ("password", "passw0rd", "qwerty", "azerty", "letmein", "iloveyou", "admin", "welcome")
MIN_SECRET = 16
MIN_DISTINCT = 10          # a secret uses at least this many different characters...
MIN_UNGUESSABLE = 10       # ...and this many remain once runs (abcd, 4321, aaaa) and common words are taken out


class NotReady(SendError):
    """The config would send broken or unsafe mail through a real backend."""

    exit_code = 2


PUBLIC_ADDRESS = "[web].base_url"
MAILBOX_READ = "[mailbox]"


def check_ready_to_send(settings: SendSettings) -> None:
    """Raise NotReady (one line: the setting, the config file, the fix) when a real
    backend would send from a config that is not ready for subscribers. In mail mode a
    local or private base_url is no reason to refuse: readers unsubscribe by mail (the
    List-Unsubscribe mailto and the footer's link), so no link needs to reach digest."""
    if not backends.sends_to_people(settings.backend):
        return
    _refuse(settings, _for_this_mode(settings, problems_for_real_mail(settings)))


def check_ready_for_a_test(settings: SendSettings) -> list[str]:
    """A test copy to the editor's own address may go before the public address exists
    (or, in mail mode, before the mailbox is read): NotReady only for what would make it
    unsafe (an example sender, a weak secret); what only leaves its unsubscribe unanswered
    is returned as warnings."""
    if not backends.sends_to_people(settings.backend):
        return []
    found = _for_this_mode(settings, problems_for_real_mail(settings))
    _refuse(settings, [(key, fix) for key, fix in found if key not in (PUBLIC_ADDRESS, MAILBOX_READ)])
    return [f"{settings.config_file} {key}: {fix.split(';')[0]}: this test copy's links (unsubscribe, view on the "
            "web) point at it; a send to the list is refused until it is public" for key, fix in found
            if key == PUBLIC_ADDRESS] + \
        [f"{settings.config_file} {key}: {fix.split(';')[0]}; a send to the list is refused until it is"
         for key, fix in found if key == MAILBOX_READ]


def check_signed_links(settings: SendSettings) -> None:
    """A single mail a real backend sends (a confirmation, a welcome, a notice to the
    editor) may go from a local or example setup, but never with links anyone can forge:
    NotReady for `insecure_dev_mode` or a weak secret."""
    if not backends.sends_to_people(settings.backend):
        return
    unsafe = ("[web].insecure_dev_mode", "[web].secret_key_env")
    _refuse(settings, [(key, fix) for key, fix in problems_for_real_mail(settings) if key in unsafe])


def _for_this_mode(settings: SendSettings, problems: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The problems that matter for a send: in mail mode, not the public address."""
    return [(key, fix) for key, fix in problems if key != PUBLIC_ADDRESS] if settings.mail_mode else problems


def _refuse(settings: SendSettings, problems: list[tuple[str, str]]) -> None:
    if problems:
        more = f" (then also: {', '.join(key for key, _ in problems[1:])})" if len(problems) > 1 else ""
        key, fix = problems[0]
        raise NotReady(f"{settings.config_file} {key}: {fix}; the {settings.backend} backend sends "
                       f"real mail, so nothing goes out until this is fixed{more}")


def problems_for_real_mail(settings: SendSettings) -> list[tuple[str, str]]:
    """(setting, what is wrong and the fix) for each setting not ready for real mail."""
    web, found = settings, []
    host = (urlsplit(web.base_url).hostname or "").lower()
    if local(host):
        found.append((PUBLIC_ADDRESS, f"{web.base_url} is a local address readers cannot open; set it to "
                                        "the public address of `digest serve` (e.g. https://digest.yourblog.org)"))
    elif private(host):
        found.append((PUBLIC_ADDRESS, f"{web.base_url} is a private-network address readers cannot open; set "
                                        "it to the public address of `digest serve` (e.g. https://digest.yourblog.org)"))
    elif example(host):
        found.append((PUBLIC_ADDRESS, f"{web.base_url} is an example address; set it to the public address "
                                        "of `digest serve` (e.g. https://digest.yourblog.org)"))
    if settings.mail_mode and not settings.mailbox.kind:
        found.append((MAILBOX_READ, f"readers unsubscribe by mail to {settings.mailbox.address}, but no mailbox "
                                    "is read; set [mailbox] imap_host and imap_user (or maildir), so that "
                                    "`digest mailbox` applies what they ask"))
    domain = parseaddr(settings.sending.from_)[1].rpartition("@")[2].lower()
    if example(domain) or local(domain):
        found.append(("[sending].from", f"{settings.sending.from_!r} is an example address; use your own, "
                                        "e.g. 'Your Blog <digest@yourblog.org>'"))
    if web.insecure_dev_mode:
        found.append(("[web].insecure_dev_mode", "is true (links signed with a public key); remove it and "
                                                 f"export {web.secret_key_env}"))
    else:
        problem = secret_problem(os.environ.get(web.secret_key_env, ""))
        if problem:
            found.append(("[web].secret_key_env", f"{web.secret_key_env} {problem}; export a long random secret "
                                                  "(python -c 'import secrets; print(secrets.token_urlsafe(32))')"))
    return found


def secret_problem(secret: str) -> str:
    """What is wrong with a signing secret, or "" when it will do."""
    if not secret:
        return "is not set"
    lowered = secret.lower()
    if secret == INSECURE_KEY or any(word in lowered for word in PLACEHOLDER_WORDS) or len(set(secret)) < 4:
        return "is a placeholder"
    if len(secret) < MIN_SECRET:
        return f"is too short ({len(secret)} characters, at least {MIN_SECRET})"
    if secret.isdigit():
        return "is too easy to guess (only digits)"
    if len(set(secret)) < MIN_DISTINCT:
        return f"is too easy to guess (only {len(set(secret))} different characters, at least {MIN_DISTINCT})"
    if len(_unguessable(lowered)) < MIN_UNGUESSABLE:
        return "is too easy to guess (mostly a common word or a run such as abcdef or 123456)"
    return ""


def _unguessable(secret: str) -> str:
    """What is left of a (lower-case) secret once common words and runs of 3 or more
    characters that step by -1, 0 or +1 (abc, 321, aaa) are taken out."""
    for word in GUESSABLE_WORDS:
        secret = secret.replace(word, "\0")
    kept, i = [], 0
    while i < len(secret):
        end = i + 1
        if end < len(secret) and abs(step := ord(secret[end]) - ord(secret[i])) <= 1:
            while end < len(secret) and ord(secret[end]) - ord(secret[end - 1]) == step:
                end += 1
        if end - i >= 3:
            i = end
        else:
            kept.append(secret[i])
            i += 1
    return "".join(kept).replace("\0", "")
