"""In-memory limits (per process): a sliding-window rate limit for the subscribe forms,
and a throttle with a growing delay for the editor's login."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence


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

    def allow_all(self, limits: Sequence[tuple[str, int] | tuple[str, int, float]]) -> bool:
        """Count one hit for every key, or for none: False, counting nothing, when any
        key has had its limit in its window (so a refusal by one limit, say the one per
        address, does not use up another, say the one for all clients together). A limit
        is (key, most) in this limiter's window, or (key, most, window in seconds)."""
        now = self.clock()
        with self.lock:
            for key, limit, *window in limits:              # a refusal stores nothing, not even a key
                hits = self.hits.get(key, ())
                while hits and hits[0] <= now - (window[0] if window else self.window):
                    hits.popleft()
                if len(hits) >= limit:
                    return False
            if len(self.hits) > MAX_CLIENTS:                # a flood of keys: forget the stale ones
                longest = max([self.window, *(rest[0] for _, _, *rest in limits if rest)])
                self.hits = {k: v for k, v in self.hits.items() if v and v[-1] > now - longest}
            for key, *_ in limits:
                self.hits.setdefault(key, deque()).append(now)
            return True


class LoginThrottle:
    """Failed logins, per client and for all clients together. The first `free` failures
    cost nothing; each one after that locks out for `base` seconds, doubled per further
    failure, at most `cap`. While locked out an attempt is refused (429) unchecked, so it
    neither guesses nor adds to the count. Failures older than `forget` seconds since the
    last one are forgotten; a good password clears its client's count (not the global one)."""

    def __init__(self, free: int = 5, base: float = 30.0, cap: float = 3600.0, forget: float = 6 * 3600.0,
                 global_free: int = 20, global_base: float = 5.0, global_cap: float = 300.0) -> None:
        self.rules = {False: (free, base, cap), True: (global_free, global_base, global_cap)}
        self.forget = forget
        self.failures: dict[str, tuple[int, float]] = {}      # key: (count, time of the last failure)
        self.lock = threading.Lock()

    def wait(self, client: str, now: float) -> float:
        """Seconds before this client may try again (0: it may try now)."""
        with self.lock:
            return max(self._wait(client, now, False), self._wait(GLOBAL, now, True))

    def failed(self, client: str, now: float) -> None:
        with self.lock:
            if len(self.failures) > MAX_CLIENTS:            # a flood of addresses: drop the stale ones
                self.failures = {k: v for k, v in self.failures.items() if now - v[1] < self.forget}
            for key in (client, GLOBAL):
                count, _ = self._current(key, now)
                self.failures[key] = (count + 1, now)

    def succeeded(self, client: str) -> None:
        with self.lock:
            self.failures.pop(client, None)

    def _current(self, key: str, now: float) -> tuple[int, float]:
        count, last = self.failures.get(key, (0, now))
        if now - last >= self.forget:
            self.failures.pop(key, None)
            return 0, now
        return count, last

    def _wait(self, key: str, now: float, overall: bool) -> float:
        free, base, cap = self.rules[overall]
        count, last = self._current(key, now)
        if count < free:
            return 0.0
        return max(0.0, last + min(cap, base * 2 ** (count - free)) - now)


GLOBAL = "\0all"
MAX_CLIENTS = 10_000
