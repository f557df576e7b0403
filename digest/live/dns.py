"""DNS look-ups for `digest doctor`: the sender domain's SPF, DKIM and DMARC records.

dnspython asks the system's resolver, or only `DIGEST_NAMESERVER=HOST:PORT` when it is
set (split-horizon DNS, a local server in tests). Every look-up has a few seconds in all.
SPF is evaluated as a receiver would (RFC 7208's mechanisms ip4, ip6, a, mx, include,
redirect and all, at most ten look-ups), for the relay's addresses.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from dataclasses import dataclass

import dns.exception
import dns.name
import dns.resolver

LIFETIME = 4.0               # seconds a look-up may take in all
MAX_LOOKUPS = 10             # RFC 7208 4.6.4
MAX_CNAMES = 8

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class LookupFailed(Exception):
    """The name server did not answer (timeout, refused): not the same as no record."""


def resolver(nameserver: str | None = None) -> dns.resolver.Resolver:
    """The system's resolver, or only HOST:PORT (DIGEST_NAMESERVER; [v6]:PORT for IPv6)."""
    given = nameserver if nameserver is not None else os.environ.get("DIGEST_NAMESERVER", "")
    found = dns.resolver.Resolver(configure=not given)
    if given:
        host, port = _host_port(given)
        found.nameservers = [host if _is_ip(host) else socket.gethostbyname(host)]
        found.port = port
    found.lifetime, found.timeout = LIFETIME, LIFETIME / 2
    return found


def _host_port(given: str) -> tuple[str, int]:
    if given.startswith("["):
        host, _, rest = given[1:].partition("]")
        port = rest.lstrip(":")
    elif given.count(":") == 1:
        host, port = given.split(":")
    else:
        host, port = given, ""
    return host, int(port) if port.isdigit() else 53


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


@dataclass
class Lookups:
    """Look-ups through one resolver, counted (SPF's limit of ten)."""

    resolver: dns.resolver.Resolver
    count: int = 0

    def txt(self, name: str) -> list[str]:
        """The TXT strings at name (each record's parts joined); [] when there are none."""
        return ["".join(part.decode("utf-8", "replace") for part in record.strings)
                for record in self._ask(name, "TXT")]

    def addresses(self, name: str) -> list[IPAddress]:
        found: list[IPAddress] = []
        for kind in ("A", "AAAA"):
            found += [ipaddress.ip_address(record.address) for record in self._ask(name, kind)]
        return found

    def mx(self, name: str) -> list[str]:
        return [str(record.exchange).rstrip(".") for record in self._ask(name, "MX")]

    def cname(self, name: str) -> str | None:
        records = self._ask(name, "CNAME")
        return str(records[0].target).rstrip(".") if records else None

    def follow(self, name: str) -> str:
        """The name a chain of CNAMEs ends at (the name itself when it has none)."""
        for _ in range(MAX_CNAMES):
            target = self.cname(name)
            if target is None:
                return name
            name = target
        raise LookupFailed(f"{name}: more than {MAX_CNAMES} CNAMEs in a row")

    def _ask(self, name: str, kind: str) -> list:
        self.count += 1
        try:
            return list(self.resolver.resolve(name, kind, raise_on_no_answer=False, search=False) or [])
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        except dns.name.EmptyLabel:
            return []
        except (dns.resolver.NoNameservers, dns.exception.Timeout, dns.resolver.LifetimeTimeout) as error:
            raise LookupFailed(f"no answer for {name} {kind} ({error.__class__.__name__})") from None
        except dns.exception.DNSException as error:
            raise LookupFailed(f"{name} {kind}: {error}") from None


# ------------------------------------------------------------------ SPF

def spf_record(lookups: Lookups, domain: str) -> str | None:
    """The domain's SPF record (v=spf1 ...), or None."""
    found = [text for text in lookups.txt(domain) if text.lower().startswith("v=spf1")]
    return found[0] if found else None


def spf_allows(lookups: Lookups, domain: str, address: IPAddress, depth: int = 0) -> str:
    """SPF's verdict for mail from address with domain in the envelope: "pass", "fail",
    "softfail", "neutral", "none" or "permerror" (too many look-ups, a loop)."""
    record = spf_record(lookups, domain)
    if record is None:
        return "none"
    if depth > MAX_LOOKUPS or lookups.count > MAX_LOOKUPS + 2:
        return "permerror"
    redirect = None
    for term in record.split()[1:]:
        if term.lower().startswith("redirect="):
            redirect = term.split("=", 1)[1]
            continue
        qualifier, mechanism = (term[0], term[1:]) if term[0] in "+-~?" else ("+", term)
        if _matches(lookups, domain, mechanism, address, depth):
            return {"+": "pass", "-": "fail", "~": "softfail", "?": "neutral"}[qualifier]
    return spf_allows(lookups, redirect, address, depth + 1) if redirect else "neutral"


def spf_includes(record: str, include: str) -> bool:
    return any(term.lower().lstrip("+") == f"include:{include.lower()}" for term in record.split())


def _matches(lookups: Lookups, domain: str, mechanism: str, address: IPAddress, depth: int) -> bool:
    name, _, value = mechanism.partition(":")
    name, _, prefix = name.partition("/")
    kind = name.lower()
    if kind == "all":
        return True
    if kind in ("ip4", "ip6"):
        try:
            return address in ipaddress.ip_network(value, strict=False)
        except ValueError:
            return False
    if kind == "include":
        return spf_allows(lookups, value, address, depth + 1) == "pass"
    if kind == "a":
        return any(_within(address, found, prefix) for found in lookups.addresses(value or domain))
    if kind == "mx":
        return any(_within(address, found, prefix) for host in lookups.mx(value or domain)
                   for found in lookups.addresses(host))
    return False


def _within(address: IPAddress, found: IPAddress, prefix: str) -> bool:
    if address.version != found.version:
        return False
    bits = int(prefix) if prefix.isdigit() else found.max_prefixlen
    return address in ipaddress.ip_network(f"{found}/{bits}", strict=False)


# ------------------------------------------------------------------ DKIM and DMARC

def dkim_key(lookups: Lookups, selector: str, domain: str) -> tuple[str, str | None]:
    """(the name looked up at the end of its CNAMEs, its v=DKIM1 record or None)."""
    final = lookups.follow(f"{selector}._domainkey.{domain}")
    found = [text for text in lookups.txt(final) if "v=dkim1" in text.lower().replace(" ", "")
             or ("p=" in text and "k=rsa" in text.lower())]
    return final, found[0] if found else None


def dmarc_record(lookups: Lookups, domain: str) -> tuple[str, str | None]:
    """(where it was found, the v=DMARC1 record): at _dmarc.<domain>, else at the
    organisational domain's (its last two labels; a rough stand-in for the public suffix list)."""
    candidates = [domain]
    parts = domain.split(".")
    if len(parts) > 2:
        candidates.append(".".join(parts[-2:]))
    for name in candidates:
        found = [t for t in lookups.txt(f"_dmarc.{name}") if t.replace(" ", "").lower().startswith("v=dmarc1")]
        if found:
            return name, found[0]
    return domain, None


def tags(record: str) -> dict[str, str]:
    """A DKIM or DMARC record's tags: 'v=DMARC1; p=none' -> {'v': 'DMARC1', 'p': 'none'}."""
    found = {}
    for part in record.split(";"):
        key, _, value = part.strip().partition("=")
        if key:
            found[key.strip().lower()] = value.strip()
    return found
