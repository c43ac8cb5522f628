"""Counts over the last hour, kept in memory: what an operator asks first ("how many
auth failures lately?"), which a Prometheus counter since start-up does not answer.

Each key has one bucket per minute; a count is the sum of the buckets of the last
``window`` seconds, so it is exact to the minute and costs a constant memory per key.
Keys are configured sources, so their number is bounded by the configuration.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

BUCKET_SECONDS = 60
WINDOW_SECONDS = 3600


class RecentCounts:
    def __init__(
        self, window: float = WINDOW_SECONDS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.window = window
        self._buckets = max(1, int(window // BUCKET_SECONDS))
        self._clock = clock
        # key -> (minute, count) pairs, oldest first, at most ``_buckets`` of them.
        self._counts: dict[str, deque[tuple[int, int]]] = {}

    def add(self, key: str, count: int = 1) -> None:
        minute = int(self._clock() // BUCKET_SECONDS)
        buckets = self._counts.setdefault(key, deque(maxlen=self._buckets))
        if buckets and buckets[-1][0] == minute:
            buckets[-1] = (minute, buckets[-1][1] + count)
        else:
            buckets.append((minute, count))

    def count(self, key: str) -> int:
        """What was added for ``key`` within the window."""
        oldest = int(self._clock() // BUCKET_SECONDS) - self._buckets + 1
        return sum(n for minute, n in self._counts.get(key, ()) if minute >= oldest)
