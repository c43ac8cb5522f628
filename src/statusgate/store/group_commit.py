"""Group commit, shared by the SQLite and PostgreSQL stores.

``submit`` queues a request and awaits its future. One writer task takes everything
pending (up to ``max_batch``) and hands it to the store's ``commit`` as one transaction,
so N concurrent webhooks cost one sync; requests that arrive meanwhile form the next
batch. When a commit fails, every request of the batch gets StoreUnavailableError and
the committer is unhealthy until a commit succeeds again; while unhealthy and idle it
calls the store's ``probe`` (a tiny real commit), because a store that is not ready gets
no traffic from load balancers and would otherwise never learn it recovered.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from opentelemetry.trace import Span

from statusgate.store.base import (
    CommitObserver,
    IngestRequest,
    IngestResult,
    StoreUnavailableError,
)
from statusgate.telemetry import tracing

log = logging.getLogger(__name__)

# The outcome of each request of a batch, in order: its result, or the exception that
# failed it alone (a bug in one request must not fail the others).
CommitBatch = Callable[[list[IngestRequest]], Awaitable[Sequence[IngestResult | Exception]]]


@dataclass(slots=True)
class _Pending:
    request: IngestRequest
    future: asyncio.Future[IngestResult]
    # The span of the webhook or poll it came from (tracing on): linked with the batch's.
    origin: Span | None


class GroupCommitter:
    def __init__(
        self,
        store_name: str,
        commit: CommitBatch,
        probe: Callable[[], Awaitable[None]],
        *,
        max_batch: int,
        probe_interval: float,
        commit_delay: float = 0.0,
    ) -> None:
        if max_batch < 1 or probe_interval <= 0:
            raise ValueError("max_batch and probe_interval must be positive")
        self._store_name = store_name
        self._commit_batch = commit
        self._probe_commit = probe
        self._max_batch = max_batch
        self._probe_interval = probe_interval
        self._commit_delay = commit_delay
        self._pending: collections.deque[_Pending] = collections.deque()
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        # Committed batches: with concurrent ingests, well below the number of requests.
        self.commits = 0
        self.healthy = True
        self.observer: CommitObserver | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done() and not self._stopping

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(
            self._run(), name=f"{self._store_name}-writer"
        )

    async def stop(self) -> None:
        """Commit what is queued, then end the writer task."""
        self._stopping = True
        self._wakeup.set()
        if self._task is not None:
            await self._task

    async def submit(self, request: IngestRequest) -> IngestResult:
        if not self.running:
            raise StoreUnavailableError(f"the {self._store_name} store is not open")
        future: asyncio.Future[IngestResult] = asyncio.get_running_loop().create_future()
        self._pending.append(_Pending(request, future, tracing.current_span()))
        self._wakeup.set()
        # A cancelled caller does not withdraw the request: it may already be in a
        # batch, and committing a delivery nobody waits for is harmless.
        return await future

    async def _run(self) -> None:
        try:
            while True:
                if not self._pending:
                    if self._stopping:
                        return
                    await self._wait_for_work()
                    continue
                if self._commit_delay and len(self._pending) < self._max_batch:
                    # Like PostgreSQL's commit_delay: a moment's wait lets the requests
                    # already on their way share this commit, which costs ~1 ms of CPU
                    # and a sync whatever its size, and wakes every Watch stream once.
                    await asyncio.sleep(self._commit_delay)
                count = min(len(self._pending), self._max_batch)
                await self._commit([self._pending.popleft() for _ in range(count)])
        finally:
            # Only reached early through a bug or cancellation: never leave a caller
            # waiting on a future nobody will resolve.
            while self._pending:
                _fail(self._pending.popleft().future, f"the {self._store_name} writer stopped")

    async def _wait_for_work(self) -> None:
        self._wakeup.clear()
        if self.healthy:
            await self._wakeup.wait()
            return
        try:
            await asyncio.wait_for(self._wakeup.wait(), self._probe_interval)
        except TimeoutError:
            await self._probe()

    async def _commit(self, batch: list[_Pending]) -> None:
        # One span per commit, linked both ways with those of the requests in it.
        with tracing.commit_span(self._store_name, (pending.origin for pending in batch)):
            await self._commit_traced(batch)

    async def _commit_traced(self, batch: list[_Pending]) -> None:
        started = time.perf_counter()
        try:
            outcomes = await self._commit_batch([pending.request for pending in batch])
        except Exception as exc:
            tracing.fail(f"commit failed: {type(exc).__name__}")
            self.healthy = False
            if self.observer is not None:
                self.observer.commit_failed(len(batch))
            log.error("%s commit of %d requests failed: %r", self._store_name, len(batch), exc)
            for pending in batch:
                _fail(pending.future, f"{self._store_name} commit failed: {exc!r}", cause=exc)
            return
        self.healthy = True
        self.commits += 1
        if self.observer is not None:
            self.observer.committed(len(batch), time.perf_counter() - started)
        for pending, outcome in zip(batch, outcomes, strict=True):
            if pending.future.done():  # the caller was cancelled
                continue
            if isinstance(outcome, Exception):
                pending.future.set_exception(outcome)
            else:
                pending.future.set_result(outcome)

    async def _probe(self) -> None:
        try:
            await self._probe_commit()
        except Exception as exc:
            log.warning("%s store still cannot commit: %r", self._store_name, exc)
        else:
            log.info("%s store can commit again", self._store_name)
            self.healthy = True
            if self.observer is not None:
                self.observer.commit_recovered()


def _fail(
    future: asyncio.Future[IngestResult], message: str, cause: Exception | None = None
) -> None:
    if future.done():
        return
    # One exception per future: a shared instance would collect every awaiter's traceback.
    error = StoreUnavailableError(message)
    error.__cause__ = cause
    future.set_exception(error)
