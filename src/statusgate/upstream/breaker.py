"""A circuit breaker per source: while a provider is down, polls fail fast.

Closed: calls go through; consecutive failures (5xx, timeouts, dropped connections,
garbage) are counted and any answer that shows the provider alive resets the count.
Open: after ``failures`` in a row, every call is refused for ``cooldown`` seconds, so a
dead provider costs the callers nothing and is not hammered by retries. Half-open: after
the cool-down exactly one trial call goes through; its success closes the breaker, its
failure opens it for another cool-down. Outcomes that say nothing about the provider's
health (a 429, a call cut short by the caller's own deadline) are neutral.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


class BreakerState(enum.StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


class Outcome(enum.Enum):
    SUCCESS = "success"
    FAILURE = "failure"
    NEUTRAL = "neutral"


class CircuitBreaker:
    def __init__(
        self,
        failures: int,
        cooldown: float,
        *,
        name: str = "",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failures < 1 or cooldown <= 0:
            raise ValueError("failures must be at least 1 and cooldown positive")
        self._threshold = failures
        self._cooldown = cooldown
        self._name = name
        self._clock = clock
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._trial_in_flight = False

    @property
    def state(self) -> BreakerState:
        if self._state == BreakerState.OPEN and self.retry_in() == 0:
            return BreakerState.HALF_OPEN
        return self._state

    @property
    def consecutive_failures(self) -> int:
        return self._failures

    def retry_in(self) -> float:
        """Seconds until an open breaker lets a trial call through (0 when it would)."""
        if self._state != BreakerState.OPEN:
            return 0.0
        return max(0.0, self._opened_at + self._cooldown - self._clock())

    def allow(self) -> bool:
        """Whether a call may go out now. Every allowed call must be followed by exactly
        one ``record``."""
        if self._state == BreakerState.OPEN:
            if self.retry_in() > 0:
                return False
            self._state = BreakerState.HALF_OPEN
            self._trial_in_flight = False
        if self._state == BreakerState.HALF_OPEN:
            if self._trial_in_flight:
                return False
            self._trial_in_flight = True
        return True

    def record(self, outcome: Outcome) -> None:
        if outcome == Outcome.SUCCESS:
            if self._state != BreakerState.CLOSED:
                log.info("%s API answers again: circuit closed", self._name)
            self._state = BreakerState.CLOSED
            self._failures = 0
            self._trial_in_flight = False
        elif outcome == Outcome.FAILURE:
            self._failures += 1
            if self._state == BreakerState.HALF_OPEN or self._failures >= self._threshold:
                if self._state != BreakerState.OPEN:
                    log.warning(
                        "%s API failed %d times in a row: circuit open for %.1fs",
                        self._name,
                        self._failures,
                        self._cooldown,
                    )
                self._state = BreakerState.OPEN
                self._opened_at = self._clock()
                self._trial_in_flight = False
        elif self._state == BreakerState.HALF_OPEN:
            # The trial told us nothing: let the next call try instead.
            self._trial_in_flight = False
