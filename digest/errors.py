"""One family of errors. The CLI turns each into `Error: <what>, <fix>` and an exit code."""

from __future__ import annotations


class DigestError(Exception):
    """Base of every error the library raises on purpose.

    `str(error)` is one line saying what failed and what to do about it.
    """

    exit_code = 1


class ConfigError(DigestError):
    """config.toml is missing, unreadable or invalid; `problems` holds every one found."""

    exit_code = 2

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


class UsageError(DigestError):
    """A command was called with arguments that cannot work (unknown source, list...)."""

    exit_code = 2


class FetchError(DigestError):
    """A feed could not be fetched: HTTP status, timeout, size cap, foreign redirect..."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class FeedError(DigestError):
    """Bytes were fetched but are not a usable feed (HTML page, empty, unparseable)."""


class StoreError(DigestError):
    """The database could not be reached or written."""


class LockedError(DigestError):
    """Another process holds the lock."""
