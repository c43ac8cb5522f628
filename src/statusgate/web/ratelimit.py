"""Per-source token buckets: a provider that floods gets 429, others are not slowed."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from statusgate.config import RateLimit


class TokenBucket:
    def __init__(self, limit: RateLimit, clock: Callable[[], float] = time.monotonic) -> None:
        self._rate = limit.per_second
        self._capacity = float(limit.burst or max(1.0, limit.per_second))
        self._tokens = self._capacity
        self._clock = clock
        self._updated = clock()

    def take(self) -> float:
        """0 when a token was taken; otherwise the seconds until one will be there."""
        now = self._clock()
        self._tokens = min(self._capacity, self._tokens + (now - self._updated) * self._rate)
        self._updated = now
        if self._tokens >= 1:
            self._tokens -= 1
            return 0.0
        return (1 - self._tokens) / self._rate


def retry_after_header(wait_seconds: float) -> str:
    """Retry-After is whole seconds; never 0, which some clients take as "now, again"."""
    return str(max(1, math.ceil(wait_seconds)))
