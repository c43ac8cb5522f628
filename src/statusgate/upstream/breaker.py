"""A circuit breaker per source: while a provider is down, polls fail fast.

Closed: calls go through; consecutive failures (5xx, timeouts, dropped connections,
garbage) are counted and any answer that shows the provider alive resets the count.
Open: after ``failures`` in a row, every call is refused for ``cooldown`` seconds, so a
dead provider costs the callers nothing and is not hammered by retries. Half-open: after
the cool-down exactly one trial call goes through; its success closes the breaker, its
failure opens it for another cool-down. Calls that arrive while the trial is out wait
for its verdict (``admit``) rather than fail: a poll calls several endpoints at once,
and the first poll after a cool-down must not report the provider down because its
second call met the breaker while its first was proving the provider up. Outcomes that
say nothing about the provider's health (a 429, a call cut short by the caller's own
deadline) are neutral.

The breaker logs its changes of state, not its calls: one warning when it opens (with
the failure that opened it), one line when the provider answers again.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from statusgate.telemetry import tracing

log = logging.getLogger(__name__)


class BreakerState(enum.StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


@dataclass(frozen=True, slots=True)
class BreakerSnapshot:
    """What a breaker is doing now, for an operator."""

    state: BreakerState
    consecutive_failures: int
    # Seconds until an open breaker lets a trial call through.
    retry_in: float


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
        # Set when the trial in flight has recorded its outcome.
        self._verdict: asyncio.Event | None = None

    @property
    def state(self) -> BreakerState:
        if self._state == BreakerState.OPEN and self.retry_in() == 0:
            return BreakerState.HALF_OPEN
        return self._state

    @property
    def consecutive_failures(self) -> int:
        return self._failures

    def snapshot(self) -> BreakerSnapshot:
        return BreakerSnapshot(self.state, self._failures, self.retry_in())

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
            self._verdict = asyncio.Event()
        return True

    async def admit(self, within: float) -> bool:
        """``allow``, except that a call arriving while the half-open trial is in
        flight waits for the trial's outcome: it goes out once the trial closed the
        breaker (or became the next trial when the outcome was neutral), and is refused
        when the trial failed. Raises TimeoutError after ``within`` seconds of waiting."""
        async with asyncio.timeout(within):
            while not self.allow():
                verdict = self._verdict
                if self._state != BreakerState.HALF_OPEN or verdict is None:
                    return False
                await verdict.wait()
        return True

    def record(self, outcome: Outcome, detail: str = "") -> None:
        """The outcome of an allowed call; ``detail`` says what failed (for the log
        line when this failure opens the breaker)."""
        if outcome == Outcome.SUCCESS:
            if self._state != BreakerState.CLOSED:
                tracing.add_event("statusgate.breaker.closed", {})
                log.info(
                    "%s API answers again after %d failed calls: polls call it again",
                    self._name,
                    self._failures,
                )
            self._state = BreakerState.CLOSED
            self._failures = 0
            self._end_trial()
        elif outcome == Outcome.FAILURE:
            self._failures += 1
            if self._state == BreakerState.HALF_OPEN or self._failures >= self._threshold:
                if self._state == BreakerState.CLOSED:
                    # Once per outage: a failed trial keeps it open without a new line.
                    log.warning(
                        "%s API failed %d times in a row, last: %s; polls fail fast, "
                        "one trial call every %.1fs until it answers",
                        self._name,
                        self._failures,
                        detail or "(no detail)",
                        self._cooldown,
                    )
                self._state = BreakerState.OPEN
                self._opened_at = self._clock()
                self._end_trial()
                # On the attempt that opened it (or kept it open after a failed trial).
                tracing.add_event(
                    "statusgate.breaker.opened", {"statusgate.breaker.failures": self._failures}
                )
        elif self._state == BreakerState.HALF_OPEN:
            # The trial told us nothing: let the next call try instead.
            self._end_trial()

    def _end_trial(self) -> None:
        self._trial_in_flight = False
        if self._verdict is not None:
            self._verdict.set()
            self._verdict = None
