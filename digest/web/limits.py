"""A small in-memory sliding-window rate limit (per process), for the subscribe form."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable


class RateLimit:
    def __init__(self, per_key: int = 5, window: float = 3600.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.per_key, self.window, self.clock = per_key, window, clock
        self.hits: dict[str, deque[float]] = {}
        self.lock = threading.Lock()

    def allow(self, key: str, limit: int | None = None) -> bool:
        """Count one hit for key; False once it has had `limit` in the window."""
        now = self.clock()
        with self.lock:
            hits = self.hits.setdefault(key, deque())
            while hits and hits[0] <= now - self.window:
                hits.popleft()
            if len(hits) >= (limit or self.per_key):
                return False
            hits.append(now)
            return True
