"""The console's overview: one panel per source, from what the gateway already knows.

Webhooks by verdict come from the store (so they count every replica's deliveries);
auth failures, which store nothing, and poll errors are this process's counts of the
last hour (``core.recent``); the breaker is the poll service's; the backlog is what the
reconciler would claim now; the oldest non-terminal subject is the store's; the event
sequence is the hub's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from statusgate.core.deliveries import DeliveryVerdict
from statusgate.core.hub import Hub
from statusgate.core.recent import RecentCounts
from statusgate.poll.reconciler import Reconciler
from statusgate.poll.service import PollService
from statusgate.rpc.access import Principal
from statusgate.store.base import PollBacklog, Store
from statusgate.upstream.breaker import BreakerSnapshot
from statusgate.v1.status_pb2 import Status


@dataclass(frozen=True, slots=True)
class SourcePanel:
    source: str
    provider: str
    # Deliveries received in the last hour, by verdict (every verdict present).
    webhooks: dict[DeliveryVerdict, int]
    auth_failures: int
    poll_errors: int
    # API settings still missing before the source can poll (empty: it polls).
    missing_settings: list[str]
    breaker: BreakerSnapshot | None
    # None: the reconciler does not poll this source.
    backlog: PollBacklog | None
    oldest_non_terminal: Status | None
    now: datetime

    @property
    def lag_seconds(self) -> float | None:
        """How long the longest-waiting due subject has been due."""
        if self.backlog is None or self.backlog.oldest_due_at is None:
            return None
        return max(0.0, (self.now - self.backlog.oldest_due_at).total_seconds())


class Overview:
    def __init__(
        self,
        *,
        store: Store,
        hub: Hub,
        polling: PollService,
        reconciler: Reconciler,
        providers: Mapping[str, str],
        auth_failures: RecentCounts,
        poll_errors: RecentCounts,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._store = store
        self._hub = hub
        self._polling = polling
        self._reconciler = reconciler
        # Source id -> its provider's label, in configuration order.
        self.providers = dict(providers)
        self._auth_failures = auth_failures
        self._poll_errors = poll_errors
        self._clock = clock

    @property
    def last_sequence(self) -> int:
        return self._hub.last_sequence

    async def panels(self, caller: Principal) -> list[SourcePanel]:
        """A panel per configured source the caller may see."""
        now = self._clock()
        sources = caller.visible(self.providers)
        counts = await self._store.count_deliveries(
            received_after=now - timedelta(seconds=self._auth_failures.window)
        )
        return list(await asyncio.gather(*(self._panel(s, counts, now) for s in sources)))

    async def _panel(
        self, source: str, counts: Mapping[tuple[str, DeliveryVerdict], int], now: datetime
    ) -> SourcePanel:
        backlog, oldest = await asyncio.gather(
            self._reconciler.backlog(source), self._store.oldest_non_terminal(source)
        )
        return SourcePanel(
            source=source,
            provider=self.providers[source],
            webhooks={verdict: counts.get((source, verdict), 0) for verdict in DeliveryVerdict},
            auth_failures=self._auth_failures.count(source),
            poll_errors=self._poll_errors.count(source),
            missing_settings=self._polling.missing_settings(source),
            breaker=self._polling.breaker(source),
            backlog=backlog,
            oldest_non_terminal=oldest,
            now=now,
        )
