"""The store contract: the ordering rules and durability, through a real store.

Every test runs against each backend of ``conftest.BACKENDS`` (SQLite files in tmp_path
for now), so a PostgreSQL store must pass the very same suite. Stores expose a
``commits`` counter of committed ingest transactions, which is how batching is proven.
"""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from statusgate.store.base import (
    DeliveryVerdict,
    ReplayIngest,
    Store,
    StoreUnavailableError,
    WebhookIngest,
)
from statusgate.v1.status_pb2 import Origin, Stage, State, Status
from tests.store.builders import delivery, poll, sequences, update, webhook
from tests.store.conftest import OpenStore

SESSION = "sources/finbox/sessions/s1"
CONSENT = "sources/setu/consents/c1"
T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


# --- apply rules end to end -----------------------------------------------------------


async def test_first_update_is_version_1_sequence_1(store: Store) -> None:
    request = webhook(update(SESSION, State.STATE_PENDING, Stage.STAGE_UPLOAD))
    result = await store.ingest(request)

    assert request.delivery is not None
    assert result.delivery_id == request.delivery.id
    [event] = result.events
    assert (event.sequence, event.status.version, event.status.sequence) == (1, 1, 1)
    assert event.previous_state == State.STATE_UNSPECIFIED
    assert event.origin == Origin.ORIGIN_WEBHOOK
    assert event.delivery_id == request.delivery.id
    assert event.event_id
    assert event.received_at.ToDatetime(UTC) == request.delivery.received_at
    assert event.status.HasField("updated_at")
    assert await store.get_status(SESSION) == event.status
    assert await store.last_sequence() == 1


async def test_higher_rank_is_applied(store: Store) -> None:
    await store.ingest(webhook(update(SESSION, State.STATE_PENDING, Stage.STAGE_UPLOAD)))
    result = await store.ingest(webhook(update(SESSION, State.STATE_COMPLETED, Stage.STAGE_UPLOAD)))

    [event] = result.events
    assert (event.sequence, event.status.version) == (2, 2)
    assert event.previous_state == State.STATE_PENDING
    status = await store.get_status(SESSION)
    assert status is not None and status.state == State.STATE_COMPLETED


async def test_lower_rank_is_ignored_but_its_delivery_is_kept(store: Store) -> None:
    await store.ingest(webhook(update(SESSION, State.STATE_IN_PROGRESS, Stage.STAGE_PROCESSING)))
    late = webhook(update(SESSION, State.STATE_COMPLETED, Stage.STAGE_UPLOAD))
    result = await store.ingest(late)

    assert result.events == []
    assert late.delivery is not None and result.delivery_id == late.delivery.id
    status = await store.get_status(SESSION)
    assert status is not None
    assert (status.state, status.stage, status.version) == (
        State.STATE_IN_PROGRESS,
        Stage.STAGE_PROCESSING,
        1,
    )
    stored = await store.list_deliveries([DeliveryVerdict.MAPPED])
    assert late.delivery in stored
    assert len(await store.list_events(SESSION)) == 1


async def test_duplicate_produces_no_event(store: Store) -> None:
    same = update(SESSION, State.STATE_IN_PROGRESS, Stage.STAGE_UPLOAD, attributes={"k": "v"})
    first = await store.ingest(webhook(same))
    second = await store.ingest(webhook(same))

    assert len(first.events) == 1
    assert second.events == []
    assert await store.last_sequence() == 1
    assert len(await store.list_deliveries([DeliveryVerdict.MAPPED])) == 2


async def test_terminal_never_changes(store: Store) -> None:
    await store.ingest(
        webhook(update(SESSION, State.STATE_EXPIRED, Stage.STAGE_UPLOAD, terminal=True))
    )
    for later in (
        update(SESSION, State.STATE_COMPLETED, Stage.STAGE_PROCESSING, terminal=True),
        update(SESSION, State.STATE_FAILED, Stage.STAGE_PROCESSING, occurred_at=T0),
        update(SESSION, State.STATE_EXPIRED, Stage.STAGE_UPLOAD, attributes={"new": "info"}),
    ):
        assert (await store.ingest(webhook(later))).events == []

    status = await store.get_status(SESSION)
    assert status is not None and (status.state, status.version) == (State.STATE_EXPIRED, 1)


async def test_equal_rank_with_newer_provider_time_is_applied(store: Store) -> None:
    states = [State.STATE_ACTIVE, State.STATE_PAUSED, State.STATE_ACTIVE]
    for minutes, state in enumerate(states):
        consent = update(
            CONSENT, state, Stage.STAGE_CONSENT, occurred_at=T0 + timedelta(minutes=minutes)
        )
        assert len((await store.ingest(webhook(consent, source="setu"))).events) == 1
    stale = update(CONSENT, State.STATE_PAUSED, Stage.STAGE_CONSENT, occurred_at=T0)
    assert (await store.ingest(webhook(stale, source="setu"))).events == []

    history = await store.list_events(CONSENT)
    assert [event.status.state for event in history] == states
    assert [event.previous_state for event in history] == [State.STATE_UNSPECIFIED, *states[:2]]
    assert [event.status.version for event in history] == [1, 2, 3]


async def test_updates_of_one_request_apply_in_order(store: Store) -> None:
    account = f"{SESSION}/accounts/a1"
    result = await store.ingest(
        webhook(
            update(SESSION, State.STATE_PENDING, Stage.STAGE_UPLOAD),
            update(account, State.STATE_PARTIAL, Stage.STAGE_UPLOAD),
            update(SESSION, State.STATE_COMPLETED, Stage.STAGE_UPLOAD),
            update(SESSION, State.STATE_PENDING, Stage.STAGE_UPLOAD),  # lower: ignored
        )
    )

    assert sequences(result.events) == [1, 2, 3]
    assert [(e.status.name, e.status.version) for e in result.events] == [
        (SESSION, 1),
        (account, 1),
        (SESSION, 2),
    ]
    assert result.events[2].previous_state == State.STATE_PENDING


async def test_poll_has_no_delivery(store: Store) -> None:
    result = await store.ingest(poll(update(SESSION, State.STATE_PENDING, Stage.STAGE_UPLOAD)))

    assert result.delivery_id == ""
    assert result.events[0].delivery_id == ""
    assert result.events[0].origin == Origin.ORIGIN_POLL
    assert await store.list_deliveries([]) == []


async def test_replay_maps_a_stored_delivery(store: Store) -> None:
    kept = delivery(verdict=DeliveryVerdict.UNMAPPED)
    first = await store.ingest(WebhookIngest(kept))
    assert (first.delivery_id, first.events) == (kept.id, [])

    replay = ReplayIngest(
        kept.id,
        [update(SESSION, State.STATE_PENDING, Stage.STAGE_UPLOAD)],
    )
    result = await store.ingest(replay)

    assert result.delivery_id == kept.id
    [event] = result.events
    assert (event.delivery_id, event.origin) == (kept.id, Origin.ORIGIN_REPLAY)
    assert await store.list_deliveries([DeliveryVerdict.UNMAPPED]) == []
    [stored] = await store.list_deliveries([])
    assert (stored.id, stored.verdict, stored.body) == (kept.id, DeliveryVerdict.MAPPED, kept.body)


async def test_replay_of_an_unknown_delivery_fails(store: Store) -> None:
    replay = ReplayIngest(
        "no-such-delivery",
        [update(SESSION, State.STATE_PENDING, Stage.STAGE_UPLOAD)],
    )
    with pytest.raises(LookupError):
        await store.ingest(replay)
    assert await store.get_status(SESSION) is None


# --- group commit and sequences -------------------------------------------------------


async def test_concurrent_ingests_get_contiguous_sequences_in_few_commits(store: Store) -> None:
    count = 200
    commits_before = store.commits  # type: ignore[attr-defined]
    results = await asyncio.gather(
        *(
            store.ingest(webhook(update(f"sources/finbox/sessions/s{i}", State.STATE_PENDING)))
            for i in range(count)
        )
    )

    assert sorted(seq for result in results for seq in sequences(result.events)) == list(
        range(1, count + 1)
    )
    assert sequences(await store.read_events(after_sequence=0, limit=1000)) == list(
        range(1, count + 1)
    )
    commits = store.commits - commits_before  # type: ignore[attr-defined]
    assert 1 <= commits <= count // 10, f"{commits} commits for {count} requests"
    assert len(await store.list_deliveries([], limit=1000)) == count


async def test_concurrent_ingests_of_one_subject_keep_versions_contiguous(store: Store) -> None:
    await asyncio.gather(
        *(
            store.ingest(
                webhook(
                    update(
                        CONSENT,
                        State.STATE_ACTIVE if i % 2 else State.STATE_PAUSED,
                        Stage.STAGE_CONSENT,
                        occurred_at=T0 + timedelta(seconds=i),
                    ),
                    source="setu",
                )
            )
            for i in range(50)
        )
    )

    history = await store.list_events(CONSENT, limit=1000)
    assert [event.status.version for event in history] == list(range(1, len(history) + 1))
    assert sequences(history) == sorted(set(sequences(history)))
    status = await store.get_status(CONSENT)
    assert status is not None and status.version == len(history)
    assert status.sequence == history[-1].sequence


async def test_a_failing_request_fails_alone(store: Store) -> None:
    await store.ingest(poll(update(SESSION, State.STATE_PENDING, Stage.STAGE_UPLOAD)))
    commits_before = store.commits  # type: ignore[attr-defined]
    broken = Status()
    broken.CopyFrom(update(SESSION, State.STATE_IN_PROGRESS))
    broken.stage = 99  # type: ignore[assignment]  # no such stage: apply() raises
    other = "sources/finbox/sessions/other"
    bad = webhook(update(other, State.STATE_PENDING), broken)

    good1, failure, good2 = await asyncio.gather(
        store.ingest(webhook(update("sources/finbox/sessions/g1", State.STATE_PENDING))),
        store.ingest(bad),
        store.ingest(webhook(update("sources/finbox/sessions/g2", State.STATE_PENDING))),
        return_exceptions=True,
    )

    assert isinstance(failure, KeyError)
    assert not isinstance(good1, BaseException) and not isinstance(good2, BaseException)
    assert sequences(good1.events) + sequences(good2.events) == [2, 3]
    assert store.commits - commits_before == 1  # type: ignore[attr-defined]
    # Nothing of the failed request remains: not its first update, not its delivery.
    assert await store.get_status(other) is None
    assert bad.delivery not in await store.list_deliveries([])
    assert sequences(await store.read_events(after_sequence=0, limit=10)) == [1, 2, 3]


async def test_a_duplicate_delivery_id_fails_alone(store: Store) -> None:
    first = webhook(update(SESSION, State.STATE_PENDING), delivery_id="d-1")
    again = webhook(update(f"{SESSION}/accounts/a", State.STATE_PENDING), delivery_id="d-1")
    results = await asyncio.gather(
        store.ingest(first),
        store.ingest(again),
        store.ingest(poll(update(CONSENT, State.STATE_ACTIVE))),
        return_exceptions=True,
    )

    assert not isinstance(results[0], BaseException) and sequences(results[0].events) == [1]
    assert isinstance(results[1], Exception) and not isinstance(results[1], StoreUnavailableError)
    assert not isinstance(results[2], BaseException) and sequences(results[2].events) == [2]
    assert await store.get_status(f"{SESSION}/accounts/a") is None


# --- durability and lifecycle ---------------------------------------------------------


async def test_reopening_keeps_everything(store: Store, open_another: OpenStore) -> None:
    kept = webhook(update(SESSION, State.STATE_PENDING, Stage.STAGE_UPLOAD))
    await store.ingest(kept)
    await store.ingest(poll(update(CONSENT, State.STATE_ACTIVE, Stage.STAGE_CONSENT)))
    before = (
        await store.get_statuses([SESSION, CONSENT]),
        await store.read_events(after_sequence=0, limit=10),
        await store.list_deliveries([]),
    )
    await store.close()

    reopened = await open_another()
    assert await reopened.ready()
    assert await reopened.last_sequence() == 2
    after = (
        await reopened.get_statuses([SESSION, CONSENT]),
        await reopened.read_events(after_sequence=0, limit=10),
        await reopened.list_deliveries([]),
    )
    assert after == before
    # The apply rules see the stored state, and sequences continue.
    assert (await reopened.ingest(poll(*kept.updates))).events == []
    result = await reopened.ingest(poll(update(SESSION, State.STATE_COMPLETED, Stage.STAGE_UPLOAD)))
    assert sequences(result.events) == [3]
    assert result.events[0].status.version == 2


async def test_close_finishes_queued_ingests_then_refuses(
    store: Store, open_another: OpenStore
) -> None:
    tasks = [
        asyncio.create_task(store.ingest(webhook(update(f"{SESSION}{i}", State.STATE_PENDING))))
        for i in range(50)
    ]
    await asyncio.sleep(0)  # every task has queued its request
    await store.close()

    assert (
        len({seq for result in await asyncio.gather(*tasks) for seq in sequences(result.events)})
        == 50
    )
    assert not await store.ready()
    with pytest.raises(StoreUnavailableError):
        await store.ingest(poll(update(SESSION, State.STATE_PENDING)))
    with pytest.raises(StoreUnavailableError):
        await store.get_status(SESSION)
    await store.close()  # idempotent
    assert await (await open_another()).last_sequence() == 50


async def test_ready_while_open(store: Store) -> None:
    assert await store.ready()
    await store.ingest(poll(update(SESSION, State.STATE_PENDING)))
    assert await store.ready()


# --- idempotency keys ---------------------------------------------------------------------------


async def test_find_delivery_is_the_first_accepted_one_with_the_key(store: Store) -> None:
    def keyed(verdict: DeliveryVerdict, key: str | None, *, source: str = "rebit") -> WebhookIngest:
        kept = dataclasses.replace(
            delivery(source, verdict=verdict), idempotency_key=key, received_at=next(times)
        )
        return WebhookIngest(kept)

    times = iter(T0 + timedelta(seconds=i) for i in range(10))
    refused = keyed(DeliveryVerdict.REJECTED, "k1")
    first = keyed(DeliveryVerdict.MAPPED, "k1")
    later = keyed(DeliveryVerdict.UNMAPPED, "k1")
    for request in (
        refused,
        first,
        later,
        keyed(DeliveryVerdict.MAPPED, "k1", source="other"),
        keyed(DeliveryVerdict.MAPPED, None),
    ):
        await store.ingest(request)

    found = await store.find_delivery("rebit", "k1")
    # A rejected delivery keeps its key but claims nothing: the first accepted one does.
    assert found == first.delivery
    assert await store.find_delivery("rebit", "k2") is None
    assert await store.find_delivery("nobody", "k1") is None
    # Keys are kept with the delivery and listed with it.
    assert {d.idempotency_key for d in await store.list_deliveries([])} == {"k1", None}
    only_unmapped = keyed(DeliveryVerdict.UNMAPPED, "k3")
    await store.ingest(only_unmapped)
    assert await store.find_delivery("rebit", "k3") == only_unmapped.delivery
