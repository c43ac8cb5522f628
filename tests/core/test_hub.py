"""The hub over a real store: gap-free fan-out, including commits it only hears about."""

from __future__ import annotations

import asyncio
from pathlib import Path

from statusgate.core.filters import PreparedFilter
from statusgate.core.hub import Hub
from statusgate.core.names import parse_name
from statusgate.providers.common import build_status
from statusgate.store.base import IngestRequest, PollIngest
from statusgate.store.sqlite import SqliteStore
from statusgate.v1.status_pb2 import Provider, Stage, State, StatusEvent, StatusFilter


def expiry(session: str) -> IngestRequest:
    status = build_status(
        parse_name(f"sources/finbox/sessions/{session}"),
        Provider.PROVIDER_FINBOX,
        State.STATE_EXPIRED,
        Stage.STAGE_UPLOAD,
        final_stage=Stage.STAGE_PROCESSING,
    )
    return PollIngest([status])


class GatedStore(SqliteStore):
    """Holds each read's answer until released, so a commit can land in between."""

    gate: asyncio.Event | None = None

    async def read_events(self, *, after_sequence: int, limit: int) -> list[StatusEvent]:
        events = await super().read_events(after_sequence=after_sequence, limit=limit)
        if self.gate is not None:
            await self.gate.wait()
        return events


async def test_a_commit_heard_during_a_fill_is_not_lost(tmp_path: Path) -> None:
    store = GatedStore(tmp_path / "s.db")
    await store.open()
    hub = Hub(store)
    try:
        await store.ingest(expiry("one"))
        await hub.start()
        subscription = hub.subscribe(after_sequence=0)
        assert [e.sequence for e in await anext(subscription)] == [1]
        assert await anext(subscription) == []  # caught up

        store.gate = asyncio.Event()
        hub.notify(2)  # another replica said so; its read finds nothing yet...
        await asyncio.sleep(0.05)
        result = await store.ingest(expiry("two"))  # ...and then the commit lands
        hub.notify(result.events[0].sequence)
        store.gate.set()
        store.gate = None

        batch = await asyncio.wait_for(anext(subscription), 5)
        assert [e.sequence for e in batch] == [2]
        assert hub.last_sequence == 2
    finally:
        await hub.close()
        await store.close()


async def test_out_of_order_offers_are_published_in_sequence(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db")
    await store.open()
    hub = Hub(store)
    await hub.start()
    try:
        results = [await store.ingest(expiry(f"s{i}")) for i in range(3)]
        subscription = hub.subscribe(after_sequence=None)
        assert await anext(subscription) == []
        hub.offer(results[2].events)  # sequence 3 before 1 and 2: held back
        hub.offer(results[0].events)
        hub.offer(results[1].events)
        seen: list[int] = []
        while len(seen) < 3:
            seen += [e.sequence for e in await asyncio.wait_for(anext(subscription), 5)]
        assert seen == [1, 2, 3]
    finally:
        await hub.close()
        await store.close()


def session_selector(*sessions: str) -> PreparedFilter:
    return PreparedFilter(StatusFilter(names=[f"sources/finbox/sessions/{s}" for s in sessions]))


async def test_a_filtered_subscriber_that_overflows_its_inbox_misses_nothing(
    tmp_path: Path,
) -> None:
    store = SqliteStore(tmp_path / "s.db")
    await store.open()
    # A tail and an inbox of 8 events: the subscriber below falls far behind both.
    hub = Hub(store, tail_size=8, batch_size=5)
    await hub.start()
    try:
        subscription = hub.subscribe(None, session_selector(*(f"w{i}" for i in range(60))))
        assert await anext(subscription) == []
        wanted = []
        for i in range(60):
            for session in (f"w{i}", f"other{i}"):
                result = await store.ingest(expiry(session))
                hub.offer(result.events)
                if session.startswith("w"):
                    wanted.append(result.events[0].sequence)
        seen: list[int] = []
        while len(seen) < len(wanted):
            batch = await asyncio.wait_for(anext(subscription), 5)
            assert all(e.status.name.split("/")[-1].startswith("w") for e in batch)
            seen += [e.sequence for e in batch]
        assert seen == wanted
    finally:
        await hub.close()
        await store.close()


async def test_a_filtered_subscriber_replays_then_follows_only_its_subject(
    tmp_path: Path,
) -> None:
    store = SqliteStore(tmp_path / "s.db")
    await store.open()
    hub = Hub(store)
    await hub.start()
    try:
        for session in ("a", "b", "a", "c"):
            hub.offer((await store.ingest(expiry(session))).events)
        others = hub.subscribe(0, session_selector("b"))
        mine = hub.subscribe(0, session_selector("a", "c"))
        assert [e.sequence for e in await anext(mine)] == [1, 3]  # "a" twice: one change
        assert await anext(mine) == []
        assert [e.sequence for e in await anext(others)] == [2]
        assert await anext(others) == []
        hub.offer((await store.ingest(expiry("c"))).events)  # a duplicate: no event
        hub.offer((await store.ingest(expiry("d"))).events)
        hub.offer((await store.ingest(expiry("a2"))).events)
        for session in ("c2", "a"):
            hub.offer((await store.ingest(expiry(session))).events)
        late = hub.subscribe(0, session_selector("d"))
        assert [e.status.name for e in await anext(late)] == ["sources/finbox/sessions/d"]
        assert await anext(late) == []
        pending = asyncio.ensure_future(anext(others))
        await asyncio.sleep(0.05)
        assert not pending.done()  # nothing for "b" since
        pending.cancel()
    finally:
        await hub.close()
        await store.close()


async def test_the_lag_is_what_the_slowest_subscriber_has_not_been_handed(
    tmp_path: Path,
) -> None:
    store = SqliteStore(tmp_path / "s.db")
    await store.open()
    hub = Hub(store)
    await hub.start()
    try:
        assert hub.lag() == 0  # nobody subscribed
        everything = hub.subscribe(after_sequence=None)
        one = StatusFilter(names=["sources/finbox/sessions/s1"])
        filtered = hub.subscribe(after_sequence=None, status_filter=PreparedFilter(one))
        assert await anext(everything) == [] and await anext(filtered) == []
        for i in range(4):
            hub.offer((await store.ingest(expiry(f"s{i}"))).events)
        # Four events nobody has read yet; the filtered stream matched only one of them.
        assert hub.lag() == 4
        assert [e.sequence for e in await anext(everything)] == [1, 2, 3, 4]
        assert hub.lag() == 1
        assert [e.status.name for e in await anext(filtered)] == [one.names[0]]
        assert hub.lag() == 0
        await everything.aclose()
        await filtered.aclose()
        assert hub.lag() == 0
    finally:
        await hub.close()
        await store.close()
