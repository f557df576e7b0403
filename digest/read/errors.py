"""The read phase's errors: a source could not be fetched, or what came is no feed."""

from __future__ import annotations

from ..errors import ReadError


class FetchError(ReadError):
    """A feed could not be fetched: HTTP status, timeout, size cap, foreign redirect..."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class FeedError(ReadError):
    """Bytes were fetched but are not a usable feed (HTML page, empty, unparseable)."""
