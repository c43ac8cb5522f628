"""Fan-out of committed events to Watch subscribers.

The hub keeps the most recent events in memory, contiguous by sequence. Every subscriber
has its own cursor and reads at its own pace: from the in-memory tail while it keeps up,
from the store when it fell behind or resumes from an old sequence. Nothing a subscriber
does can block ingest or another subscriber, and nothing is skipped, because the hub only
ever exposes a gap-free prefix of the sequence.

Events reach the hub in two ways: ``offer`` with the events a local commit produced
(possibly out of order, since concurrent ingest calls resume in any order), and
``notify`` when another replica committed (PostgreSQL NOTIFY). Either way, a gap is
filled by reading the store, which returns events gap-free.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Iterable
from typing import Protocol

from statusgate.v1.status_pb2 import StatusEvent

log = logging.getLogger(__name__)

DEFAULT_TAIL_SIZE = 20_000
DEFAULT_BATCH_SIZE = 500
# How long a gap may stay open before the hub reads the store to fill it. Local
# out-of-order offers close their gaps within microseconds; only a gap left by another
# replica waits this long.
GAP_FILL_DELAY = 0.005


class EventSource(Protocol):
    async def read_events(self, *, after_sequence: int, limit: int) -> list[StatusEvent]: ...

    async def last_sequence(self) -> int: ...


class Hub:
    def __init__(
        self,
        store: EventSource,
        *,
        tail_size: int = DEFAULT_TAIL_SIZE,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> None:
        self._store = store
        # Recent events, contiguous; trimmed to tail_size in halves so appends and
        # slicing stay O(1) amortized (a deque cannot be sliced cheaply).
        self._tail: list[StatusEvent] = []
        self._tail_size = tail_size
        self._batch_size = batch_size
        self._last = 0
        self._pending: dict[int, StatusEvent] = {}
        self._changed = asyncio.Event()
        self._fill_task: asyncio.Task[None] | None = None
        self._fill_again = False
        self._closed = False

    @property
    def last_sequence(self) -> int:
        """The greatest sequence every subscriber can read without a gap."""
        return self._last

    async def start(self) -> None:
        self._last = await self._store.last_sequence()

    async def close(self) -> None:
        self._closed = True
        self._wake()
        if self._fill_task is not None:
            self._fill_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._fill_task

    # --- input -----------------------------------------------------------------------

    def offer(self, events: Iterable[StatusEvent]) -> None:
        """Events just committed by this process, in any order."""
        for event in events:
            if event.sequence > self._last:
                self._pending[event.sequence] = event
        self._advance()
        if self._pending:
            self._schedule_fill()

    def notify(self, sequence: int) -> None:
        """Another writer committed up to ``sequence``; read what we have not seen."""
        if sequence > self._last:
            self._schedule_fill()

    def _advance(self) -> None:
        moved = False
        while (event := self._pending.pop(self._last + 1, None)) is not None:
            self._tail.append(event)
            self._last = event.sequence
            moved = True
        if len(self._tail) > 2 * self._tail_size:
            del self._tail[: len(self._tail) - self._tail_size]
        # Events at or below _last arrived through a store read first; drop them.
        for sequence in [s for s in self._pending if s <= self._last]:
            del self._pending[sequence]
        if moved:
            self._wake()

    def _wake(self) -> None:
        # Waiters hold the old Event; a fresh one makes the next wait block again.
        self._changed.set()
        self._changed = asyncio.Event()

    def _schedule_fill(self) -> None:
        if self._fill_task is None or self._fill_task.done():
            self._fill_task = asyncio.get_running_loop().create_task(self._fill())
        else:
            # The running fill's last read may predate this commit: it must read again.
            self._fill_again = True

    async def _fill(self) -> None:
        await asyncio.sleep(GAP_FILL_DELAY)
        try:
            while True:
                self._fill_again = False
                events = await self._store.read_events(
                    after_sequence=self._last, limit=self._batch_size
                )
                if not events:
                    if self._fill_again:
                        continue
                    return
                for event in events:
                    self._pending.setdefault(event.sequence, event)
                self._advance()
        except Exception:
            # The store being down must not kill the hub: the next offer or notify
            # schedules another fill, and subscribers read the store themselves.
            log.warning("hub could not read events from the store", exc_info=True)

    # --- output ----------------------------------------------------------------------

    async def subscribe(
        self, after_sequence: int | None
    ) -> AsyncGenerator[list[StatusEvent], None]:
        """Batches of events with sequence > after_sequence (None: only new ones), in
        order and without gaps. An empty batch means "caught up with the live tail" and
        is yielded once, when the replay first reaches it."""
        cursor = self._last if after_sequence is None else after_sequence
        caught_up = False
        while not self._closed:
            changed = self._changed
            batch = await self._read_after(cursor)
            if batch:
                cursor = batch[-1].sequence
                yield batch
                continue
            if not caught_up:
                caught_up = True
                yield []
            await changed.wait()

    async def _read_after(self, cursor: int) -> list[StatusEvent]:
        if cursor >= self._last:
            return []
        if self._tail and self._tail[0].sequence <= cursor + 1:
            start = cursor + 1 - self._tail[0].sequence
            return self._tail[start : start + self._batch_size]
        # Fell behind the in-memory tail (or resumes from an old sequence): the store has
        # every committed event in order. Never read past _last, which is gap-free.
        events = await self._store.read_events(
            after_sequence=cursor, limit=min(self._batch_size, self._last - cursor)
        )
        return [e for e in events if e.sequence <= self._last]
