"""Mail backends by name (`[sending].backend`): each declares, once and in its own module
under digest/send/mailers/, all that differs between backends; the rest of digest reads
it here and names no backend.

To add one (Postmark, Amazon SES): a module in digest/send/mailers/ holding its mailer,
which ends with `register(Backend("name", TheMailer, ...))`. Being there is enough: the
first time a name is looked up, every module of that package is imported.

What a declaration leaves out gets the strict answer. A backend sends to people (the
safe-first-send checks apply) unless it says `real=False`; it takes no address with a
non-ASCII local part unless it says `smtputf8=True`; it runs one worker; and the doctor
fails its relay, SPF, DKIM and bounces checks until it declares how to pass them. A name
nobody registered is treated as real and as taking no SMTPUTF8 too.

Why here: config (which takes the names from here) sits below send (whose modules
register here), and this module sits beside config; so it names the package of mailers
as a string, as mkdocs finds its plugins by name.
"""

from __future__ import annotations

import importlib
import pkgutil
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import ConfigError

if TYPE_CHECKING:
    from .config import Sending, SendSettings, Web

MAILERS = "digest.send.mailers"       # every module of this package may declare a backend
Probe = Callable[["SendSettings", Mapping[str, str], float], str]


def _one(sending: Sending) -> int:
    return 1


def _configured_include(sending: Sending) -> str:
    return sending.spf_include


@dataclass(frozen=True)
class Relay:
    """What `digest doctor` checks of the relay a backend sends through."""

    probe: Probe | None = None
    """(send settings, environment, timeout) -> what answered; reaches the relay as a send
    would and sends nothing. MailerError "what failed; the fix" when it cannot."""
    spf_include: Callable[[Sending], str] = _configured_include
    """the `include:` SPF must name ("": the relay host's own addresses must pass)"""
    host: Callable[[Sending], str] | None = None
    """the relay whose addresses SPF must allow when no include is named"""
    dkim_selectors: tuple[str, ...] = ()
    """looked up when `[sending].dkim_selector` is empty"""
    dkim_setup: str = ""
    """how to publish those selectors' keys ({domain}, {names}); "": a TXT record each"""


@dataclass(frozen=True)
class Events:
    """The route a provider posts bounce and complaint events to: POST /webhooks/<backend>."""

    reader: str
    """the module reading them (in digest/signals/): `read(key, raw, headers, max_age, now)`
    -> the verified events (header names in lower case), `apply(db, event, now)` -> whether
    it was new"""
    key_env: Callable[[Web], str]
    """the environment variable holding the key a request is verified with"""
    setup: str
    """what to do at the provider, for the doctor ({url}: the route's address, {env})"""


@dataclass(frozen=True)
class Backend:
    name: str
    mailer: Callable[..., Any]
    """(SendSettings, **options) -> a `send.mailers.Mailer`"""
    real: bool = True
    """it sends to people: the safe-first-send checks apply (send.readiness)"""
    smtputf8: bool = False
    """it takes an address whose local part is not ASCII"""
    workers: Callable[[Sending], int] = _one
    """how many senders a send runs at once, from `[sending]`"""
    relay: Relay = field(default_factory=Relay)
    events: Events | None = None
    bounce_mailbox: bool = False
    """bounces come back by mail to the return path, which `[mailbox]` can read"""


_registered: dict[str, Backend] = {}
_loading = threading.RLock()      # a module being imported may look a name up
_loaded = False


def register(backend: Backend) -> Backend:
    """Add a backend under its name (ConfigError when the name is taken)."""
    if backend.name in _registered:
        raise ConfigError([f"two mail backends are named {backend.name!r}; give one another name"])
    _registered[backend.name] = backend
    return backend


def unregister(name: str) -> None:
    _registered.pop(name, None)


def _all() -> dict[str, Backend]:
    global _loaded
    with _loading:
        if not _loaded:
            package = importlib.import_module(MAILERS)
            for found in pkgutil.iter_modules(package.__path__):
                importlib.import_module(f"{MAILERS}.{found.name}")
            _loaded = True
    return _registered


def find(name: str) -> Backend | None:
    return _all().get(name)


def get(name: str) -> Backend:
    """The backend of that name (ConfigError naming the setting and the choices)."""
    found = find(name)
    if found is None:
        raise ConfigError([f"[sending].backend: {name!r} is not a mail backend; use {choices()}"])
    return found


def names() -> list[str]:
    """Those that send to people first, then the others, each in alphabetical order."""
    found = sorted(_all().values(), key=lambda backend: (not backend.real, backend.name))
    return [backend.name for backend in found]


def choices(real_only: bool = False) -> str:
    """'sendgrid', 'smtp' or 'outbox'."""
    quoted = [repr(name) for name in names() if sends_to_people(name) or not real_only]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"


def sends_to_people(name: str) -> bool:
    """Whether the safe-first-send checks apply: for any backend not declared otherwise,
    and for a name nobody registered."""
    found = find(name)
    return found is None or found.real


def takes_smtputf8(name: str) -> bool:
    """Whether an address with a non-ASCII local part may be sent to: only when declared."""
    found = find(name)
    return found is not None and found.smtputf8
