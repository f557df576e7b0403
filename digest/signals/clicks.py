"""Which clicks count: the one rule, and its numbers, here.

Inboxes click too. Outlook's Safe Links, corporate gateways and some mail apps fetch
every link of a message within seconds of its arrival; a subscriber clicks a few, seconds
or minutes apart. So, per client (an IPv4 address or an IPv6 /56) and edition:

- a HEAD request never counts (link checkers use it);
- a burst, BURST_LINKS different links within BURST_SECONDS, is a machine: the clicks
  of the burst already counted are taken back, and the client's clicks on that edition
  do not count for QUIET_SECONDS;
- the same link again within REPEAT_SECONDS is the same click.

Only counts are kept in the database; this memory of recent clients lives in the
process and is forgotten (it is never written anywhere).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

BURST_LINKS = 4            # different links of one edition...
BURST_SECONDS = 5.0        # ...opened within this many seconds by one client: a scanner
QUIET_SECONDS = 3600.0     # after a burst, that client's clicks on the edition do not count
REPEAT_SECONDS = 3600.0    # one link opened again by one client within this is one click
MAX_CLIENTS = 50_000       # (client, edition) pairs remembered before the stale ones are forgotten

Change = tuple[int, int]   # (link number, +1 or -1)


@dataclass
class _Recent:
    opened: deque[tuple[float, int]] = field(default_factory=deque)   # (when, link) of every request
    counted: dict[int, float] = field(default_factory=dict)           # link -> when its click counted
    quiet_until: float = 0.0
    last: float = 0.0


class ClickRule:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.recent: dict[tuple[str, int], _Recent] = {}
        self.lock = threading.Lock()

    def judge(self, client: str, edition_id: int, n: int, head: bool = False) -> list[Change]:
        """What this request changes in the edition's counts: [(n, 1)] for a click that
        counts, [(m, -1), ...] to take back a burst's clicks, [] for nothing."""
        if head:
            return []
        now = self.clock()
        with self.lock:
            self._forget_stale(now)
            seen = self.recent.setdefault((client, edition_id), _Recent())
            seen.last = now
            return self._judge(seen, n, now)

    def _judge(self, seen: _Recent, n: int, now: float) -> list[Change]:
        seen.opened.append((now, n))
        while seen.opened and seen.opened[0][0] < now - BURST_SECONDS:
            seen.opened.popleft()
        if now < seen.quiet_until:
            return []
        if len({link for _, link in seen.opened}) >= BURST_LINKS:
            seen.quiet_until = now + QUIET_SECONDS
            burst = [link for link, at in seen.counted.items() if at >= now - BURST_SECONDS]
            for link in burst:
                del seen.counted[link]
            return [(link, -1) for link in burst]
        if now - seen.counted.get(n, -REPEAT_SECONDS - 1) < REPEAT_SECONDS:
            return []
        seen.counted[n] = now
        return [(n, 1)]

    def _forget_stale(self, now: float) -> None:
        if len(self.recent) <= MAX_CLIENTS:
            return
        keep = max(REPEAT_SECONDS, QUIET_SECONDS)
        self.recent = {pair: seen for pair, seen in self.recent.items() if now - seen.last < keep}
        if len(self.recent) > MAX_CLIENTS:            # a flood of fresh clients: forget the oldest half
            ordered = sorted(self.recent.items(), key=lambda item: item[1].last)
            self.recent = dict(ordered[len(ordered) // 2:])
