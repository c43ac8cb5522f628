"""Single flight: concurrent callers asking for the same key share one run.

The first caller starts the run as a task of its own, so a caller that gives up (its
deadline passed, its RPC was cancelled) never cancels the run the others are waiting
for. Once the run finishes the key is free again: the next caller starts a new one.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class SingleFlight(Generic[K, V]):
    def __init__(self) -> None:
        self._flights: dict[K, asyncio.Task[V]] = {}
        self._waiters: dict[K, int] = {}

    def join(self, key: K, start: Callable[[], Awaitable[V]]) -> tuple[asyncio.Task[V], bool]:
        """The run in flight for ``key``, started with ``start()`` if there is none;
        and whether this caller started it."""
        task = self._flights.get(key)
        if task is not None:
            return task, False
        task = asyncio.ensure_future(start())
        self._flights[key] = task
        task.add_done_callback(lambda done: self._finished(key, done))
        return task, True

    async def wait(self, task: asyncio.Task[V], key: K, within: float | None) -> V:
        """The run's result, waiting at most ``within`` seconds (TimeoutError after; the
        run goes on for the others)."""
        self._waiters[key] = self._waiters.get(key, 0) + 1
        try:
            return await asyncio.wait_for(asyncio.shield(task), within)
        finally:
            self._waiters[key] -= 1
            if not self._waiters[key]:
                del self._waiters[key]

    def waiters(self, key: K) -> int:
        """How many callers wait on ``key``'s run now (for tests and benchmarks)."""
        return self._waiters.get(key, 0)

    def in_flight(self, key: K) -> bool:
        return key in self._flights

    async def close(self) -> None:
        tasks = list(self._flights.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task

    def _finished(self, key: K, task: asyncio.Task[V]) -> None:
        if self._flights.get(key) is task:
            del self._flights[key]
        # Retrieve the outcome so a run whose waiters all gave up does not log
        # "exception was never retrieved".
        if not task.cancelled():
            task.exception()
