"""Retention prunes raw deliveries and nothing else, on every store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from statusgate.store.base import DeliveryVerdict, Store, WebhookIngest
from statusgate.v1.status_pb2 import State
from tests.store.builders import delivery, update

OLD = datetime.now(UTC) - timedelta(days=40)
CUTOFF = datetime.now(UTC) - timedelta(days=30)


async def test_prune_deletes_old_bodies_and_keeps_statuses_and_events(store: Store) -> None:
    old_noise = delivery(verdict=DeliveryVerdict.UNMAPPED, received_at=OLD)
    old_mapped = delivery(received_at=OLD, body=b'{"big": "body"}')
    fresh = delivery(verdict=DeliveryVerdict.REJECTED)
    await store.ingest(WebhookIngest(old_noise))
    mapped = await store.ingest(
        WebhookIngest(
            old_mapped,
            [update("sources/finbox/sessions/r1", State.STATE_PENDING)],
        )
    )
    await store.ingest(WebhookIngest(fresh))

    assert await store.prune_deliveries(CUTOFF) == 2
    everything = await store.list_deliveries(list(DeliveryVerdict), limit=100)
    kept = {d.id: d for d in everything}
    assert old_noise.id not in kept  # nothing points at it: gone
    assert kept[old_mapped.id].body == b""  # an event points at it: emptied, kept
    assert kept[fresh.id].body == fresh.body  # young: untouched
    # Statuses and events are never pruned.
    assert (await store.get_status("sources/finbox/sessions/r1")) is not None
    events = await store.list_events("sources/finbox/sessions/r1")
    assert [e.delivery_id for e in events] == [old_mapped.id]
    assert [e.sequence for e in events] == [e.sequence for e in mapped.events]
    # Pruning again finds nothing more.
    assert await store.prune_deliveries(CUTOFF) == 0
