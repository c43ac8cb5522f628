"""The gauges that are read rather than counted, refreshed on a schedule
(``metrics_refresh_seconds``, 15 s by default), never per scrape: a scrape must not
cost the store queries, nor be slowed by a store that does not answer.

Every process refreshes what only it knows: its store's readiness, its Watch streams'
lag, its circuit breakers (open turns half-open by the clock alone, with no call to
report it), its GC counts. What the store knows (the head sequence, the reconciler's
backlog, subjects by state, the oldest open subject) is the same for every worker, so
only one worker of a supervised gateway (``store_derived``) reads it, into gauges whose
multiprocess mode takes the most recent value.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Protocol

from statusgate.telemetry.metrics import Metrics
from statusgate.v1.status_pb2 import Status, StatusEvent

log = logging.getLogger(__name__)

DEFAULT_INTERVAL = 15.0


class Backlog(Protocol):
    """``store.base.PollBacklog``."""

    @property
    def due(self) -> int: ...

    @property
    def oldest_due_at(self) -> datetime | None: ...


class StoreView(Protocol):
    """What the refresh reads of the store (``store.base.Store``)."""

    async def ready(self) -> bool: ...

    async def last_sequence(self) -> int: ...

    async def count_subjects(self) -> Mapping[tuple[str, int], int]: ...

    async def oldest_non_terminal(self, source: str) -> Status | None: ...

    async def list_events(
        self, name: str, *, after_sequence: int = 0, limit: int = 100
    ) -> Sequence[StatusEvent]: ...


class GaugeRefresher:
    def __init__(
        self,
        metrics: Metrics,
        store: StoreView,
        *,
        watch_lag: Callable[[], int],
        breaker: Callable[[str], str | None],
        backlog: Callable[[str], Awaitable[Backlog | None]],
        interval: float = DEFAULT_INTERVAL,
        store_derived: bool = True,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._metrics = metrics
        self._store = store
        self._watch_lag = watch_lag
        self._breaker = breaker
        self._backlog = backlog
        self._interval = interval
        self._store_derived = store_derived
        self._clock = clock
        self._task: asyncio.Task[None] | None = None
        # Source -> (its oldest open subject, when that was first seen): read again only
        # when another subject becomes the oldest (a first event never changes).
        self._first_seen: dict[str, tuple[str, datetime]] = {}

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="gauges")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await self.refresh()
            except Exception:
                # A store that does not answer shows in store_up; the others keep their
                # last values until it does.
                log.debug("refreshing the metrics' gauges failed", exc_info=True)
            await asyncio.sleep(self._interval)

    async def refresh(self) -> None:
        """Every gauge once, now."""
        metrics = self._metrics
        metrics.watch_lag.set(self._watch_lag())
        for source, bundle in metrics.sources.items():
            state = self._breaker(source)
            if state is not None:
                bundle.breaker(state)
        if metrics.gc is not None:
            metrics.gc.sync()
        try:
            up = await self._store.ready()
        except Exception:
            up = False
        metrics.store_up.set(1 if up else 0)
        if self._store_derived and up:
            await self._refresh_store()

    async def _refresh_store(self) -> None:
        metrics = self._metrics
        now = self._clock()
        # Everything is read first and set at once, with no await in between: a scrape
        # sees one refresh or the next, never half of each.
        head = await self._store.last_sequence()
        counts = await self._store.count_subjects()
        due = 0
        lag = 0.0
        ages: dict[str, float] = {}
        for source in metrics.sources:
            backlog = await self._backlog(source)
            if backlog is not None:
                due += backlog.due
                if backlog.oldest_due_at is not None:
                    lag = max(lag, (now - backlog.oldest_due_at).total_seconds())
            ages[source] = await self._oldest_age(source, now)
        metrics.head_sequence.set(head)
        for source, bundle in metrics.sources.items():
            for state, gauge in bundle.subjects.items():
                gauge.set(counts.get((source, state), 0))
            bundle.oldest_open_age.set(ages[source])
        metrics.reconciler_backlog.set(due)
        metrics.reconciler_lag.set(lag)

    async def _oldest_age(self, source: str, now: datetime) -> float:
        """Seconds since the source's non-terminal subject that changed longest ago was
        first seen (its first event); 0 when it has none."""
        oldest = await self._store.oldest_non_terminal(source)
        if oldest is None:
            return 0.0
        known = self._first_seen.get(source)
        if known is not None and known[0] == oldest.name:
            first = known[1]
        else:
            events = await self._store.list_events(oldest.name, limit=1)
            if events and events[0].HasField("received_at"):
                first = events[0].received_at.ToDatetime(UTC)
            else:
                first = oldest.updated_at.ToDatetime(UTC)
            self._first_seen[source] = (oldest.name, first)
        return max(0.0, (now - first).total_seconds())
