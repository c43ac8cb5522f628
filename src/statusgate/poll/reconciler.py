"""The reconciler: polls quiet, non-terminal subjects, because providers lose webhooks
(some never retry a webhook; others document polling as the backup).

One task per gateway. Every tick, for each source whose schedule is enabled and whose
API is configured (and whose circuit breaker is not open), it leases a batch of due
subjects from the store (``claim_due_polls``: a lease, so two replicas never poll the
same subject at once), polls them with bounded concurrency through the poller (origin
RECONCILE, so the changes reach Watch streams like any other), and records each outcome
with ``finish_poll``: the next poll in ``interval * 2**attempts`` (capped at
``max_interval``, plus up to 10 % jitter), and a subject that changed starts over.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta

from statusgate.config import SourceConfig
from statusgate.core.errors import Reason
from statusgate.poll.service import DEFAULT_BUDGET, PollResult, PollService
from statusgate.store.base import PollBacklog, PollClaim, Store, StoreUnavailableError
from statusgate.v1.status_pb2 import Origin

log = logging.getLogger(__name__)

DEFAULT_CONCURRENCY = 8
DEFAULT_BATCH = 100
JITTER = 0.1


def default_owner() -> str:
    """Unique per process: a lease names the replica that holds it."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Reconciler:
    def __init__(
        self,
        store: Store,
        poller: PollService,
        sources: Mapping[str, SourceConfig],
        *,
        tick_seconds: float,
        owner: str | None = None,
        concurrency: int = DEFAULT_CONCURRENCY,
        batch: int = DEFAULT_BATCH,
        poll_budget: float = DEFAULT_BUDGET,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._store = store
        self._poller = poller
        self._sources = dict(sources)
        self._tick = tick_seconds
        self.owner = owner or default_owner()
        self._semaphore = asyncio.Semaphore(concurrency)
        self._batch = batch
        self._budget = poll_budget
        # Long enough for a whole batch to be polled at the given concurrency; a lease
        # that runs out only means another replica may poll the subject again.
        self._lease = timedelta(seconds=poll_budget * max(2, batch // concurrency + 1))
        self._clock = clock
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._skipped: set[str] = set()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="reconciler")

    async def stop(self) -> None:
        self._stopping.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.run_once()
            except StoreUnavailableError as error:
                log.warning("reconciler: the store is unavailable: %s", error)
            except Exception:
                log.exception("reconciler tick failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._tick)

    async def run_once(self) -> int:
        """One tick over every source; returns how many subjects it polled."""
        polled = 0
        for source_id, source in self._sources.items():
            if not source.poll.enabled or not self._ready(source_id):
                continue
            polled += await self._reconcile(source)
        return polled

    async def backlog(self, source_id: str) -> PollBacklog | None:
        """The subjects of ``source_id`` this reconciler would claim now (counted
        without leasing); None when it does not reconcile the source (its schedule is
        off, or its API is not configured)."""
        source = self._sources.get(source_id)
        if source is None or not source.poll.enabled or self._poller.missing_settings(source_id):
            return None
        now = self._clock()
        return await self._store.poll_backlog(
            source_id,
            now=now,
            quiet_before=now - timedelta(seconds=source.poll.quiet_seconds),
            changed_after=now - timedelta(seconds=source.poll.max_age_seconds),
        )

    def _ready(self, source_id: str) -> bool:
        missing = self._poller.missing_settings(source_id)
        if missing:
            if source_id not in self._skipped:
                self._skipped.add(source_id)
                log.info(
                    "reconciler: skipping source %s, its API is not configured (%s)",
                    source_id,
                    ", ".join(f"api.{name}" for name in missing),
                )
            return False
        # While the provider is known to be down, claiming would only push every
        # subject's backoff further for nothing.
        return not self._poller.breaker_open(source_id)

    async def _reconcile(self, source: SourceConfig) -> int:
        now = self._clock()
        schedule = source.poll
        claims = await self._store.claim_due_polls(
            source.id,
            now=now,
            quiet_before=now - timedelta(seconds=schedule.quiet_seconds),
            changed_after=now - timedelta(seconds=schedule.max_age_seconds),
            owner=self.owner,
            lease_until=now + self._lease,
            limit=self._batch,
        )
        await asyncio.gather(*(self._poll(source, claim) for claim in claims))
        return len(claims)

    async def _poll(self, source: SourceConfig, claim: PollClaim) -> None:
        async with self._semaphore:
            outcome = await self._poller.poll(
                claim.name, within=self._budget, origin=Origin.ORIGIN_RECONCILE
            )
        attempts, delay = self._next(source, claim, outcome)
        if outcome.error is not None:
            log.debug("reconciler: %s: %s", claim.name, outcome.error.message)
        next_poll_at = self._clock() + timedelta(seconds=delay)
        try:
            await self._store.finish_poll(
                claim.name, owner=self.owner, next_poll_at=next_poll_at, attempts=attempts
            )
        except StoreUnavailableError as error:
            # The lease runs out by itself; the subject is claimed again then.
            log.warning("reconciler: cannot record the poll of %s: %s", claim.name, error)

    def _next(
        self, source: SourceConfig, claim: PollClaim, outcome: PollResult
    ) -> tuple[int, float]:
        """(attempts, seconds until the next poll) after this poll."""
        schedule = source.poll
        error = outcome.error
        if error is not None and error.reason == Reason.POLLING_NOT_SUPPORTED:
            # No endpoint describes it (a payment with callbacks only): not worth
            # asking again.
            return claim.attempts, schedule.max_age_seconds
        if outcome.changed:
            # News: the backoff starts over (and the subject is not quiet again before
            # quiet_seconds anyway).
            return 0, schedule.interval_seconds
        delay = min(schedule.interval_seconds * 2**claim.attempts, schedule.max_interval_seconds)
        return claim.attempts + 1, delay * (1 + random.uniform(0, JITTER))
