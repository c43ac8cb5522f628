"""The store's summaries for the operator console, on both backends: deliveries per
source and verdict since a time, the oldest non-terminal subject of a source, and the
reconciler's backlog (what it would claim now, counted without leasing)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from statusgate.store.base import DeliveryVerdict, Store, WebhookIngest
from statusgate.v1.status_pb2 import State
from tests.store.builders import delivery, poll, update

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


async def test_deliveries_are_counted_by_source_and_verdict_since_a_time(store: Store) -> None:
    kept = [
        ("finbox", DeliveryVerdict.MAPPED, 0),  # before the window: not counted
        ("finbox", DeliveryVerdict.MAPPED, 10),  # at its start: counted
        ("finbox", DeliveryVerdict.MAPPED, 20),
        ("finbox", DeliveryVerdict.REJECTED, 30),
        ("setu", DeliveryVerdict.UNMAPPED, 40),
    ]
    for source, verdict, minutes in kept:
        row = delivery(source, verdict=verdict, received_at=T0 + timedelta(minutes=minutes))
        await store.ingest(WebhookIngest(row))
    counts = await store.count_deliveries(received_after=T0 + timedelta(minutes=10))
    assert counts == {
        ("finbox", DeliveryVerdict.MAPPED): 2,
        ("finbox", DeliveryVerdict.REJECTED): 1,
        ("setu", DeliveryVerdict.UNMAPPED): 1,
    }
    assert await store.count_deliveries(received_after=T0 + timedelta(hours=1)) == {}


async def test_the_oldest_non_terminal_subject_of_a_source(store: Store) -> None:
    assert await store.oldest_non_terminal("finbox") is None
    for name in ("sources/finbox/sessions/s1", "sources/finbox/sessions/s2"):
        await store.ingest(poll(update(name, State.STATE_IN_PROGRESS)))
    await store.ingest(poll(update("sources/setu/consents/c1", State.STATE_PENDING)))
    oldest = await store.oldest_non_terminal("finbox")
    assert oldest is not None and oldest.name == "sources/finbox/sessions/s1"
    done = update("sources/finbox/sessions/s1", State.STATE_COMPLETED, terminal=True)
    await store.ingest(poll(done))
    oldest = await store.oldest_non_terminal("finbox")
    assert oldest is not None and oldest.name == "sources/finbox/sessions/s2"
    assert await store.oldest_non_terminal("banqware") is None


async def test_subjects_are_counted_by_source_and_state(store: Store) -> None:
    assert await store.count_subjects() == {}
    for name, state in [
        ("sources/finbox/sessions/s1", State.STATE_IN_PROGRESS),
        ("sources/finbox/sessions/s2", State.STATE_IN_PROGRESS),
        ("sources/finbox/sessions/s2/accounts/a1", State.STATE_COMPLETED),
        ("sources/setu/consents/c1", State.STATE_PENDING),
    ]:
        await store.ingest(poll(update(name, state, terminal=state == State.STATE_COMPLETED)))
    # A subject that moves on is counted in its new state only.
    await store.ingest(poll(update("sources/setu/consents/c1", State.STATE_ACTIVE)))
    assert await store.count_subjects() == {
        ("finbox", State.STATE_IN_PROGRESS): 2,
        ("finbox", State.STATE_COMPLETED): 1,
        ("setu", State.STATE_ACTIVE): 1,
    }


async def test_the_reconciler_backlog_counts_what_a_claim_would_take(store: Store) -> None:
    names = ["sources/finbox/sessions/s1", "sources/finbox/sessions/s2"]
    for name in names:
        await store.ingest(poll(update(name, State.STATE_IN_PROGRESS)))
    failed = update("sources/finbox/sessions/s3", State.STATE_FAILED, terminal=True)
    await store.ingest(poll(failed))
    first = await store.get_status(names[0])
    assert first is not None
    # An hour on, with subjects quiet after ten minutes.
    now = datetime.now(UTC) + timedelta(hours=1)
    bounds = {
        "now": now,
        "quiet_before": now - timedelta(minutes=10),
        "changed_after": now - timedelta(days=1),
    }
    backlog = await store.poll_backlog("finbox", **bounds)
    assert backlog.due == 2
    # Never polled: due since it went quiet, ten minutes after its last change.
    became_quiet = first.updated_at.ToDatetime(UTC) + timedelta(minutes=10)
    assert backlog.oldest_due_at is not None
    assert abs(backlog.oldest_due_at - became_quiet) < timedelta(milliseconds=1)
    assert (await store.poll_backlog("setu", **bounds)).due == 0

    # Counting leased nothing: a claim still gets both; leased, they are not waiting.
    claims = await store.claim_due_polls(
        "finbox", owner="r1", lease_until=now + timedelta(minutes=5), limit=10, **bounds
    )
    assert sorted(c.name for c in claims) == names
    assert await store.poll_backlog("finbox", **bounds) == type(backlog)(0, None)
    # Polled, next due in a while: due again from then on.
    later = now + timedelta(minutes=30)
    for name in names:
        await store.finish_poll(name, owner="r1", next_poll_at=later, attempts=1)
    assert (await store.poll_backlog("finbox", **bounds)).due == 0
    bounds_later = {**bounds, "now": later + timedelta(minutes=1)}
    backlog = await store.poll_backlog("finbox", **bounds_later)
    assert backlog.due == 2 and backlog.oldest_due_at == later
