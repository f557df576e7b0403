"""A local stand-in for SendGrid's v3 /v3/mail/send, holding to its contract.

It checks what SendGrid checks (bearer key, JSON, 1..1000 personalizations, each with
a `to`, no address twice in one request, from, subject, content with text/plain before
text/html, string substitutions, headers and custom_args as string maps) and answers
400 with SendGrid's error shape when they fail, 202 with X-Message-Id when they hold.
Faults can be queued: a status (429 with X-RateLimit-Reset, 500, 401, 403, 413...) or
a delay longer than the client's timeout, the latter after accepting the request.
`latency` makes every answer wait (a provider at real distance); `max_in_flight` says
how many requests it was answering at once, `arrivals` when each came (monotonic).
"""

from __future__ import annotations

import itertools
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Fault:
    status: int = 0             # 0: no status fault
    delay: float = 0.0          # seconds to wait before answering (after accepting)
    headers: dict[str, str] = field(default_factory=dict)
    body: dict | None = None


class SendGridStandIn:
    def __init__(self, api_key: str = "SG.test-key", max_body: int = 30 * 1024 * 1024, keep: bool = True,
                 latency: float = 0.0) -> None:
        self.api_key = api_key
        self.latency = latency
        self.in_flight = self.max_in_flight = 0
        self.arrivals: list[float] = []
        self.max_body = max_body
        self.keep = keep            # False (the benches): count what was accepted, keep none of it, as SendGrid
        self.counted = 0            # does not slow down as its volume grows (a million kept dicts would)
        self.faults: list[Fault] = []
        self.scopes = ["mail.send", "alerts.read"]   # what GET /v3/scopes answers for the key
        self.accepted: list[dict] = []          # one per accepted personalization, with its request
        self.requests = 0
        self.bodies: list[dict] = []
        self.lock = threading.Lock()
        self.ids = itertools.count(1)
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.httpd.daemon_threads = True
        self.httpd.handle_error = lambda request, address: None
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def host(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def recipients(self) -> list[str]:
        return [p["to"][0]["email"] for p in self.accepted]

    def handle(self, headers: dict[str, str], raw: bytes) -> tuple[int, dict[str, str], bytes, float]:
        with self.lock:
            self.requests += 1
            fault = self.faults.pop(0) if self.faults else None
        if headers.get("authorization") != f"Bearer {self.api_key}":
            return _error(401, "The provided authorization grant is invalid, expired, or revoked")
        if fault and fault.status:
            status, extra, body, _ = _error(fault.status, f"injected {fault.status}")
            return status, {**extra, **fault.headers}, json.dumps(fault.body).encode() if fault.body else body, 0.0
        if len(raw) > self.max_body:
            return _error(413, "Payload too large")
        try:
            body = json.loads(raw)
        except ValueError:
            return _error(400, "Bad Request: invalid JSON")
        problem = contract_problem(body)
        if problem:
            return _error(400, problem)
        message_id = f"msg-{next(self.ids)}"
        with self.lock:
            self.counted += len(body["personalizations"])
            if self.keep:
                self.bodies.append({k: v for k, v in body.items() if k != "content"})
                self.accepted.extend({**p, "message_id": message_id} for p in body["personalizations"])
        return 202, {"X-Message-Id": message_id}, b"", fault.delay if fault else 0.0


RESERVED_HEADERS = {"x-sg-id", "x-sg-eid", "received", "dkim-signature", "content-type",
                    "content-transfer-encoding", "to", "from", "subject", "reply-to", "cc", "bcc"}


def contract_problem(body: dict) -> str | None:
    people = body.get("personalizations")
    if not isinstance(people, list) or not 1 <= len(people) <= 1000:
        return "The personalizations field must have between 1 and 1000 items."
    seen: set[str] = set()
    for person in people:
        to = person.get("to")
        if not isinstance(to, list) or not to or not all(isinstance(t, dict) and "@" in t.get("email", "") for t in to):
            return "Each personalization must have a 'to' array with at least one email."
        for t in to:
            address = t["email"].lower()
            if address in seen:
                return "Each email address in the personalization block should be unique."
            seen.add(address)
        for key in ("substitutions", "headers", "custom_args"):
            if key in person and not all(isinstance(v, str) for v in person[key].values()):
                return f"{key} values must be strings."
        reserved = {h.lower() for h in person.get("headers", {})} & RESERVED_HEADERS
        if reserved:
            return f"The header {sorted(reserved)[0]} is reserved and cannot be set in headers."
    if "@" not in body.get("from", {}).get("email", ""):
        return "The from object must be provided for every email send."
    if not body.get("subject"):
        return "The subject is required."
    types = [c.get("type") for c in body.get("content", [])]
    if not types or ("text/plain" in types and types[0] != "text/plain"):
        return "If present, text/plain content must be first, followed by any other content."
    if any(not c.get("value") for c in body["content"]):
        return "The content value must be a string at least one character in length."
    return None


def _error(status: int, message: str) -> tuple[int, dict[str, str], bytes, float]:
    payload = {"errors": [{"message": message, "field": None, "help": None}]}
    return status, {"Content-Type": "application/json"}, json.dumps(payload).encode(), 0.0


def _handler(server: SendGridStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def do_GET(self) -> None:  # noqa: N802
            """GET /v3/scopes: the key's permissions, {"scopes": [...]} (401 for another key)."""
            if self.path != "/v3/scopes":
                status, extra, body = 404, {}, b""
            elif self.headers.get("Authorization") != f"Bearer {server.api_key}":
                status, extra, body, _ = _error(401, "The provided authorization grant is invalid, expired, or revoked")
            else:
                status, extra, body = 200, {"Content-Type": "application/json"}, json.dumps(
                    {"scopes": server.scopes}).encode()
            self.send_response(status)
            for key, value in extra.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:  # noqa: N802
            if self.path != "/v3/mail/send":
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            headers = {k.lower(): v for k, v in self.headers.items()}
            with server.lock:
                server.in_flight += 1
                server.max_in_flight = max(server.max_in_flight, server.in_flight)
                server.arrivals.append(time.monotonic())
            try:
                status, extra, body, delay = server.handle(headers, raw)
                time.sleep(delay + server.latency)
            finally:
                with server.lock:
                    server.in_flight -= 1
            try:
                self.send_response(status)
                for key, value in extra.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except OSError:
                pass

        def log_message(self, *args: object) -> None:
            pass

    return Handler
