"""What a reader or the editor does by mail in mail mode, one module per kind of request:
each handler takes the Desk and the Inbound message (actions/inbox.py) and returns what
it did as Handled. A handler's effect may be applied twice and changes nothing the second
time (a crash between applying and recording reads the message again); with
`desk.dry_run` it changes nothing and says what it would do."""

from __future__ import annotations

from ..inbox import Handler
from . import approve, unsubscribe
from .confirm import confirm
from .subscribe import subscribe

HANDLERS: dict[str, Handler] = {"subscribe": subscribe, "confirm": confirm, "unsubscribe": unsubscribe.handle,
                                "approve": approve.handle}
