"""`digest doctor`: every check a real send depends on, each with what was found and the fix.

The checks run side by side, each with its own few seconds for the network, and every
one runs whatever the others find: an unreachable relay never hides the DNS records.
The names (`config`, `secret`, `editor`, `database`, `spf`, `dkim`, `dmarc`, `relay`,
`public_url`, `bounces`, `scheduler`) are part of the interface scripts rely on.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parseaddr
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from .. import config
from ..config import Settings
from ..db import Database, NoDatabase, safe_url
from ..errors import ConfigError, DigestError
from ..send.mailers import MailerError
from ..send.mailers.smtp import SmtpMailer
from ..send.readiness import PUBLIC_ADDRESS, problems_for_real_mail, secret_problem
from ..send.signing import instance_id
from . import dns

NAMES = ("config", "secret", "editor", "database", "spf", "dkim", "dmarc", "relay", "public_url", "bounces",
         "scheduler")
TIMEOUT = 5.0                    # seconds for one network check (a connection, a request)
SCHEDULER_LOCK = "schedule"
HEARTBEAT_FRESH = timedelta(minutes=5)
SENDGRID_SELECTORS = ("s1", "s2")
MIN_PASSWORD = 12


@dataclass(frozen=True)
class Check:
    check: str
    ok: bool
    detail: str
    fix: str = ""

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def examine(config_path: Path, environ: Mapping[str, str] | None = None,
            now: datetime | None = None) -> tuple[Settings | None, list[Check]]:
    """Load the settings, then run every check: (the settings, or None, and the checks in order)."""
    try:
        settings = config.load(config_path)
    except ConfigError as error:
        fix = f"fix the key named in {config_path}, then run `digest doctor` again"
        first = Check("config", False, "; ".join(error.problems), fix)
        return None, [first] + [Check(name, False, "not checked: the config does not load", fix) for name in NAMES[1:]]
    return settings, run(settings, environ, now)


def run(settings: Settings, environ: Mapping[str, str] | None = None, now: datetime | None = None) -> list[Check]:
    """Every check of the settings (the config loaded), side by side."""
    env = dict(os.environ if environ is None else environ)
    moment = now or datetime.now(UTC)
    lookups = DnsChecks(settings, dns.resolver(env.get("DIGEST_NAMESERVER", "")))
    steps: list[Callable[[], Check]] = [
        lambda: _config(settings), lambda: _secret(settings, env), lambda: _editor(settings, env),
        lambda: _database(settings), lookups.spf, lookups.dkim, lookups.dmarc, lambda: _relay(settings, env),
        lambda: _public_url(settings, env, lookups), lambda: _bounces(settings, env),
        lambda: _scheduler(settings, moment)]
    with ThreadPoolExecutor(max_workers=len(steps)) as pool:
        return list(pool.map(_guarded, NAMES, steps))


def _guarded(name: str, step: Callable[[], Check]) -> Check:
    """A check that breaks in a way nobody foresaw fails alone, saying so."""
    try:
        return step()
    except DigestError as error:
        return Check(name, False, str(error), "fix what it names, then run `digest doctor` again")
    except Exception as error:  # noqa: BLE001 - one broken check must not hide the others
        return Check(name, False, f"the check itself failed ({error.__class__.__name__}: {error})",
                     "run `digest --debug doctor` and report it")


def from_domain(settings: Settings) -> str:
    return parseaddr(settings.sending.from_)[1].rpartition("@")[2].lower().rstrip(".")


# ------------------------------------------------------------------ the settings and the machine

def _config(settings: Settings) -> Check:
    listed = ", ".join(item.name for item in settings.lists) or "none"
    return Check("config", True, f"{settings.config_file}: {len(settings.sources)} source(s), lists: {listed}, "
                                 f"backend {settings.sending.backend}")


def _secret(settings: Settings, env: Mapping[str, str]) -> Check:
    name = settings.web.secret_key_env
    fix = f"export {name}=$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))') where digest runs"
    if settings.web.insecure_dev_mode:
        return Check("secret", False, "[web].insecure_dev_mode is true: links are signed with a public key",
                     f"remove insecure_dev_mode from [web] and {fix}")
    problem = secret_problem(env.get(name, ""))
    if problem:
        return Check("secret", False, f"{name} {problem}", fix)
    return Check("secret", True, f"{name} is set and strong")


def _editor(settings: Settings, env: Mapping[str, str]) -> Check:
    name = settings.web.editor_password_env
    password = env.get(name, "")
    fix = f"export {name}=<a password of at least {MIN_PASSWORD} characters> where `digest serve` runs"
    if not password:
        return Check("editor", False, f"{name} is not set: nobody can log in to the web editor", fix)
    if len(password) < MIN_PASSWORD:
        return Check("editor", False, f"{name} is only {len(password)} characters", fix)
    return Check("editor", True, f"{name} is set ({len(password)} characters)")


def _database(settings: Settings) -> Check:
    url = settings.database_url()
    try:
        with Database.open(url, upgrade=False, read_only=True) as db:
            state = db.schema_state()
    except NoDatabase:
        return Check("database", False, f"{safe_url(url)}: no database there yet",
                     "run `digest fetch` (every command creates and upgrades it)")
    except DigestError as error:
        return Check("database", False, f"{safe_url(url)}: {error}", "check [database].url and the server")
    if not state.up_to_date:
        return Check("database", False, f"{safe_url(url)}: {state.describe()}", "run `digest db upgrade`")
    return Check("database", True, f"{safe_url(url)}: {state.describe()}")


def _scheduler(settings: Settings, now: datetime) -> Check:
    fix = ("run `digest schedule` as a service (deploy/systemd/digest-schedule.service, or the schedule service "
           "of deploy/compose.yaml); see docs/going-live.md")
    try:
        with Database.open(settings.database_url(), upgrade=False, read_only=True) as db:
            held = db.locks.state(SCHEDULER_LOCK)
    except DigestError as error:
        return Check("scheduler", False, f"cannot tell: {error}", "fix the database check first")
    if held is None:
        return Check("scheduler", False, "no scheduler is running for this database", fix)
    holder, beat, gone = held
    age = now - beat
    if gone or age > HEARTBEAT_FRESH:
        return Check("scheduler", False, f"the scheduler {holder} last beat {_ago(age)} ago and has stopped", fix)
    return Check("scheduler", True, f"running ({holder}), last heartbeat {_ago(age)} ago")


def _ago(age: timedelta) -> str:
    seconds = max(0, int(age.total_seconds()))
    return f"{seconds} s" if seconds < 120 else f"{seconds // 60} min" if seconds < 7200 else f"{seconds // 3600} h"


# ------------------------------------------------------------------ DNS: SPF, DKIM, DMARC

class DnsChecks:
    """The sender domain's records, looked up through one resolver."""

    def __init__(self, settings: Settings, resolver: Any) -> None:
        self.settings, self.resolver = settings, resolver
        self.domain = from_domain(settings)
        self.backend = settings.sending.backend

    def lookups(self) -> dns.Lookups:
        return dns.Lookups(self.resolver)

    def spf(self) -> Check:
        try:
            return self._spf(self.lookups())
        except dns.LookupFailed as error:
            return Check("spf", False, str(error), "check the domain's DNS (or DIGEST_NAMESERVER)")

    def _spf(self, lookups: dns.Lookups) -> Check:
        record = dns.spf_record(lookups, self.domain)
        needed = self._spf_needed(lookups)
        if isinstance(needed, Check):
            return needed
        mechanism, allowed = needed
        if record is not None and allowed(record):
            return Check("spf", True, f"{self.domain}: \"{record}\" allows the {self.backend} relay")
        published = _with_mechanism(record, mechanism)
        said = f"\"{record}\" does not allow the {self.backend} relay" if record else "no SPF record"
        return Check("spf", False, f"{self.domain}: {said}", f'publish at {self.domain}: TXT "{published}"')

    def _spf_needed(self, lookups: dns.Lookups) -> tuple[str, Callable[[str], bool]] | Check:
        """The mechanism the relay needs, and how to tell a record has it (or a failed check)."""
        sending = self.settings.sending
        include = "sendgrid.net" if self.backend == "sendgrid" else sending.spf_include
        if self.backend == "outbox":
            return Check("spf", False, "the outbox backend sends nothing, so there is no relay to allow",
                         'choose a relay: [sending] backend = "smtp" or "sendgrid"')
        if include:
            return f"include:{include}", lambda record: _includes(lookups, record, include)
        host = sending.smtp.host
        addresses = [a for a in _addresses(lookups, host) if a.is_global]
        if not addresses:
            return Check("spf", False, f"the relay {host} is this machine or a private one, so SPF cannot be "
                                       "checked against its public address",
                         "set [sending].spf_include to the include your mail provider names, or check the "
                         "record by hand")
        verdicts = lambda record: all(dns.spf_allows(self.lookups(), self.domain, a) == "pass"  # noqa: E731
                                      for a in addresses)
        return " ".join(f"ip{a.version}:{a}" for a in addresses), verdicts

    def dkim(self) -> Check:
        selectors = [self.settings.sending.dkim_selector] if self.settings.sending.dkim_selector else (
            list(SENDGRID_SELECTORS) if self.backend == "sendgrid" else [])
        if not selectors:
            return Check("dkim", False, "no DKIM selector to look up",
                         "set [sending].dkim_selector to the selector your relay signs with (the s= of a "
                         "DKIM-Signature in a message it sent)")
        try:
            found = {selector: dns.dkim_key(self.lookups(), selector, self.domain) for selector in selectors}
        except dns.LookupFailed as error:
            return Check("dkim", False, str(error), "check the domain's DNS (or DIGEST_NAMESERVER)")
        missing = [s for s, (_, record) in found.items() if record is None or not dns.tags(record).get("p")]
        if missing:
            return Check("dkim", False, f"{self.domain}: no DKIM key at "
                                        f"{', '.join(f'{s}._domainkey.{self.domain}' for s in missing)}",
                         self._dkim_fix(missing))
        where = "; ".join(f"{s}._domainkey.{self.domain}" + (f" -> {name}" if name != f"{s}._domainkey.{self.domain}"
                                                                 else "") for s, (name, _) in found.items())
        return Check("dkim", True, f"{where}: v=DKIM1 key found")

    def _dkim_fix(self, missing: list[str]) -> str:
        names = " and ".join(f"{s}._domainkey.{self.domain}" for s in missing)
        if self.backend == "sendgrid" and not self.settings.sending.dkim_selector:
            return (f"in SendGrid, Settings > Sender Authentication > Authenticate your domain ({self.domain}), "
                    f"then publish the CNAME records it shows: {names}")
        return f'publish at {names}: TXT "v=DKIM1; k=rsa; p=<the public key your relay gives you>"'

    def dmarc(self) -> Check:
        try:
            lookups = self.lookups()
            where, record = dns.dmarc_record(lookups, self.domain)
            signed = self.dkim().ok
        except dns.LookupFailed as error:
            return Check("dmarc", False, str(error), "check the domain's DNS (or DIGEST_NAMESERVER)")
        fix = f'publish at _dmarc.{self.domain}: TXT "v=DMARC1; p=none; rua=mailto:dmarc@{self.domain}"'
        if record is None:
            return Check("dmarc", False, f"{self.domain}: no DMARC record (Gmail and Yahoo want one from bulk "
                                         "senders)", fix)
        policy = dns.tags(record).get("p", "")
        if policy not in ("none", "quarantine", "reject"):
            return Check("dmarc", False, f"_dmarc.{where}: \"{record}\" has no valid p= policy", fix)
        if not signed:
            return Check("dmarc", False, f"_dmarc.{where}: p={policy}, but the From domain {self.domain} does not "
                                         "align: no DKIM key signs as it, so DMARC fails for every message",
                         "publish the DKIM key (see the dkim check)")
        return Check("dmarc", True, f"_dmarc.{where}: p={policy}; the From domain aligns (DKIM signs as "
                                    f"{self.domain})")


def _includes(lookups: dns.Lookups, record: str, include: str, depth: int = 0) -> bool:
    """Whether the record includes `include`, itself or through the records it includes."""
    if dns.spf_includes(record, include):
        return True
    if depth >= 3:
        return False
    for term in record.split():
        if term.lower().lstrip("+").startswith("include:"):
            inner = dns.spf_record(lookups, term.split(":", 1)[1])
            if inner and _includes(lookups, inner, include, depth + 1):
                return True
    return False


def _addresses(lookups: dns.Lookups, host: str) -> list[dns.IPAddress]:
    try:
        return [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        return [] if host in ("localhost", "") else lookups.addresses(host)


def _with_mechanism(record: str | None, mechanism: str) -> str:
    """The record with the mechanism added before its `all` (or a new record)."""
    if record is None:
        return f"v=spf1 {mechanism} ~all"
    terms = record.split()
    last = next((i for i, term in enumerate(terms) if term.lower().lstrip("+-~?") == "all"), len(terms))
    return " ".join([*terms[:last], mechanism, *terms[last:]])


# ------------------------------------------------------------------ the relay, the public address, bounces

def _relay(settings: Settings, env: Mapping[str, str]) -> Check:
    backend = settings.sending.backend
    if backend == "outbox":
        return Check("relay", False, "the outbox backend only writes .eml files: no reader gets anything",
                     'choose a relay: [sending] backend = "smtp" (with [sending.smtp]) or "sendgrid"')
    if backend == "sendgrid":
        return _sendgrid(settings, env)
    try:
        said = SmtpMailer(settings.send_settings(), timeout=TIMEOUT).probe()
    except MailerError as error:
        return Check("relay", False, str(error).split("; ")[0], "; ".join(str(error).split("; ")[1:]) or
                     "check [sending.smtp]")
    return Check("relay", True, f"{said}; no mail sent")


def _sendgrid(settings: Settings, env: Mapping[str, str]) -> Check:
    sendgrid = settings.sending.sendgrid
    key = env.get(sendgrid.api_key_env, "")
    if not key:
        return Check("relay", False, f"{sendgrid.api_key_env} is not set",
                     f"export {sendgrid.api_key_env}=<an API key with the Mail Send permission>")
    try:
        answer = httpx.get(f"{sendgrid.host}/v3/scopes", headers={"Authorization": f"Bearer {key}"}, timeout=TIMEOUT)
    except httpx.HTTPError as error:
        return Check("relay", False, f"SendGrid at {sendgrid.host} did not answer ({error.__class__.__name__})",
                     "check the network and [sending.sendgrid].host")
    if answer.status_code in (401, 403):
        return Check("relay", False, f"SendGrid refused the key in {sendgrid.api_key_env} ({answer.status_code})",
                     "create an API key with the Mail Send permission and export it")
    scopes = answer.json().get("scopes", []) if answer.status_code == 200 else []
    if "mail.send" not in scopes:
        return Check("relay", False, f"the key in {sendgrid.api_key_env} cannot send (scopes: "
                                     f"{', '.join(scopes[:8]) or 'none'})",
                     "give the key the Mail Send permission (Settings > API Keys)")
    return Check("relay", True, f"SendGrid: the key in {sendgrid.api_key_env} may send (mail.send); no mail sent")


def _public_url(settings: Settings, env: Mapping[str, str], lookups: DnsChecks) -> Check:
    base = settings.web.base_url
    problems = [fix for key, fix in problems_for_real_mail(settings.send_settings()) if key == PUBLIC_ADDRESS]
    if problems:
        return Check("public_url", False, problems[0].split(";")[0],
                     problems[0].split("; ", 1)[-1].replace("set it to", f"set {PUBLIC_ADDRESS} to"))
    if not base.startswith("https://"):
        return Check("public_url", False, f"{base} is not https: links in mail and the editor's login would "
                                          "travel in the clear",
                     "put Caddy or nginx with a certificate in front of `digest serve` (deploy/) and set "
                     "[web].base_url to its https:// address")
    key = env.get(settings.web.secret_key_env, "")
    if not key:
        return Check("public_url", False, f"cannot tell who answers at {base} without {settings.web.secret_key_env}",
                     "fix the secret check first")
    try:
        answer = _get_health(base, lookups.resolver)
    except (httpx.HTTPError, dns.LookupFailed, OSError) as error:
        return Check("public_url", False, f"{base}/health did not answer ({_why(error)})",
                     "start `digest serve` behind the proxy and check that the name points at this machine")
    expected = instance_id(key, settings.database_url())
    if answer.status_code != 200 or _json(answer).get("instance") != expected:
        return Check("public_url", False, f"{base}/health answered ({answer.status_code}), but not as this digest "
                                          "(another instance, secret or database)",
                     "point the name at the machine running this digest's `digest serve`")
    return Check("public_url", True, f"{base} reaches this digest over https")


def _get_health(base: str, resolver: Any) -> httpx.Response:
    """GET base/health, the name resolved through DIGEST_NAMESERVER when it is set (the
    certificate is still checked against the name)."""
    url = f"{base}/health"
    if not os.environ.get("DIGEST_NAMESERVER"):
        return httpx.get(url, timeout=TIMEOUT)
    parts = urlsplit(url)
    host = parts.hostname or ""
    address = dns.Lookups(resolver).addresses(host)
    if not address:
        raise dns.LookupFailed(f"{host} has no address")
    netloc = f"[{address[0]}]" if address[0].version == 6 else str(address[0])
    target = parts._replace(netloc=f"{netloc}:{parts.port}" if parts.port else netloc).geturl()
    with httpx.Client(timeout=TIMEOUT) as client:
        return client.request("GET", target, headers={"Host": parts.netloc}, extensions={"sni_hostname": host})


def _json(answer: httpx.Response) -> dict[str, Any]:
    try:
        found = answer.json()
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def _why(error: BaseException) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"{error.__class__.__name__}: {text}"[:200] if text else error.__class__.__name__


def _bounces(settings: Settings, env: Mapping[str, str]) -> Check:
    backend, web = settings.sending.backend, settings.web
    if backend == "sendgrid":
        if env.get(web.webhook_public_key_env):
            return Check("bounces", True, f"SendGrid's signed Event Webhook is read ({web.webhook_public_key_env} "
                                          f"set): bounces and spam reports suppress the address")
        return Check("bounces", False, "nothing reads SendGrid's bounces and spam reports",
                     "in SendGrid, Settings > Mail Settings > Event Webhook: POST URL "
                     f"{web.base_url}/webhooks/sendgrid, Signature Verification on; then export "
                     f"{web.webhook_public_key_env}=<its verification key>")
    if backend == "smtp":
        return Check("bounces", False, f"bounces and complaints from the relay go to {settings.sending.from_} "
                                       "and nobody reads them for digest",
                     "read that mailbox and remove dead addresses with `digest subscribers remove` until digest "
                     "reads a bounce mailbox itself; or send through SendGrid, whose webhook digest reads")
    return Check("bounces", False, "the outbox backend sends nothing, so nothing bounces",
                 'choose a relay: [sending] backend = "smtp" or "sendgrid"')
