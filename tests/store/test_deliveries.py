"""The store's delivery queries on both backends: listing with every filter, newest or
oldest first and paged by keyset, one delivery with its body and events, the sub-path
kept, replays taking today's verdict, and dry runs that write nothing."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from statusgate.store.base import (
    DeliveryCursor,
    DeliveryQuery,
    DeliveryVerdict,
    IngestResult,
    ReplayIngest,
    Store,
    WebhookIngest,
)
from statusgate.v1.status_pb2 import State
from tests.store.builders import delivery, update

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
SESSION = "sources/finbox/sessions/s1"
ACCOUNT = f"{SESSION}/accounts/a1"
OTHER = "sources/finbox/sessions/s10"


async def stored(
    store: Store,
    id_: str,
    *,
    source: str = "finbox",
    verdict: DeliveryVerdict = DeliveryVerdict.MAPPED,
    minutes: int = 0,
    names: tuple[str, ...] = (),
    path: str = "",
) -> IngestResult:
    kept = dataclasses.replace(
        delivery(source, verdict=verdict, received_at=T0 + timedelta(minutes=minutes), id_=id_),
        path=path,
    )
    updates = [update(name, State.STATE_PENDING) for name in names]
    return await store.ingest(WebhookIngest(kept, updates))


async def ids(store: Store, query: DeliveryQuery, **kwargs: object) -> list[str]:
    return [d.id for d in await store.query_deliveries(query, **kwargs)]  # type: ignore[arg-type]


async def test_filters_newest_first_without_bodies(store: Store) -> None:
    await stored(store, "d1", minutes=1, names=(SESSION,))
    await stored(store, "d2", minutes=2, verdict=DeliveryVerdict.REJECTED)
    await stored(store, "d3", minutes=3, source="setu", verdict=DeliveryVerdict.UNMAPPED)
    await stored(store, "d4", minutes=4, names=(ACCOUNT,))
    await stored(store, "d5", minutes=5, names=(OTHER,))

    assert await ids(store, DeliveryQuery()) == ["d5", "d4", "d3", "d2", "d1"]
    assert await ids(store, DeliveryQuery(), oldest_first=True) == ["d1", "d2", "d3", "d4", "d5"]
    assert await ids(store, DeliveryQuery(sources=["setu"])) == ["d3"]
    assert await ids(store, DeliveryQuery(verdicts=[DeliveryVerdict.REJECTED])) == ["d2"]
    both = [DeliveryVerdict.REJECTED, DeliveryVerdict.UNMAPPED]
    assert await ids(store, DeliveryQuery(verdicts=both)) == ["d3", "d2"]
    assert await ids(store, DeliveryQuery(sources=["finbox", "setu"], verdicts=both)) == [
        "d3",
        "d2",
    ]
    window = DeliveryQuery(
        received_after=T0 + timedelta(minutes=2), received_before=T0 + timedelta(minutes=4)
    )
    assert await ids(store, window) == ["d3", "d2"]  # after is inclusive, before is not
    # A subject and its descendants, by whole segments: s1 is not s10.
    assert await ids(store, DeliveryQuery(name=SESSION)) == ["d4", "d1"]
    assert await ids(store, DeliveryQuery(name=ACCOUNT)) == ["d4"]

    listed = await store.query_deliveries(DeliveryQuery(name=SESSION))
    assert all(d.body == b"" for d in listed)
    assert [[(e.sequence, e.name) for e in d.events] for d in listed] == [
        [(2, ACCOUNT)],
        [(1, SESSION)],
    ]
    with_bodies = await store.query_deliveries(DeliveryQuery(), bodies=True, limit=1)
    assert with_bodies[0].body == b'{"event": "x"}'


async def test_pages_continue_after_a_cursor_in_either_order(store: Store) -> None:
    for minute in range(7):
        verdict = DeliveryVerdict.REJECTED if minute % 2 else DeliveryVerdict.UNMAPPED
        await stored(store, f"d{minute}", minutes=minute // 2, verdict=verdict)  # times tie
    every = [DeliveryVerdict.REJECTED, DeliveryVerdict.UNMAPPED]
    for oldest_first in (False, True):
        query = DeliveryQuery(verdicts=every)
        seen: list[str] = []
        after: DeliveryCursor | None = None
        while True:
            page = await store.query_deliveries(
                query, after=after, limit=3, oldest_first=oldest_first
            )
            if not page:
                break
            seen += [d.id for d in page]
            after = DeliveryCursor(page[-1].received_at, page[-1].id)
        everything = await ids(store, DeliveryQuery(), oldest_first=oldest_first, limit=100)
        assert seen == everything and len(seen) == 7


async def test_get_deliveries_with_body_path_and_events(store: Store) -> None:
    await stored(store, "d1", names=(SESSION, ACCOUNT), path="Consent/Notification")
    found = await store.get_deliveries(["d1", "nope"])
    assert set(found) == {"d1"}
    d1 = found["d1"]
    assert (d1.path, d1.body, d1.headers["user-agent"]) == (
        "Consent/Notification",
        b'{"event": "x"}',
        "test",
    )
    assert [(e.sequence, e.name) for e in d1.events] == [(1, SESSION), (2, ACCOUNT)]
    assert await store.get_deliveries([]) == {}


async def test_a_replay_takes_today_s_verdict_and_detail(store: Store) -> None:
    await stored(store, "bad", verdict=DeliveryVerdict.UNMAPPED)
    still = ReplayIngest("bad", [], verdict=DeliveryVerdict.REJECTED, detail="now a 400")
    await store.ingest(still)
    [after] = (await store.get_deliveries(["bad"])).values()
    assert (after.verdict, after.detail) == (DeliveryVerdict.REJECTED, "now a 400")
    result = await store.ingest(ReplayIngest("bad", [update(SESSION, State.STATE_PENDING)]))
    assert [e.delivery_id for e in result.events] == ["bad"]
    [mapped] = (await store.get_deliveries(["bad"])).values()
    assert (mapped.verdict, mapped.detail, [e.name for e in mapped.events]) == (
        DeliveryVerdict.MAPPED,
        "",
        [SESSION],
    )


async def test_a_dry_run_stages_like_a_batch_and_writes_nothing(store: Store) -> None:
    await stored(store, "d1", names=(SESSION,))
    await stored(store, "d2", verdict=DeliveryVerdict.UNMAPPED)
    before = await store.last_sequence()
    outcomes = await store.preview(
        [
            ReplayIngest("d2", [update(SESSION, State.STATE_IN_PROGRESS)]),
            # Sees the request before it: IN_PROGRESS again changes nothing.
            ReplayIngest("d2", [update(SESSION, State.STATE_IN_PROGRESS)]),
            ReplayIngest("gone", [update(ACCOUNT, State.STATE_PENDING)]),
        ]
    )
    first, second, third = outcomes
    assert isinstance(first, IngestResult) and isinstance(second, IngestResult)
    assert [(e.sequence, e.previous_state, e.status.state) for e in first.events] == [
        (before + 1, State.STATE_PENDING, State.STATE_IN_PROGRESS)
    ]
    assert second.events == []
    assert isinstance(third, LookupError)
    # Nothing was written.
    assert await store.last_sequence() == before
    status = await store.get_status(SESSION)
    assert status is not None and status.state == State.STATE_PENDING
    [d2] = (await store.get_deliveries(["d2"])).values()
    assert d2.verdict == DeliveryVerdict.UNMAPPED and d2.events == ()
    assert await store.preview([]) == []
