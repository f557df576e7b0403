"""A real HTTP server on loopback that serves a folder of feeds by its manifest.json.

It answers conditional GETs (ETag from the file's bytes), records every request, and
can be told to misbehave for a path: a status code, a delay, a redirect, a body.
"""

from __future__ import annotations

import hashlib
import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


@dataclass
class Fault:
    status: int = 200
    body: bytes | None = None
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    times: int = 10**9          # how many requests it applies to


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    status: int


class FeedServer:
    def __init__(self, port: int = 0) -> None:
        self.folder: Path | None = None
        self.urls: dict[str, str] = {}
        self.extra: dict[str, tuple[bytes, str]] = {}
        self.faults: dict[str, Fault] = {}
        self.requests: list[Seen] = []
        self.on_request: Callable[[Seen], object] = lambda seen: None
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), _handler(self))
        self.httpd.daemon_threads = True
        self.httpd.handle_error = lambda request, address: None  # clients that hang up early
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def start(self) -> FeedServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def serve(self, folder: Path) -> None:
        """Serve the feeds a builder wrote into folder (its manifest.json)."""
        self.folder = folder
        self.urls = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))["urls"]

    def add(self, path: str, body: bytes, content_type: str = "application/atom+xml") -> None:
        self.extra[path] = (body, content_type)

    def fail(self, path: str, fault: Fault) -> None:
        self.faults[path] = fault

    def reset_log(self) -> None:
        self.requests.clear()

    def answer(self, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        fault = self.faults.get(path)
        if fault and fault.times > 0:
            fault.times -= 1
            time.sleep(fault.delay)
            if fault.status != 200 or fault.body is not None:
                return fault.status, fault.headers, fault.body or b""
        if path in self.extra:
            body, kind = self.extra[path]
        elif path in self.urls and self.folder is not None:
            body, kind = (self.folder / self.urls[path]).read_bytes(), "application/atom+xml; charset=UTF-8"
        else:
            return 404, {}, b"not found"
        etag = '"' + hashlib.sha1(body).hexdigest() + '"'
        if headers.get("if-none-match") == etag:
            return 304, {"ETag": etag}, b""
        return 200, {"ETag": etag, "Content-Type": kind}, body


def _handler(server: FeedServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            # Headers and body go out in two writes: without this, Nagle's algorithm and
            # the client's delayed ACK add 40 ms to every keep-alive request.
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, extra, body = server.answer(self.path, headers)
            server.requests.append(Seen(self.path, headers, status))
            server.on_request(server.requests[-1])
            self.send_response(status)
            for key, value in extra.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if status != 304:
                try:
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        def log_message(self, *args: object) -> None:
            pass

    return Handler


def main(argv: list[str]) -> None:
    """Serve a built folder on a given port from a process of its own (bench/ingest: the
    server's work then does not share the measured process), logging "status path" lines."""
    folder, port, log = Path(argv[0]), int(argv[1]), Path(argv[2])
    server = FeedServer(port)
    server.serve(folder)
    with log.open("a", encoding="utf-8") as out:
        server.on_request = lambda seen: (out.write(f"{seen.status} {seen.path}\n"), out.flush())
        server.httpd.serve_forever()


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
