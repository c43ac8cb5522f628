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

A subscriber that wants everything reads the tail itself after each wake-up. A
subscriber with a filter (``core.filters.PreparedFilter``) is filed in a
``FilterIndex``: as events are published, the hub hands each one only to the filtered
subscribers whose filters match it (their *inbox*), and wakes only those, so thousands
of streams watching one session each cost an event about what one stream does. An
inbox is bounded: a subscriber that lets it overflow loses it and reads what it missed
from the tail or the store instead, gap-free, like one that resumes from an old
sequence.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Iterable
from typing import Protocol

from statusgate.core.filter_index import FilterIndex
from statusgate.core.filters import PreparedFilter
from statusgate.v1.status_pb2 import StatusEvent

log = logging.getLogger(__name__)

# The in-memory tail holds at most this many events and this many bytes of them
# (serialized size; in memory a parsed event takes about three times that). Either
# bound trims the oldest half; a subscriber further behind reads the store.
DEFAULT_TAIL_SIZE = 10_000
DEFAULT_TAIL_BYTES = 2 * 1024 * 1024
DEFAULT_BATCH_SIZE = 500
# How long a gap may stay open before the hub reads the store to fill it. Local
# out-of-order offers close their gaps within microseconds; only a gap left by another
# replica waits this long.
GAP_FILL_DELAY = 0.005
# After another writer said it committed, the events are in the store already: read
# them at once (a moment's wait only lets a burst of wake-ups share one read).
NOTIFY_FILL_DELAY = 0.0005


class EventSource(Protocol):
    async def read_events(self, *, after_sequence: int, limit: int) -> list[StatusEvent]: ...

    async def last_sequence(self) -> int: ...


class _Filtered:
    """A filtered subscriber: the events its filter matched since ``armed_at``."""

    __slots__ = ("armed_at", "cursor", "inbox", "limit", "wake")

    def __init__(self, armed_at: int, limit: int) -> None:
        # The last sequence handed to the subscriber (or skipped as not matching).
        self.cursor = 0
        # Events after this sequence reach the inbox; those up to it are read from the
        # tail or the store.
        self.armed_at = armed_at
        self.inbox: list[StatusEvent] = []
        self.limit = limit
        self.wake = asyncio.Event()

    def deliver(self, event: StatusEvent) -> None:
        if event.sequence <= self.armed_at:
            return
        if len(self.inbox) >= self.limit:
            # Too slow to keep: start over from the tail or the store after what it has.
            self.inbox.clear()
            self.armed_at = event.sequence
        else:
            self.inbox.append(event)
        self.wake.set()


class _Reader:
    """A subscriber to every event: where it is."""

    __slots__ = ("cursor",)

    def __init__(self, cursor: int) -> None:
        self.cursor = cursor


class Hub:
    def __init__(
        self,
        store: EventSource,
        *,
        tail_size: int = DEFAULT_TAIL_SIZE,
        tail_bytes: int = DEFAULT_TAIL_BYTES,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> None:
        self._store = store
        # Recent events, contiguous; see DEFAULT_TAIL_SIZE.
        self._tail: list[StatusEvent] = []
        self._tail_size = tail_size
        self._tail_bytes = tail_bytes
        # Serialized sizes of the tail's events, and their sum.
        self._sizes: list[int] = []
        self._bytes = 0
        self._batch_size = batch_size
        self._last = 0
        self._pending: dict[int, StatusEvent] = {}
        self._changed = asyncio.Event()
        self._fill_task: asyncio.Task[None] | None = None
        self._fill_again = False
        self._closed = False
        self._index: FilterIndex[_Filtered] = FilterIndex()
        self._readers: set[_Reader] = set()

    @property
    def last_sequence(self) -> int:
        """The greatest sequence every subscriber can read without a gap."""
        return self._last

    async def start(self) -> None:
        self._last = await self._store.last_sequence()

    def lag(self) -> int:
        """The most committed events any subscriber has not been handed yet (0 when
        none is behind). A filtered one counts what its inbox holds, plus, while it
        reads what it missed, every event up to where its inbox starts (an upper bound:
        some of them will not match). Costs a pass over the subscribers: for the
        metrics' schedule, not for every event."""
        worst = max((self._last - reader.cursor for reader in self._readers), default=0)
        for subscriber in self._index.members():
            behind = max(0, subscriber.armed_at - subscriber.cursor) + len(subscriber.inbox)
            worst = max(worst, behind)
        return max(0, worst)

    async def close(self) -> None:
        self._closed = True
        self._wake()
        for subscriber in self._index.members():
            subscriber.wake.set()
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
            self._schedule_fill(GAP_FILL_DELAY)

    def notify(self, sequence: int) -> None:
        """Another writer committed up to ``sequence``; read what we have not seen."""
        if sequence > self._last:
            self._schedule_fill(NOTIFY_FILL_DELAY)

    def _advance(self) -> None:
        moved = False
        index = self._index
        while (event := self._pending.pop(self._last + 1, None)) is not None:
            self._tail.append(event)
            size = event.ByteSize()
            self._sizes.append(size)
            self._bytes += size
            self._last = event.sequence
            moved = True
            if len(index):
                for subscriber in index.match(event.status):
                    subscriber.deliver(event)
        if len(self._tail) > self._tail_size or self._bytes > self._tail_bytes:
            self._trim()
        # Events at or below _last arrived through a store read first; drop them.
        for sequence in [s for s in self._pending if s <= self._last]:
            del self._pending[sequence]
        if moved:
            self._wake()

    def _trim(self) -> None:
        """Drop the oldest events down to half of either bound (halves keep appending
        and trimming O(1) amortized; a deque cannot be sliced cheaply)."""
        keep_count = self._tail_size // 2
        keep_bytes = self._tail_bytes // 2
        drop = max(0, len(self._tail) - keep_count)
        kept_bytes = self._bytes - sum(self._sizes[:drop])
        while drop < len(self._tail) and kept_bytes > keep_bytes:
            kept_bytes -= self._sizes[drop]
            drop += 1
        del self._tail[:drop]
        del self._sizes[:drop]
        self._bytes = kept_bytes

    def _wake(self) -> None:
        # Waiters hold the old Event; a fresh one makes the next wait block again.
        self._changed.set()
        self._changed = asyncio.Event()

    def _schedule_fill(self, delay: float) -> None:
        if self._fill_task is None or self._fill_task.done():
            self._fill_task = asyncio.get_running_loop().create_task(self._fill(delay))
        else:
            # The running fill's last read may predate this commit: it must read again.
            self._fill_again = True

    async def _fill(self, delay: float) -> None:
        await asyncio.sleep(delay)
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
        self, after_sequence: int | None, status_filter: PreparedFilter | None = None
    ) -> AsyncGenerator[list[StatusEvent], None]:
        """Batches of the events with sequence > after_sequence (None: only new ones)
        that ``status_filter`` matches (None: every event), in order and without gaps. An
        empty batch means "caught up with the live tail" and is yielded once, when the
        replay first reaches it."""
        cursor = self._last if after_sequence is None else after_sequence
        if status_filter is None or status_filter.everything:
            generator = self._everything(cursor)
        else:
            generator = self._filtered(cursor, status_filter)
        async with contextlib.aclosing(generator):
            async for batch in generator:
                yield batch

    async def _everything(self, cursor: int) -> AsyncGenerator[list[StatusEvent], None]:
        reader = _Reader(cursor)
        self._readers.add(reader)
        try:
            caught_up = False
            while not self._closed:
                changed = self._changed
                batch = await self._read_after(cursor, self._last)
                if batch:
                    cursor = reader.cursor = batch[-1].sequence
                    yield batch
                    continue
                if not caught_up:
                    caught_up = True
                    yield []
                await changed.wait()
        finally:
            self._readers.discard(reader)

    async def _filtered(
        self, cursor: int, status_filter: PreparedFilter
    ) -> AsyncGenerator[list[StatusEvent], None]:
        subscriber = _Filtered(self._last, limit=self._tail_size)
        subscriber.cursor = cursor
        self._index.add(subscriber, status_filter)
        try:
            caught_up = False
            while not self._closed:
                if cursor < subscriber.armed_at:
                    # Behind its inbox: read the tail or the store, filtering here.
                    events = await self._read_after(cursor, subscriber.armed_at)
                    if not events:  # the store's reader is behind the hub: retry soon
                        await asyncio.sleep(GAP_FILL_DELAY)
                        continue
                    cursor = subscriber.cursor = events[-1].sequence
                    matched = [e for e in events if status_filter.matches(e.status)]
                    if matched:
                        yield matched
                    continue
                if subscriber.inbox:
                    batch = subscriber.inbox[: self._batch_size]
                    del subscriber.inbox[: self._batch_size]
                    cursor = subscriber.cursor = batch[-1].sequence
                    yield batch
                    continue
                if not caught_up:
                    caught_up = True
                    yield []
                    continue
                subscriber.wake.clear()
                await subscriber.wake.wait()
        finally:
            self._index.remove(subscriber)

    async def _read_after(self, cursor: int, until: int) -> list[StatusEvent]:
        """Events after ``cursor`` up to ``until`` (at most ``_last``), at most a batch."""
        until = min(until, self._last)
        if cursor >= until:
            return []
        if self._tail and self._tail[0].sequence <= cursor + 1:
            start = cursor + 1 - self._tail[0].sequence
            return self._tail[start : start + min(self._batch_size, until - cursor)]
        # Fell behind the in-memory tail (or resumes from an old sequence): the store has
        # every committed event in order. Never read past _last, which is gap-free.
        events = await self._store.read_events(
            after_sequence=cursor, limit=min(self._batch_size, until - cursor)
        )
        return [e for e in events if e.sequence <= until]
