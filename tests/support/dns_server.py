"""A real authoritative DNS server on loopback (UDP and TCP), for `digest doctor`'s look-ups.

Zones are a dict {name: [(type, text), ...]} ("example.org": [("TXT", '"v=spf1 -all"')]);
a CNAME is answered with its target's records when the target is served here too, as an
authoritative server for both zones would. Unknown names are NXDOMAIN.
"""

from __future__ import annotations

import socketserver
import struct
import threading

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset


class Zones:
    def __init__(self, records: dict[str, list[tuple[str, str]]] | None = None) -> None:
        self.records: dict[str, list[tuple[str, str]]] = {}
        self.asked: list[tuple[str, str]] = []
        for name, items in (records or {}).items():
            for kind, text in items:
                self.add(name, kind, text)

    def add(self, name: str, kind: str, text: str) -> None:
        self.records.setdefault(_key(name), []).append((kind.upper(), text))

    def remove(self, name: str, kind: str | None = None) -> None:
        key = _key(name)
        self.records[key] = [(k, t) for k, t in self.records.get(key, []) if kind is not None and k != kind.upper()]

    def answer(self, query: dns.message.Message) -> dns.message.Message:
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        question = query.question[0]
        name, kind = question.name, dns.rdatatype.to_text(question.rdtype)
        self.asked.append((name.to_text().rstrip("."), kind))
        if _key(name.to_text()) not in self.records:
            response.set_rcode(dns.rcode.NXDOMAIN)
            return response
        for _ in range(8):
            found = self.records.get(_key(name.to_text()), [])
            wanted = [text for k, text in found if k == kind]
            if wanted:
                response.answer.append(dns.rrset.from_text_list(name, 300, "IN", kind, wanted))
                break
            cname = [text for k, text in found if k == "CNAME"]
            if not cname or kind == "CNAME":
                break
            response.answer.append(dns.rrset.from_text_list(name, 300, "IN", "CNAME", cname))
            name = dns.name.from_text(cname[0])
            if _key(name.to_text()) not in self.records:
                break
        return response


def _key(name: str) -> str:
    return name.lower().rstrip(".")


class _Udp(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        data, sock = self.request
        reply = self.server.zones.answer(dns.message.from_wire(data))     # type: ignore[attr-defined]
        sock.sendto(reply.to_wire(), self.client_address)


class _Tcp(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        size = struct.unpack("!H", self.request.recv(2))[0]
        data = b""
        while len(data) < size:
            data += self.request.recv(size - len(data))
        wire = self.server.zones.answer(dns.message.from_wire(data)).to_wire()   # type: ignore[attr-defined]
        self.request.sendall(struct.pack("!H", len(wire)) + wire)


class DnsServer:
    """`with DnsServer(zones) as server:` then DIGEST_NAMESERVER=server.address."""

    def __init__(self, zones: Zones) -> None:
        self.zones = zones
        self.udp, self.tcp = self._bound()
        for server in (self.udp, self.tcp):
            server.zones = zones                                       # type: ignore[attr-defined]
            server.daemon_threads = True
            threading.Thread(target=server.serve_forever, daemon=True).start()

    @staticmethod
    def _bound(tries: int = 20) -> tuple[socketserver.ThreadingUDPServer, socketserver.ThreadingTCPServer]:
        """UDP and TCP on one free port: the UDP port the system gives may be taken for
        TCP by another process; then another port is tried."""
        for _ in range(tries):
            udp = socketserver.ThreadingUDPServer(("127.0.0.1", 0), _Udp)
            try:
                return udp, socketserver.ThreadingTCPServer(("127.0.0.1", udp.server_address[1]), _Tcp)
            except OSError:
                udp.server_close()
        raise OSError(f"no port free for both UDP and TCP after {tries} tries")

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.udp.server_address[1]}"

    def __enter__(self) -> DnsServer:
        return self

    def __exit__(self, *_: object) -> None:
        for server in (self.udp, self.tcp):
            server.shutdown()
            server.server_close()
