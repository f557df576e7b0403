"""The bounce mailbox: a local Maildir or an IMAP folder, read the same way.

`messages()` yields (handle, raw bytes) of each message not yet read by digest;
`done(handle, kept)` marks one read after its meaning was recorded: seen (or, `kept`
for the editor, flagged and left unread). Maildir: `new/` is read and a message moves to
`cur/` with the flag in its name. IMAP (TLS, the certificate always verified): messages
without the `$DigestRead` keyword are read with BODY.PEEK (not marking them seen), then
get the keyword. Nothing is ever deleted.
"""

from __future__ import annotations

import logging
import os
import ssl
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any, Protocol

from ..config import Mailbox as MailboxSettings
from ..errors import DigestError

log = logging.getLogger(__name__)

KEYWORD = b"$DigestRead"
MAX_MESSAGE = 10 * 1024 * 1024
PARTIAL = f"BODY.PEEK[]<0.{MAX_MESSAGE}>"
TIMEOUT = 30.0


class MailboxError(DigestError):
    """The bounce mailbox cannot be opened or read."""


class Mailbox(Protocol):
    where: str

    def messages(self) -> Iterator[tuple[str, bytes]]: ...

    def done(self, handle: str, kept: bool) -> None: ...

    def close(self) -> None: ...


def open_mailbox(settings: MailboxSettings, root: Path, password: str = "") -> Mailbox:
    if settings.maildir:
        return Maildir(_resolve(root, settings.maildir))
    if settings.imap_host:
        return Imap(settings, root, password)
    raise MailboxError("no bounce mailbox is set; set [mailbox] maildir, or imap_host and imap_user")


def _resolve(root: Path, value: str) -> Path:
    try:
        path = Path(value).expanduser()
    except RuntimeError:                       # ~someone who has no home here
        raise MailboxError(f"{value}: no such home folder; give [mailbox] paths in full") from None
    return path if path.is_absolute() else root / path


class Maildir:
    def __init__(self, path: Path) -> None:
        self.path, self.where = path, str(path)
        for sub in ("new", "cur", "tmp"):
            if not (path / sub).is_dir():
                raise MailboxError(f"{path}: not a Maildir (no {sub}/ folder); check [mailbox].maildir")

    def messages(self) -> Iterator[tuple[str, bytes]]:
        for name in sorted(os.listdir(self.path / "new")):
            file = self.path / "new" / name
            if name.startswith(".") or not file.is_file():
                continue
            try:
                with file.open("rb") as handle:
                    raw = handle.read(MAX_MESSAGE)
            except FileNotFoundError:              # another process took it meanwhile
                continue
            except OSError as error:               # unreadable (another user's 0600 file): the rest still go
                log.warning("bounce mailbox: %s cannot be read (%s); skipped, left where it is", file,
                            error.strerror)
                continue
            yield name, raw

    def done(self, handle: str, kept: bool) -> None:
        base = handle.split(":2,")[0]
        try:
            os.replace(self.path / "new" / handle, self.path / "cur" / f"{base}:2,{'F' if kept else 'S'}")
        except FileNotFoundError:
            log.info("bounce %s was moved by someone else", handle)

    def close(self) -> None:
        return None


class Imap:
    def __init__(self, settings: MailboxSettings, root: Path, password: str) -> None:
        from imapclient import IMAPClient
        from imapclient.exceptions import IMAPClientError, LoginError
        self.where = f"imaps://{settings.imap_user}@{settings.imap_host}:{settings.imap_port}/{settings.imap_folder}"
        try:
            context = ssl.create_default_context(cafile=str(_resolve(root, settings.imap_ca_file))
                                                 if settings.imap_ca_file else None)
        except (OSError, ssl.SSLError) as error:
            raise MailboxError(f"[mailbox].imap_ca_file {settings.imap_ca_file}: not a PEM file of certificates "
                               f"({getattr(error, 'strerror', None) or error}); give the CA's certificate") from None
        try:
            self.client = IMAPClient(settings.imap_host, settings.imap_port, ssl=True, ssl_context=context,
                                     timeout=TIMEOUT)
        except ssl.SSLCertVerificationError as error:
            raise MailboxError(f"the TLS certificate of {settings.imap_host} did not verify ({error.verify_message});"
                               " set [mailbox].imap_ca_file to the PEM of the CA that signs it") from None
        except (TimeoutError, OSError, IMAPClientError) as error:
            raise MailboxError(f"cannot reach {self.where} ({error}); check [mailbox] imap_host and imap_port "
                               "(993: IMAP over TLS)") from None
        try:
            self.client.login(settings.imap_user, password)
            self.client.select_folder(settings.imap_folder)
        except LoginError:
            self.close()
            raise MailboxError(f"{self.where}: the login was refused; check [mailbox].imap_user and "
                               f"{settings.imap_password_env}") from None
        except IMAPClientError as error:
            self.close()
            raise MailboxError(f"{self.where}: {error}; check [mailbox].imap_folder") from None

    def messages(self) -> Iterator[tuple[str, bytes]]:
        """Each new message, one at a time and at most MAX_MESSAGE bytes of it (a partial
        fetch: a 50 MB message is not all read), without setting \\Seen."""
        uids = self._safely(lambda: self.client.search(["NOT", "KEYWORD", KEYWORD.decode()]))
        for uid in sorted(uids):
            fetched: dict[int, dict[bytes, Any]] = self._safely(partial(self.client.fetch, [uid], [PARTIAL]))
            body = next((value for key, value in fetched.get(uid, {}).items() if key.startswith(b"BODY[]")), None)
            if isinstance(body, bytes):
                yield str(uid), body[:MAX_MESSAGE]

    def done(self, handle: str, kept: bool) -> None:
        self._safely(lambda: self.client.add_flags([int(handle)], [KEYWORD, b"\\Flagged" if kept else b"\\Seen"]))

    def _safely(self, step: Callable[[], Any]) -> Any:
        """An IMAP step; a connection lost or refused midway is one MailboxError (what was
        recorded stays recorded; the next read carries on)."""
        from imapclient.exceptions import IMAPClientError
        try:
            return step()
        except (OSError, IMAPClientError) as error:
            raise MailboxError(f"{self.where}: the connection failed while reading ({error}); the messages "
                               "recorded so far stay recorded, run again to read the rest") from None

    def close(self) -> None:
        try:
            self.client.logout()
        except Exception:  # noqa: BLE001 - closing a connection that may be gone already
            pass
