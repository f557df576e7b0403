"""A real SMTP server on loopback (aiosmtpd) that records what it accepts and can
kill a client process at a chosen point of the conversation."""

from __future__ import annotations

import os
import signal
import socket
import threading
from collections.abc import Callable
from email import message_from_bytes
from email.message import Message
from email.policy import default

from aiosmtpd.controller import Controller


class Recorder:
    def __init__(self) -> None:
        self.raw: list[bytes] = []
        self.rcpt_count = 0
        self.lock = threading.Lock()
        self.on_rcpt: Callable[[int], str | None] = lambda n: None   # returns an SMTP answer to refuse
        self.on_data: Callable[[int], str | None] = lambda n: None
        self.delay = 0.0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        with self.lock:
            self.rcpt_count += 1
            number = self.rcpt_count
        answer = self.on_rcpt(number)
        if answer:
            return answer
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        answer = self.on_data(len(self.raw) + 1)
        if answer:
            return answer
        if self.delay:
            import asyncio
            await asyncio.sleep(self.delay)
        with self.lock:
            self.raw.append(envelope.content)
        return "250 Message accepted for delivery"

    @property
    def messages(self) -> list[Message]:
        """What was accepted, parsed (on demand: parsing while receiving slows the server)."""
        return [message_from_bytes(raw, policy=default) for raw in list(self.raw)]

    def recipients(self) -> list[str]:
        return [str(m["To"].addresses[0].addr_spec) for m in self.messages]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start() -> tuple[Controller, Recorder]:
    recorder = Recorder()
    controller = Controller(recorder, hostname="127.0.0.1", port=free_port())
    controller.start()
    return controller, recorder


def kill(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)
