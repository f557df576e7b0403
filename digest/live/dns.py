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
from dataclasses import dataclass, field

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
    """The system's resolver, or only HOST:PORT (DIGEST_NAMESERVER; [v6]:PORT for IPv6);
    LookupFailed, saying how to write it, for a value that names no server."""
    given = nameserver if nameserver is not None else os.environ.get("DIGEST_NAMESERVER", "")
    found = dns.resolver.Resolver(configure=not given)
    if given:
        host, port = _host_port(given)
        try:
            address = host if _is_ip(host) else socket.gethostbyname(host)
        except (OSError, UnicodeError):
            address = ""
        if not address or not 0 < port < 65536:
            raise LookupFailed(f"DIGEST_NAMESERVER={given!r} names no name server; give HOST:PORT, e.g. "
                               "127.0.0.1:5353 or [::1]:53")
        found.nameservers, found.port = [address], port
    found.lifetime, found.timeout = LIFETIME, LIFETIME / 2
    return found


def _host_port(given: str) -> tuple[str, int]:
    if given.startswith("["):
        host, _, rest = given[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ("x" if rest else "")
    elif given.count(":") == 1:
        host, port = given.split(":")
    else:
        host, port = given, "x" if given.count(":") > 1 and not _is_ip(given) else ""
    return host, (int(port) if port.isdigit() else 0) if port else 53


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

class PermError(Exception):
    """The record is broken as RFC 7208 says a receiver sees it (more than ten look-ups, two
    records, an unknown mechanism): every message fails SPF."""


MAX_MX_NAMES = 10             # RFC 7208 4.6.4: an mx mechanism looks at ten names at most
COUNTED = ("include", "a", "mx", "ptr", "exists")


def spf_record(lookups: Lookups, domain: str) -> str | None:
    """The domain's SPF record (v=spf1 ...), or None; PermError for two of them."""
    found = [text for text in lookups.txt(domain) if text.lower() == "v=spf1" or text.lower().startswith("v=spf1 ")]
    if len(found) > 1:
        raise PermError(f"{domain} has {len(found)} SPF records; receivers take none of them")
    return found[0] if found else None


@dataclass
class SpfWalk:
    """One evaluation, as a receiver makes it: the look-ups spent (at most ten) and the
    includes met on the way."""

    lookups: Lookups
    spent: int = 0
    includes: set[str] = field(default_factory=set)

    def spend(self) -> None:
        self.spent += 1
        if self.spent > MAX_LOOKUPS:
            raise PermError(f"the record needs more than {MAX_LOOKUPS} DNS look-ups; receivers give up on it")


def spf_check(lookups: Lookups, domain: str, address: IPAddress | None = None) -> tuple[str, SpfWalk]:
    """SPF's verdict for mail from address with domain in the envelope ("pass", "fail",
    "softfail", "neutral", "none", "permerror: why"), and the walk: with address None,
    every term is visited (to count look-ups and find includes), and the verdict says
    whether the record holds together."""
    walk = SpfWalk(lookups)
    try:
        return _check(walk, domain, address, 0), walk
    except PermError as error:
        return f"permerror: {error}", walk


def _check(walk: SpfWalk, domain: str, address: IPAddress | None, depth: int) -> str:
    record = spf_record(walk.lookups, domain)
    if record is None:
        return "none"
    if depth > MAX_LOOKUPS:
        raise PermError("includes go round in a loop")
    redirect = None
    for term in record.split()[1:]:
        name = term.split(":", 1)[0].split("/", 1)[0]
        if "=" in name:                                    # a modifier
            if name.lower() == "redirect":
                redirect = term.split("=", 1)[1]
            continue
        qualifier, mechanism = (term[0], term[1:]) if term[0] in "+-~?" else ("+", term)
        if _matches(walk, domain, mechanism, address, depth) and address is not None:
            return {"+": "pass", "-": "fail", "~": "softfail", "?": "neutral"}[qualifier]
    if redirect:
        walk.spend()
        found = _check(walk, redirect, address, depth + 1)
        if found == "none":
            raise PermError(f"redirect={redirect} has no SPF record")
        return found
    return "neutral"


def _matches(walk: SpfWalk, domain: str, mechanism: str, address: IPAddress | None, depth: int) -> bool:
    name, _, value = mechanism.partition(":")
    name, _, cidr = name.partition("/")
    value, _, value_cidr = value.partition("/") if ":" in mechanism else (value, "", "")
    kind = name.lower()
    if kind not in ("all", "ip4", "ip6", *COUNTED):
        raise PermError(f"unknown mechanism {mechanism!r}")
    if kind in COUNTED:
        walk.spend()
    if kind == "all":
        return True
    if kind in ("ip4", "ip6"):
        return _in_network(address, f"{value}/{value_cidr}" if value_cidr else value)
    if kind == "include":
        walk.includes.add(value.lower())
        found = _check(walk, value, address, depth + 1)
        if found == "none":
            raise PermError(f"include:{value} has no SPF record")
        return found == "pass"
    bits = _prefix(cidr or value_cidr)
    if kind == "a":
        return any(_within(address, found, bits) for found in walk.lookups.addresses(value or domain))
    if kind == "mx":
        names = walk.lookups.mx(value or domain)
        if len(names) > MAX_MX_NAMES:
            raise PermError(f"mx of {value or domain} names more than {MAX_MX_NAMES} hosts")
        return any(_within(address, found, bits) for host in names for found in walk.lookups.addresses(host))
    if kind == "exists":
        return bool(walk.lookups.addresses(value)) and address is not None
    return False                                            # ptr: deprecated, never a match


def _in_network(address: IPAddress | None, network: str) -> bool:
    try:
        parsed = ipaddress.ip_network(network, strict=False)
    except ValueError:
        raise PermError(f"{network!r} is not a network") from None
    return address is not None and address in parsed


def _prefix(cidr: str) -> int | None:
    """The prefix of a/24 or mx/24 (the IPv4 one of a dual cidr a/24//64)."""
    head = cidr.split("//", 1)[0]
    if not head:
        return None
    if not head.isdigit() or int(head) > 32:
        raise PermError(f"/{cidr} is not a prefix")
    return int(head)


def _within(address: IPAddress | None, found: IPAddress, bits: int | None) -> bool:
    if address is None or address.version != found.version:
        return False
    width = bits if bits is not None and found.version == 4 else found.max_prefixlen
    return address in ipaddress.ip_network(f"{found}/{width}", strict=False)


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
