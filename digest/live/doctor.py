"""`digest doctor`: every check a real send depends on, each with what was found and the fix.

The checks run side by side, each with its own few seconds for the network, and every
one runs whatever the others find: an unreachable relay never hides the DNS records.
The names (`config`, `secret`, `editor`, `database`, `spf`, `dkim`, `dmarc`, `relay`,
`public_url`, `bounces`, `scheduler`, `approval`, `mailbox`, `limits`) are part of the
interface scripts rely on. The checks of mail mode and approval are in mail_checks.py.
"""

from __future__ import annotations

import ipaddress
import json
import os
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from email.utils import parseaddr
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from .. import backends, config
from ..backends import Backend, Events
from ..config import Settings
from ..db import Database, NoDatabase, safe_url
from ..errors import ConfigError, DigestError
from ..send.mailers import MailerError
from ..send.readiness import PUBLIC_ADDRESS, problems_for_real_mail, secret_problem
from ..send.signing import instance_id
from ..signals.mailbox import MailboxError, open_mailbox
from . import dns, mail_checks
from . import probe as probing
from .check import Check

NAMES = ("config", "secret", "editor", "database", "spf", "dkim", "dmarc", "relay", "public_url", "bounces",
         "scheduler", "approval", "mailbox", "limits")
TIMEOUT = 5.0                    # seconds for one network operation (a connection, a read)
CHECK_SECONDS = 15.0             # the most one check may take in all
MAX_BODY = 64 * 1024             # bytes read of an answer (/health)
SCHEDULER_LOCK = "schedule"
HEARTBEAT_FRESH = timedelta(minutes=5)
MIN_PASSWORD = 12


def examine(config_path: Path, environ: Mapping[str, str] | None = None,
            now: datetime | None = None, probe: bool = True) -> tuple[Settings | None, list[Check]]:
    """Load the settings, then run every check: (the settings, or None, and the checks in order)."""
    try:
        settings = config.load(config_path)
    except ConfigError as error:
        fix = ("create it with `digest init URL` (or pass --config PATH)" if not Path(config_path).exists() else
               f"fix what is named in {config_path}, then run `digest doctor` again")
        first = Check("config", False, "; ".join(error.problems), fix)
        return None, [first] + [Check(name, False, "not checked: the config does not load", fix) for name in NAMES[1:]]
    return settings, run(settings, environ, now, probe)


def run(settings: Settings, environ: Mapping[str, str] | None = None, now: datetime | None = None,
        probe: bool = True) -> list[Check]:
    """Every check of the settings (the config loaded), side by side, each in a thread of
    its own that the doctor waits for CHECK_SECONDS at most (a server that trickles one
    byte a second under every socket timeout is a failed check, not a hung doctor); the
    mailbox's probe, when it runs (probe: the scheduler's check at its start mails nothing),
    has its waits for the message besides."""
    env = dict(os.environ if environ is None else environ)
    moment = now or datetime.now(UTC)
    try:
        lookups: DnsChecks | Check = DnsChecks(settings, dns.resolver(env.get("DIGEST_NAMESERVER", "")),
                                               env.get("DIGEST_NAMESERVER", ""))
    except dns.LookupFailed as error:
        lookups = Check("", False, str(error), "fix or unset DIGEST_NAMESERVER")
    steps: list[Callable[[], Check]] = [
        lambda: _config(settings), lambda: _secret(settings, env), lambda: _editor(settings, env),
        lambda: _database(settings), *_dns_steps(lookups), lambda: _relay(settings, env),
        lambda: _public_url(settings, env, lookups), lambda: _bounces(settings, env, lookups),
        lambda: _scheduler(settings, moment), lambda: mail_checks.approval(settings),
        lambda: mail_checks.mailbox(settings, env, probe), lambda: mail_checks.limits(settings)]
    budget = {name: CHECK_SECONDS + (2 * probing.WAIT_SECONDS if name == "mailbox" and probe else 0) for name in NAMES}
    return _side_by_side(dict(zip(NAMES, steps, strict=True)), budget)


def _side_by_side(steps: dict[str, Callable[[], Check]], budget: dict[str, float]) -> list[Check]:
    """Each step in a thread of its own, waited for its budget (in seconds from the start)."""
    found: dict[str, Check] = {}
    threads = {name: threading.Thread(target=lambda n=name, s=step: found.__setitem__(n, _guarded(n, s)),
                                      daemon=True, name=f"doctor {name}") for name, step in steps.items()}
    for thread in threads.values():
        thread.start()
    started = time.monotonic()
    for name, thread in threads.items():
        thread.join(max(0.0, started + budget[name] - time.monotonic()))
    return [found.get(name) or Check(name, False, f"no answer within {budget[name]:g} s (a server that hangs or "
                                                  "trickles)", "check the server this looks at, then run "
                                                               "`digest doctor` again") for name in steps]


def _dns_steps(lookups: DnsChecks | Check) -> list[Callable[[], Check]]:
    if isinstance(lookups, Check):
        failed = lookups
        return [partial(Check, name, False, failed.detail, failed.fix) for name in ("spf", "dkim", "dmarc")]
    return [lookups.spf, lookups.dkim, lookups.dmarc]


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
    if not password and settings.mail_mode:
        return Check("editor", True, f"{name} is not set: the web desk (for this machine only, in mail mode) "
                                     "refuses every login until it is; approvals and all else go by mail")
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
        folder = url.startswith("sqlite:///") and Path(url[len("sqlite:///"):]).is_dir()
        return Check("database", False, f"{safe_url(url)}: " + ("a folder, not a database" if folder else
                                                                "no database there yet"),
                     "point [database].url at a file" if folder else
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

    def __init__(self, settings: Settings, resolver: Any, nameserver: str = "") -> None:
        self.settings, self.resolver, self.nameserver = settings, resolver, nameserver
        self.domain = from_domain(settings)
        self.backend = settings.sending.backend
        self.declared = backends.get(self.backend)
        self.provider = mail_checks.provider_of(settings)

    def lookups(self) -> dns.Lookups:
        return dns.Lookups(self.resolver)

    def _providers_own(self, name: str) -> Check | None:
        """The From domain is the relay provider's own (gmail.com through smtp.gmail.com):
        the provider publishes its SPF and DMARC and signs as it; nothing to publish."""
        if self.provider is None or not self.provider.owns(self.domain):
            return None
        said = {"spf": f"{self.provider.name} publishes the SPF record of its own domain",
                "dkim": f"{self.provider.name} signs mail of its own domain with DKIM",
                "dmarc": f"the DMARC record of its own domain is {self.provider.name}'s"}[name]
        return Check(name, True, f"{self.domain}: {said}; nothing to publish")

    def spf(self) -> Check:
        own = self._providers_own("spf")
        if own is not None:
            return own
        try:
            return self._spf(self.lookups())
        except dns.LookupFailed as error:
            return Check("spf", False, str(error), "check the domain's DNS (or DIGEST_NAMESERVER)")

    def _spf(self, lookups: dns.Lookups) -> Check:
        try:
            record = dns.spf_record(lookups, self.domain)
        except dns.PermError as error:
            return Check("spf", False, f"{self.domain}: {error}", "publish one v=spf1 record only")
        needed = self._spf_needed(lookups)
        if isinstance(needed, Check):
            return needed
        mechanism, allowed = needed
        problem = allowed(record) if record is not None else "no SPF record"
        if problem is None:
            return Check("spf", True, f"{self.domain}: \"{record}\" allows the {self.backend} relay")
        fix = (f'publish at {self.domain}: TXT "{_with_mechanism(record, mechanism)}"' if "permerror" not in problem
               else f"repair the record so that receivers can read it (what the permerror names), keeping {mechanism}")
        return Check("spf", False, f"{self.domain}: {problem}", fix)

    def _spf_needed(self, lookups: dns.Lookups) -> tuple[str, Callable[[str], str | None]] | Check:
        """The mechanism the relay needs, and what is wrong with a record (None: it allows
        the relay), or a failed check when there is nothing to look for."""
        sending, relay = self.settings.sending, self.declared.relay
        if not self.declared.real:
            return Check("spf", False, f"the {self.backend} backend sends nothing, so there is no relay to allow",
                         choose_a_relay())
        include = relay.spf_include(sending) or (self.provider.spf_include if self.provider else "")
        if include:
            return f"include:{include}", lambda record: self._includes(include, record)
        if relay.host is None:
            return Check("spf", False, f"the {self.backend} backend names no include and no relay for SPF to allow",
                         "set [sending].spf_include to the include your mail provider names")
        host = relay.host(sending)
        addresses = [a for a in _addresses(lookups, host) if a.is_global]
        if not addresses:
            return Check("spf", False, f"the relay {host} is this machine or a private one, so SPF cannot be "
                                       "checked against its public address",
                         "set [sending].spf_include to the include your mail provider names, or check the "
                         "record by hand")
        return " ".join(f"ip{a.version}:{a}" for a in addresses), lambda record: self._addresses_pass(
            record, addresses)

    def _includes(self, include: str, record: str) -> str | None:
        verdict, walk = dns.spf_check(self.lookups(), self.domain)
        if verdict.startswith("permerror"):
            return f"\"{record}\": {verdict}"
        return None if include.lower() in walk.includes else f"\"{record}\" does not allow the {self.backend} relay"

    def _addresses_pass(self, record: str, addresses: list[dns.IPAddress]) -> str | None:
        for address in addresses:
            verdict, _ = dns.spf_check(self.lookups(), self.domain, address)
            if verdict != "pass":
                said = verdict if verdict.startswith("permerror") else f"{verdict} for {address}"
                return f"\"{record}\" does not allow the {self.backend} relay ({said})"
        return None

    def dkim(self) -> Check:
        own = self._providers_own("dkim")
        if own is not None:
            return own
        selectors = ([self.settings.sending.dkim_selector] if self.settings.sending.dkim_selector else
                     list(self.declared.relay.dkim_selectors or (self.provider.dkim_selectors if self.provider
                                                                 else ())))
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
        if self.declared.relay.dkim_setup and not self.settings.sending.dkim_selector:
            return self.declared.relay.dkim_setup.format(domain=self.domain, names=names)
        return f'publish at {names}: TXT "v=DKIM1; k=rsa; p=<the public key your relay gives you>"'

    def dmarc(self) -> Check:
        own = self._providers_own("dmarc")
        if own is not None:
            return own
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

def choose_a_relay() -> str:
    return f"choose a relay: [sending] backend = {backends.choices(real_only=True)}"


def _relay(settings: Settings, env: Mapping[str, str]) -> Check:
    """The relay reached as the backend declares (its probe), nothing sent."""
    backend = backends.get(settings.sending.backend)
    if not backend.real:
        return Check("relay", False, f"the {backend.name} backend sends nothing to readers", choose_a_relay())
    if backend.relay.probe is None:
        return Check("relay", False, f"the {backend.name} backend declares no way to check its relay",
                     "send yourself a test copy (`digest send LIST --to you@yourdomain`) and check that it arrives")
    try:
        said = backend.relay.probe(settings.send_settings(), env, TIMEOUT)
    except MailerError as error:
        detail, _, fix = str(error).partition("; ")
        return Check("relay", False, detail, fix or f"check [sending.{backend.name}]")
    return Check("relay", True, f"{said}; no mail sent")


def _public_url(settings: Settings, env: Mapping[str, str], lookups: DnsChecks | Check) -> Check:
    if settings.mail_mode:
        return mail_checks.public_url_by_mail(settings)
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
    if isinstance(lookups, Check):
        return Check("public_url", False, lookups.detail, lookups.fix)
    try:
        status, body = _get_health(base, lookups)
    except (httpx.HTTPError, dns.LookupFailed, OSError) as error:
        return Check("public_url", False, f"{base}/health did not answer ({_why(error)})",
                     "start `digest serve` behind the proxy and check that the name points at this machine")
    expected = instance_id(key, settings.database_url())
    if status != 200 or _json(body).get("instance") != expected:
        return Check("public_url", False, f"{base}/health answered ({status}), but not as this digest "
                                          "(another instance, secret or database)",
                     "point the name at the machine running this digest's `digest serve`")
    return Check("public_url", True, f"{base} reaches this digest over https")


def _get_health(base: str, lookups: DnsChecks) -> tuple[int, bytes]:
    """GET base/health, the name resolved through DIGEST_NAMESERVER when it is set (the
    certificate is still checked against the name)."""
    url = f"{base}/health"
    if not lookups.nameserver:
        return _bounded_get(url, {})
    parts = urlsplit(url)
    host = parts.hostname or ""
    address = dns.Lookups(lookups.resolver).addresses(host)
    if not address:
        raise dns.LookupFailed(f"{host} has no address")
    netloc = f"[{address[0]}]" if address[0].version == 6 else str(address[0])
    target = parts._replace(netloc=f"{netloc}:{parts.port}" if parts.port else netloc).geturl()
    return _bounded_get(target, {"Host": parts.netloc}, {"sni_hostname": host})


def _bounded_get(url: str, headers: dict[str, str], extensions: dict[str, Any] | None = None) -> tuple[int, bytes]:
    """(status, at most MAX_BODY bytes of the body): a server cannot make the doctor read gigabytes."""
    with httpx.Client(timeout=TIMEOUT) as client:
        with client.stream("GET", url, headers=headers, extensions=extensions or {}) as answer:
            body = b""
            for chunk in answer.iter_bytes():
                body += chunk
                if len(body) >= MAX_BODY:
                    break
            return answer.status_code, body[:MAX_BODY]


def _json(body: bytes) -> dict[str, Any]:
    try:
        found = json.loads(body)
    except (ValueError, RecursionError):
        return {}
    return found if isinstance(found, dict) else {}


def _why(error: BaseException) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"{error.__class__.__name__}: {text}"[:200] if text else error.__class__.__name__


def _bounces(settings: Settings, env: Mapping[str, str], lookups: DnsChecks | Check) -> Check:
    """Something reads the backend's bounces and complaints: its event route, or the bounce
    mailbox ([mailbox]) of a backend whose bounces come back by mail."""
    backend = backends.get(settings.sending.backend)
    if backend.bounce_mailbox and settings.mailbox.kind:
        return _bounce_mailbox(settings, env, lookups)
    if backend.events is not None:
        return _webhook(settings, env, backend, backend.events)
    if backend.bounce_mailbox:
        return Check("bounces", False, f"bounces and complaints from the relay go to {settings.sending.from_} "
                                       "and nobody reads them for digest",
                     "give digest a bounce mailbox: in [mailbox] set return_path = \"bounces@yourdomain\" and "
                     "maildir = \"PATH\" (or imap_host, imap_user and export DIGEST_IMAP_PASSWORD)")
    if not backend.real:
        return Check("bounces", False, f"the {backend.name} backend sends nothing, so nothing bounces",
                     choose_a_relay())
    readable = [name for name in backends.names() if backends.get(name).events or backends.get(name).bounce_mailbox]
    return Check("bounces", False, f"the {backend.name} backend declares no way to read its bounces and "
                                   "complaints", f"choose a backend whose bounces digest reads: {', '.join(readable)}")


def _webhook(settings: Settings, env: Mapping[str, str], backend: Backend, events: Events) -> Check:
    """The backend's event route is read: the key it verifies requests with is set."""
    name, url = events.key_env(settings.web), f"{settings.web.base_url}/webhooks/{backend.name}"
    if env.get(name):
        return Check("bounces", True, f"the {backend.name} events at {url} are read ({name} set): bounces and "
                                      "complaints suppress the address")
    return Check("bounces", False, f"nothing reads the {backend.name} backend's bounces and complaints",
                 events.setup.format(url=url, env=name))


def _bounce_mailbox(settings: Settings, env: Mapping[str, str], lookups: DnsChecks | Check) -> Check:
    """SMTP with a bounce mailbox: it opens, and the return path's domain takes mail."""
    bounces = settings.mailbox
    try:
        open_mailbox(bounces, settings.root, env.get(bounces.imap_password_env, "")).close()
    except MailboxError as error:
        return Check("bounces", False, f"the bounce mailbox cannot be read: {error}",
                     "fix [mailbox], then run `digest bounces --dry-run`")
    if not bounces.return_path:
        return Check("bounces", True, f"the bounce mailbox opens; without [mailbox].return_path bounces go to "
                                      f"{from_domain(settings)}'s From address and are matched by the address "
                                      "they name (set return_path for VERP)")
    domain = bounces.return_path.rpartition("@")[2]
    if isinstance(lookups, Check):
        return Check("bounces", False, lookups.detail, lookups.fix)
    try:
        lookup = lookups.lookups()
        hosts = lookup.mx(domain) or [str(a) for a in lookup.addresses(domain)]
    except dns.LookupFailed as error:
        return Check("bounces", False, str(error), "check the domain's DNS (or DIGEST_NAMESERVER)")
    if not hosts or hosts == [""]:
        return Check("bounces", False, f"{domain} has no MX record (nor an address): bounces to "
                                       f"{bounces.return_path} cannot arrive",
                     f"publish an MX record for {domain} that delivers to the bounce mailbox")
    return Check("bounces", True, f"bounces go to {bounces.return_path.replace('@', '+TOKEN@')} (VERP; {domain} "
                                  f"takes mail at {hosts[0]}) and the mailbox {bounces.kind} is read")
