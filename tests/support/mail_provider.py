"""A mail provider on loopback for mail mode's tests: a real SMTP server (aiosmtpd, as
smtp_server.py's) that delivers what it accepts for the mailbox's address into the
mailbox, as the provider's delivery agent would (a Maildir's tmp/ then new/, or through
dovecot's `deliver`), with the Delivered-To header a provider writes. What it does with a
plus address on the mailbox is the provider's choice: deliver it, refuse it at RCPT
(550, no such user), or take it and lose it."""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Callable
from pathlib import Path

from aiosmtpd.controller import Controller

from .smtp_server import Recorder, free_port

DELIVER, REFUSE, LOSE = "deliver", "refuse", "lose"


class MailProvider(Recorder):
    def __init__(self, address: str, deliver: Callable[[bytes, str], object], plus: str = DELIVER) -> None:
        super().__init__()
        self.address, self.plus, self.deliver = address.lower(), plus, deliver
        self.delivered: list[str] = []          # the addresses each delivered message was sent to
        self.on_address = self._refusing
        self.lock_delivery = threading.Lock()

    def _refusing(self, command: str, address: str) -> str | None:
        if command == "RCPT" and self._plus(address) and self.plus == REFUSE:
            return f"550 5.1.1 <{address}>: no such user here"
        return None

    def _plus(self, address: str) -> bool:
        local, _, domain = address.lower().rpartition("@")
        base, plus, _ = local.partition("+")
        return bool(plus) and f"{base}@{domain}" == self.address

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        answer = await super().handle_DATA(server, session, envelope)
        if answer.startswith("250"):
            for rcpt in envelope.rcpt_tos:
                if rcpt.lower() == self.address or (self._plus(rcpt) and self.plus == DELIVER):
                    raw = f"Delivered-To: {rcpt}\r\n".encode() + envelope.content
                    with self.lock_delivery:
                        self.deliver(raw, f"{uuid.uuid4().hex}.digest-test")
                        self.delivered.append(rcpt)
        return answer


def into_maildir(folder: Path) -> Callable[[bytes, str], Path]:
    """A Maildir delivery: written to tmp/, moved to new/ (readers never see half a message)."""
    for sub in ("new", "cur", "tmp"):
        (folder / sub).mkdir(parents=True, exist_ok=True)

    def deliver(raw: bytes, name: str) -> Path:
        (folder / "tmp" / name).write_bytes(raw)
        os.replace(folder / "tmp" / name, folder / "new" / name)
        return folder / "new" / name
    return deliver


def start(address: str, deliver: Callable[[bytes, str], object], plus: str = DELIVER) -> tuple[Controller,
                                                                                               MailProvider]:
    provider = MailProvider(address, deliver, plus)
    controller = Controller(provider, hostname="127.0.0.1", port=free_port())
    controller.start()
    return controller, provider
