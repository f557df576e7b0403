"""Safe first send: a real mail backend (smtp, sendgrid) only sends from a config that
is ready for readers. Links in emails must reach them (no localhost or example
`web.base_url`), the From must be a real address, and links must be signed with a real
secret (never the public key of `web.insecure_dev_mode`). The outbox backend (the demo,
tests, a look at the .eml files) is never refused.
"""

from __future__ import annotations

import ipaddress
import os
from email.utils import parseaddr
from pathlib import Path
from urllib.parse import urlsplit

from .config import Settings
from .errors import DigestError
from .signing import INSECURE_KEY

REAL_BACKENDS = ("smtp", "sendgrid")
EXAMPLE_DOMAINS = ("example.org", "example.com", "example.net")
RESERVED_SUFFIXES = ("example", "test", "invalid", "localhost", "local")     # RFC 2606, RFC 6762
PLACEHOLDER_WORDS = ("change", "replace", "placeholder", "secret-key", "your-", "xxx", "todo")
MIN_SECRET = 16


class NotReady(DigestError):
    """The config would send broken or unsafe mail through a real backend."""

    exit_code = 2


def config_file(settings: Settings) -> str:
    """The settings file actually read, for messages."""
    return str(Path(settings.root) / settings.origin)


def check_ready_to_send(settings: Settings) -> None:
    """Raise NotReady (one line: the setting, the config file, the fix) when a real
    backend would send from a config that is not ready for readers."""
    if settings.sending.backend not in REAL_BACKENDS:
        return
    problems = problems_for_real_mail(settings)
    if problems:
        more = f" (then also: {', '.join(key for key, _ in problems[1:])})" if len(problems) > 1 else ""
        key, fix = problems[0]
        raise NotReady(f"{config_file(settings)} {key}: {fix}; the {settings.sending.backend} backend sends "
                       f"real mail, so nothing goes out until this is fixed{more}")


def problems_for_real_mail(settings: Settings) -> list[tuple[str, str]]:
    """(setting, what is wrong and the fix) for each setting not ready for real mail."""
    web, found = settings.web, []
    host = (urlsplit(web.base_url).hostname or "").lower()
    if _local(host):
        found.append(("[web].base_url", f"{web.base_url} is a local address readers cannot open; set it to "
                                        "the public address of `digest serve` (e.g. https://digest.yourblog.org)"))
    elif _example(host):
        found.append(("[web].base_url", f"{web.base_url} is an example address; set it to the public address "
                                        "of `digest serve` (e.g. https://digest.yourblog.org)"))
    domain = parseaddr(settings.sending.from_)[1].rpartition("@")[2].lower()
    if _example(domain) or _local(domain):
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
    return ""


def _local(host: str) -> bool:
    if host in ("localhost", "") or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified or address.is_link_local


def _example(host: str) -> bool:
    host = host.rstrip(".")
    return (any(host == d or host.endswith("." + d) for d in EXAMPLE_DOMAINS)
            or host.rpartition(".")[2] in RESERVED_SUFFIXES)
