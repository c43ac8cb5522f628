"""The store contract, read side: list_statuses filters and paging, event and delivery
listings. Runs against every backend of ``conftest.BACKENDS``."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from statusgate.core.filters import StatusQuery
from statusgate.core.names import name_has_prefix
from statusgate.store.base import DeliveryVerdict, PollIngest, Store, WebhookIngest
from statusgate.v1.status_pb2 import Kind, Stage, State
from tests.store.builders import delivery, poll, sequences, update

S = State
# Old subjects first, then (after CUTOFF) recent ones. Ids with LIKE wildcards and
# mixed case check that prefixes match whole segments, literally and case-sensitively.
OLD = [
    update("sources/a/sessions/1", S.STATE_IN_PROGRESS, Stage.STAGE_UPLOAD),
    update("sources/a/sessions/1/accounts/x", S.STATE_COMPLETED, terminal=True),
    update("sources/a/sessions/1/statements/s", S.STATE_FAILED, terminal=True),
    update("sources/a/sessions/10", S.STATE_PENDING),
]
RECENT = [
    update("sources/a/sessions/1%", S.STATE_PENDING),
    update("sources/a/sessions/1_/accounts/y", S.STATE_PENDING),
    update("sources/a/sessions/S1", S.STATE_PENDING),
    update("sources/b/consents/c1", S.STATE_ACTIVE, Stage.STAGE_CONSENT),
    update("sources/b/payments/p1", S.STATE_COMPLETED, Stage.STAGE_PAYMENT, terminal=True),
]
ALL = sorted(status.name for status in OLD + RECENT)


@dataclass
class Populated:
    store: Store
    cutoff: datetime


@pytest.fixture
async def populated(store: Store) -> Populated:
    await store.ingest(poll(*OLD))
    await asyncio.sleep(0.01)
    cutoff = datetime.now(UTC)
    await asyncio.sleep(0.01)
    await store.ingest(poll(*RECENT))
    return Populated(store, cutoff)


async def names(store: Store, query: StatusQuery, **kwargs: object) -> list[str]:
    return [status.name for status in await store.list_statuses(query, **kwargs)]  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (StatusQuery(), ALL),
        (StatusQuery(sources=["b"]), ["sources/b/consents/c1", "sources/b/payments/p1"]),
        (
            StatusQuery(names=["sources/a/sessions/10", "sources/x/sessions/9"]),
            ["sources/a/sessions/10"],
        ),
        (
            StatusQuery(name_prefixes=["sources/a/sessions/1"]),
            [
                "sources/a/sessions/1",
                "sources/a/sessions/1/accounts/x",
                "sources/a/sessions/1/statements/s",
            ],
        ),
        (
            StatusQuery(name_prefixes=["sources/a/sessions/1_"]),
            ["sources/a/sessions/1_/accounts/y"],
        ),
        (StatusQuery(name_prefixes=["sources/a/sessions/s1"]), []),
        (
            StatusQuery(name_prefixes=["sources/a/sessions/10", "sources/b/"]),
            ["sources/a/sessions/10", "sources/b/consents/c1", "sources/b/payments/p1"],
        ),
        (
            StatusQuery(kinds=[Kind.KIND_ACCOUNT]),
            ["sources/a/sessions/1/accounts/x", "sources/a/sessions/1_/accounts/y"],
        ),
        (
            StatusQuery(states=[S.STATE_ACTIVE, S.STATE_FAILED]),
            ["sources/a/sessions/1/statements/s", "sources/b/consents/c1"],
        ),
        (
            StatusQuery(terminal=True),
            [
                "sources/a/sessions/1/accounts/x",
                "sources/a/sessions/1/statements/s",
                "sources/b/payments/p1",
            ],
        ),
        (
            StatusQuery(
                sources=["a"],
                terminal=False,
                states=[S.STATE_PENDING],
                name_prefixes=["sources/a/sessions/1%"],
            ),
            ["sources/a/sessions/1%"],
        ),
    ],
)
async def test_list_statuses_filters(
    populated: Populated, query: StatusQuery, expected: list[str]
) -> None:
    assert await names(populated.store, query) == expected


async def test_name_prefixes_match_whole_segments_like_name_has_prefix(
    populated: Populated,
) -> None:
    candidates = [
        *ALL,
        "sources/a",
        "sources/a/",
        "sources/a/sessions",
        "sources/a/sessions/1%/",
        "sources/",
        "",
    ]
    for prefix in candidates:
        expected = [name for name in ALL if name_has_prefix(name, prefix)]
        assert await names(populated.store, StatusQuery(name_prefixes=[prefix])) == expected, prefix


async def test_list_statuses_updated_before(populated: Populated) -> None:
    quiet = StatusQuery(terminal=False, updated_before=populated.cutoff)
    assert await names(populated.store, quiet) == ["sources/a/sessions/1", "sources/a/sessions/10"]
    assert (
        await names(
            populated.store, StatusQuery(updated_before=populated.cutoff - timedelta(hours=1))
        )
        == []
    )


async def test_list_statuses_pages_by_name(populated: Populated) -> None:
    seen: list[str] = []
    after = ""
    while page := await names(populated.store, StatusQuery(), after_name=after, limit=3):
        assert len(page) <= 3
        seen += page
        after = page[-1]
    assert seen == ALL


async def test_get_statuses_returns_the_known_ones(populated: Populated) -> None:
    found = await populated.store.get_statuses(["sources/b/consents/c1", "sources/b/consents/zz"])
    assert list(found) == ["sources/b/consents/c1"]
    assert found["sources/b/consents/c1"].state == S.STATE_ACTIVE
    assert await populated.store.get_statuses([]) == {}


async def test_list_events_pages_one_subject(store: Store) -> None:
    name = "sources/finbox/sessions/s"
    for state in (S.STATE_PENDING, S.STATE_IN_PROGRESS, S.STATE_PARTIAL, S.STATE_COMPLETED):
        await store.ingest(poll(update(name, state, Stage.STAGE_UPLOAD), update(f"{name}x", state)))

    first = await store.list_events(name, limit=3)
    rest = await store.list_events(name, after_sequence=first[-1].sequence, limit=3)
    assert [event.status.state for event in first + rest] == [
        S.STATE_PENDING,
        S.STATE_IN_PROGRESS,
        S.STATE_PARTIAL,
        S.STATE_COMPLETED,
    ]
    assert sequences(first + rest) == [1, 3, 5, 7]
    assert await store.list_events("sources/finbox/sessions/none") == []


async def test_read_events_in_sequence_order(store: Store) -> None:
    assert await store.last_sequence() == 0
    assert await store.read_events(after_sequence=0, limit=10) == []
    for i in range(5):
        await store.ingest(
            poll(
                update(f"sources/a/sessions/{i}", S.STATE_PENDING),
                update(f"sources/b/sessions/{i}", S.STATE_PENDING),
            )
        )

    assert await store.last_sequence() == 10
    assert sequences(await store.read_events(after_sequence=0, limit=4)) == [1, 2, 3, 4]
    assert sequences(await store.read_events(after_sequence=7, limit=100)) == [8, 9, 10]
    assert await store.read_events(after_sequence=10, limit=100) == []
    with pytest.raises(ValueError, match="limit"):
        await store.read_events(after_sequence=0, limit=0)


async def test_deliveries_round_trip(store: Store) -> None:
    kept = delivery("setu", verdict=DeliveryVerdict.REJECTED, body=b"\x00not json\xff")
    await store.ingest(WebhookIngest(kept))
    assert await store.list_deliveries([DeliveryVerdict.REJECTED]) == [kept]


async def test_list_deliveries_filters_and_pages(store: Store) -> None:
    t0 = datetime(2025, 1, 1, tzinfo=UTC)
    kept = [
        delivery(source, verdict=verdict, received_at=t0 + timedelta(minutes=minute))
        for minute, (source, verdict) in enumerate(
            [
                ("setu", DeliveryVerdict.UNMAPPED),
                ("finbox", DeliveryVerdict.MAPPED),
                ("setu", DeliveryVerdict.REJECTED),
                ("setu", DeliveryVerdict.UNMAPPED),
                ("finbox", DeliveryVerdict.UNMAPPED),
            ]
        )
    ]
    for item in reversed(kept):  # stored out of order: listing is by received_at
        await store.ingest(WebhookIngest(item))

    async def ids(verdicts: list[DeliveryVerdict], **kwargs: object) -> list[str]:
        return [d.id for d in await store.list_deliveries(verdicts, **kwargs)]  # type: ignore[arg-type]

    assert await ids([]) == [d.id for d in kept]
    assert await ids([DeliveryVerdict.UNMAPPED]) == [kept[0].id, kept[3].id, kept[4].id]
    assert await ids([DeliveryVerdict.UNMAPPED, DeliveryVerdict.REJECTED], source="setu") == [
        kept[0].id,
        kept[2].id,
        kept[3].id,
    ]
    assert await ids([], since=t0 + timedelta(minutes=3)) == [kept[3].id, kept[4].id]
    assert await ids([], since=t0.replace(tzinfo=None) + timedelta(minutes=4)) == [kept[4].id]
    page = await ids([], limit=2)
    assert page + await ids([], after_id=page[-1], limit=10) == [d.id for d in kept]


async def test_trace_parent_round_trips_on_every_event_read(store: Store) -> None:
    """Each request's W3C traceparent is kept with the events it makes and read back by
    every read path (a subject's history, the sequence-ordered read Watch replays)."""
    hooked = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    polled = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"
    name = "sources/finbox/sessions/traced"
    await store.ingest(
        WebhookIngest(delivery(), [update(name, S.STATE_PENDING)], trace_parent=hooked)
    )
    await store.ingest(PollIngest([update(name, S.STATE_IN_PROGRESS)], trace_parent=polled))
    await store.ingest(poll(update(name, S.STATE_COMPLETED, terminal=True)))

    expected = [hooked, polled, ""]
    assert [e.trace_parent for e in await store.list_events(name)] == expected
    replayed = await store.read_events(after_sequence=0, limit=10)
    assert [e.trace_parent for e in replayed] == expected
