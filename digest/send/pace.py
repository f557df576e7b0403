"""The pace of a send: the relay's rate limits, shared by every worker of a process.

`take(n)` is called just before n messages pass the point of no return; it waits for its
turn under `[sending].max_per_second` (messages spaced evenly, whatever the number of
workers), and raises QuotaReached when `max_per_hour` would be passed (nothing of those n
has gone). `pause(seconds)` is a provider's "slow down" (SendGrid's 429): every worker
waits until it is over.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from ..errors import SendError

HOUR = 3600.0


class QuotaReached(SendError):
    """The hourly quota is used up: the rest of the edition waits until `resume_at`."""

    def __init__(self, message: str, resume_at: datetime) -> None:
        super().__init__(message)
        self.resume_at = resume_at


class Gate:
    def __init__(self, per_second: float | None = None, per_hour: int | None = None, sent_last_hour: int = 0,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
                 wall: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.per_second, self.per_hour = per_second, per_hour
        self.clock, self.sleep, self.wall = clock, sleep, wall
        self.lock = threading.Lock()
        self.next_turn = 0.0                  # when the next message may go (max_per_second)
        self.paused_until = 0.0
        self.hour: deque[tuple[float, int]] = deque()
        if sent_last_hour:                    # sent before this process started: counted as just now
            self.hour.append((clock(), sent_last_hour))
        self.in_hour = sent_last_hour

    def take(self, n: int) -> None:
        if n <= 0:
            return
        with self.lock:
            now = self.clock()
            self._hourly(now, n)
            start = max(now, self.next_turn, self.paused_until)
            if self.per_second:
                self.next_turn = start + n / self.per_second
        if start > now:
            self.sleep(start - now)

    def room(self, wanted: int) -> int:
        """How many of `wanted` messages the hourly quota lets go now; QuotaReached at 0."""
        if not self.per_hour:
            return wanted
        with self.lock:
            now = self.clock()
            self._forget(now)
            left = self.per_hour - self.in_hour
            if left <= 0:
                raise self._reached(now)
        return min(wanted, left)

    def wait_out_pause(self) -> None:
        """A request asked again (a retry) waits out a provider's "slow down" too."""
        with self.lock:
            left = self.paused_until - self.clock()
        if left > 0:
            self.sleep(left)

    def pause(self, seconds: float) -> None:
        with self.lock:
            self.paused_until = max(self.paused_until, self.clock() + seconds)

    def _hourly(self, now: float, n: int) -> None:
        if not self.per_hour:
            return
        self._forget(now)
        if self.in_hour + n > self.per_hour:
            raise self._reached(now)
        self.hour.append((now, n))
        self.in_hour += n

    def _forget(self, now: float) -> None:
        while self.hour and self.hour[0][0] <= now - HOUR:
            self.in_hour -= self.hour.popleft()[1]

    def _reached(self, now: float) -> QuotaReached:
        oldest = self.hour[0][0] if self.hour else now
        resume = self.wall() + timedelta(seconds=max(1.0, oldest + HOUR - now))
        return QuotaReached(f"the hourly quota of {self.per_hour:,} messages ([sending].max_per_hour) is "
                            f"reached; the rest goes from {resume:%H:%M} UTC", resume)
