"""One family of errors. The CLI turns each into `Error: <what>; <fix>` and an exit code,
the web app into a page with an HTTP status: both read them off the class.

The root, then a base per area (config, usage, store; and one per phase: read, pick,
write, send), then the leaves, which live in their phase (`read.fetch.FetchError`,
`send.mailers.MailerError`...). `str(error)` is one line saying what failed and what
to do about it.
"""

from __future__ import annotations


class DigestError(Exception):
    """Base of every error the library raises on purpose."""

    exit_code = 1          # the CLI's exit code: 2 for usage and configuration, 1 for run failures
    http_status = 500      # the web app's status for it


class ConfigError(DigestError):
    """config.toml is missing, unreadable or invalid; `problems` holds every one found."""

    exit_code = 2

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


class UsageError(DigestError):
    """A command or a form asked for something that cannot work (unknown source, list...)."""

    exit_code = 2
    http_status = 400


class NotFound(UsageError):
    """What was asked for does not exist (a list, an edition)."""

    http_status = 404


class StoreError(DigestError):
    """The database could not be reached or written."""

    @property
    def busy(self) -> bool:
        """Another process holds the database locked (SQLite's busy timeout ran out,
        PostgreSQL's lock wait failed): worth trying again in a moment."""
        return "database is locked" in str(self)          # what db.guard.describe says for either

    @property
    def http_status(self) -> int:  # type: ignore[override]
        return 503 if self.busy else 500


class LockedError(DigestError):
    """Another process holds the lock."""

    http_status = 409


class ReadError(DigestError):
    """Reading a source failed (fetch, parse); the source's report names it."""


class PickError(DigestError):
    """Picking or tuning cannot go on (no past editions to learn from...)."""


class WriteError(DigestError):
    """The edition cannot be written (templates, size budget, nothing to send)."""


class SendError(DigestError):
    """Sending cannot go on (not ready for real mail, the mailer refused, a list file...)."""
