"""Polls made on behalf of WaitStatus: one schedule per subject, bounded upstream.

A WaitStatus caller may ask about any name, so each wait would otherwise be a free
stream of provider calls. Here every subject being waited on has one schedule, shared
by all its waiters (the first poll at once, or after ``first`` seconds when the subject
has just changed, then with doubling intervals up to ``longest``), which ends with its
last waiter. Each source has an upstream budget in provider calls per second
(``[sources.<id>.api] wait_calls_per_second``, a token bucket): a poll starts only when
the bucket holds a call's worth, and its actual calls are taken from it afterwards, so
the budget holds whatever a poll costs; a round with no budget is skipped. Each client
may hold at most ``max_polled_waits`` subjects' schedules at once; beyond it, its waits
still end on webhooks and reconciler polls, they only do not add polling.

Only callers with the ``poll`` permission join schedules at all (``rpc.service``
decides), so a read-only client never causes a provider call the reconciler would not
make anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

from statusgate.core.errors import ApiError, Reason
from statusgate.poll.service import PollService

log = logging.getLogger(__name__)

WAIT_POLL_FIRST = 2.0
WAIT_POLL_LONGEST = 30.0


class CallBudget:
    """A token bucket of provider calls (one second's worth, at least one call). A poll
    reserves what the last poll of the source cost before it starts, and settles the
    difference with what it actually cost afterwards, so concurrent polls cannot all
    start on the same tokens and the bucket may only run briefly into debt."""

    def __init__(self, per_second: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._rate = per_second
        self._capacity = max(1.0, per_second)
        self._tokens = self._capacity
        self._clock = clock
        self._updated = clock()
        self._expected = 1  # calls of the last poll

    @property
    def enabled(self) -> bool:
        return self._rate > 0

    def reserve(self) -> int | None:
        """The calls reserved for a poll that may start now; None: not now."""
        if self._rate <= 0:
            return None
        now = self._clock()
        self._tokens = min(self._capacity, self._tokens + (now - self._updated) * self._rate)
        self._updated = now
        if self._tokens < min(self._expected, self._capacity):
            return None
        self._tokens -= self._expected
        return self._expected

    def settle(self, reserved: int, calls: int) -> None:
        self._tokens -= calls - reserved
        if calls:
            self._expected = calls


@dataclass(eq=False)
class Schedule:
    """One subject's polls for its waiters. ``not_found`` is set while the provider's
    last answer was that it does not know the subject (``not_found_error`` says so in
    its words): a waiter the store cannot help either need not wait any longer."""

    key: str
    source: str
    waiters: int = 0
    task: asyncio.Task[None] | None = None
    # Clients holding a lease on it, for their per-client bound.
    clients: Counter[str] = field(default_factory=Counter)
    not_found: asyncio.Event = field(default_factory=asyncio.Event)
    not_found_error: ApiError | None = None

    def heard(self, error: ApiError | None) -> None:
        """Note what a poll of the subject answered."""
        if error is not None and error.reason == Reason.UPSTREAM_NOT_FOUND:
            self.not_found_error = error
            self.not_found.set()
        elif error is None and self.not_found.is_set():
            self.not_found_error = None
            self.not_found = asyncio.Event()  # known again: later waiters wait


class WaitPolls:
    def __init__(
        self,
        polling: PollService,
        budgets: Mapping[str, float],
        *,
        first: float | None = None,
        longest: float | None = None,
    ) -> None:
        self._polling = polling
        self._budgets = {source: CallBudget(rate) for source, rate in budgets.items()}
        # Read at construction, so tests can shorten them for a gateway they start.
        self._first = WAIT_POLL_FIRST if first is None else first
        self._longest = WAIT_POLL_LONGEST if longest is None else longest
        self._schedules: dict[str, Schedule] = {}
        self._held: Counter[str] = Counter()  # client -> schedules it holds
        self.upstream_calls = 0  # made by these schedules (tests, bench)

    @contextlib.contextmanager
    def waiting(
        self, name: str, *, client: str, max_polled: int, changed_ago: float | None
    ) -> Iterator[Schedule | None]:
        """Hold a share of ``name``'s subject's schedule while the block runs; yields
        it, or None when there is none (the name cannot be polled, its source has no
        budget, or the client holds its maximum of schedules)."""
        schedule = self._join(name, client, max_polled, changed_ago)
        try:
            yield schedule
        finally:
            if schedule is not None:
                self._leave(schedule, client)

    def _join(
        self, name: str, client: str, max_polled: int, changed_ago: float | None
    ) -> Schedule | None:
        key = self._polling.target(name)
        if key is None:
            return None
        source = key.split("/")[1]
        budget = self._budgets.get(source)
        if budget is None or not budget.enabled:
            return None
        schedule = self._schedules.get(key)
        holds = schedule is not None and schedule.clients[client] > 0
        if not holds and self._held[client] >= max_polled:
            return None
        if schedule is None:
            schedule = self._schedules[key] = Schedule(key, source)
            # Just changed: news may be on its way, so the first poll waits a little.
            delay = self._first if changed_ago is not None and changed_ago < self._first else 0
            schedule.task = asyncio.get_running_loop().create_task(
                self._run(schedule, budget, delay), name=f"wait-poll {key}"
            )
        if schedule.clients[client] == 0:
            self._held[client] += 1
        schedule.clients[client] += 1
        schedule.waiters += 1
        return schedule

    def _leave(self, schedule: Schedule, client: str) -> None:
        schedule.waiters -= 1
        schedule.clients[client] -= 1
        if schedule.clients[client] == 0:
            del schedule.clients[client]
            self._held[client] -= 1
            if self._held[client] == 0:
                del self._held[client]
        if schedule.waiters == 0:
            del self._schedules[schedule.key]
            if schedule.task is not None:
                schedule.task.cancel()

    async def _run(self, schedule: Schedule, budget: CallBudget, delay: float) -> None:
        interval = self._first
        if delay:
            await asyncio.sleep(delay)
        while True:
            reserved = budget.reserve()
            if reserved is not None:
                calls = 0
                try:
                    result = await self._polling.poll(schedule.key, within=None)
                    calls = result.upstream_calls
                    schedule.heard(result.error)
                except Exception:  # a poll failure must not end the schedule
                    log.exception("polling %s for its waiters failed", schedule.key)
                finally:
                    budget.settle(reserved, calls)
                self.upstream_calls += calls
            await asyncio.sleep(interval)
            interval = min(interval * 2, self._longest)

    def schedules(self) -> int:
        """Subjects with a schedule now (tests, bench)."""
        return len(self._schedules)

    async def close(self) -> None:
        tasks = [s.task for s in self._schedules.values() if s.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._schedules.clear()
