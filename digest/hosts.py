"""What kind of host a URL names: local (this machine), private (a home or office network),
an example (RFC 2606), or public: one that readers on the internet can reach. Readiness
refuses real mail whose links are not public; the config calls a setup whose
`[web].base_url` is not public (with a mailbox) mail mode.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from urllib.parse import urlsplit

EXAMPLE_DOMAINS = ("example.org", "example.com", "example.net")
RESERVED_SUFFIXES = ("example", "test", "invalid", "localhost", "local")     # RFC 2606, RFC 6762
PRIVATE_SUFFIXES = ("lan", "internal", "intranet", "home.arpa", "localdomain", "home", "corp")  # RFC 8375, ICANN
_LEGACY_IPV4 = re.compile(r"^(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+)){0,3}$")


def public(url: str) -> bool:
    """Whether readers on the internet could open url: not local, private nor an example."""
    host = (urlsplit(url).hostname or "").lower()
    return not (local(host) or private(host) or example(host))


def ip_address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The IP address a host names, in any spelling a browser accepts: 127.0.0.1, 127.1,
    2130706433, 0x7f.1, 0, a trailing dot, [::ffff:127.0.0.1] (read as its IPv4 address)."""
    host = host.strip("[]").rstrip(".").lower()
    try:
        address: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(host)
    except ValueError:
        if not _LEGACY_IPV4.match(host):
            return None
        try:
            address = ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def local(host: str) -> bool:
    host = host.rstrip(".").lower()
    if host in ("localhost", "") or host.endswith(".localhost"):
        return True
    address = ip_address(host)
    return address is not None and (address.is_loopback or address.is_unspecified or address.is_link_local)


def private(host: str) -> bool:
    """A private network's address (10/8, 192.168/16, 172.16/12, fc00::/7, any IP address
    that is not global), a name with no dot (`http://digest`) or a private-use suffix."""
    host = host.rstrip(".").lower()
    address = ip_address(host)
    if address is not None:
        return not address.is_global
    return "." not in host or any(host.endswith("." + suffix) for suffix in PRIVATE_SUFFIXES)


def example(host: str) -> bool:
    host = host.rstrip(".")
    return (any(host == d or host.endswith("." + d) for d in EXAMPLE_DOMAINS)
            or host.rpartition(".")[2] in RESERVED_SUFFIXES)
