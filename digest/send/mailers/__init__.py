"""Mailers behind one small interface: send a batch, say what happened to each message.

`send(edition, recipients, in_flight)` yields an Outcome per recipient it sends. It calls
`in_flight(ids)` just before the point of no return for those ids (the ledger marks them
in flight and commits), so that after a crash only messages that may really have gone
are of unknown outcome; it sends only the ids `in_flight` returns (another sender may
have taken the others from a sender that stalled past its lease) and says nothing of
the rest. A fault that stops the whole send raises MailerError naming
the setting to fix; `unsent` are ids marked in flight that certainly did not go.

Each module here is one backend: its mailer, and at its end `backends.register(...)`
declaring all that differs (real or not, SMTPUTF8, workers, the doctor's checks, an
event route); see digest/backends.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Protocol

from ... import backends
from ...config import SendSettings
from ...errors import SendError
from ...models import Mail, Outcome
from ..message import Recipient

MarkInFlight = Callable[[list[int]], list[int]]   # ids about to go -> those this sender may send


class MailerError(SendError):
    def __init__(self, message: str, unsent: list[int] | None = None) -> None:
        super().__init__(message)
        self.unsent = unsent or []


class Mailer(Protocol):
    batch_size: int
    record_each: bool       # True: each outcome is committed before the next message starts

    def send(self, edition: Mail, recipients: list[Recipient], in_flight: MarkInFlight,
             folder: str) -> Iterator[Outcome]: ...

    def close(self) -> None: ...


def make_mailer(settings: SendSettings, **options: Any) -> Mailer:
    """The mailer of the configured backend, as its module registered it."""
    made: Mailer = backends.get(settings.backend).mailer(settings, **options)
    return made
