"""The one write path: a body judged by today's adapter, kept, applied, fanned out."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from statusgate.core.deliveries import DeliveryVerdict
from statusgate.core.hub import Hub
from statusgate.ingest import Ingest, new_delivery_id
from statusgate.providers.finbox import FinboxSource
from statusgate.providers.registry import PROVIDERS
from statusgate.store.factory import open_store
from statusgate.v1.status_pb2 import Origin
from tests.payloads import finbox_expiry

SOURCE = FinboxSource(id="finbox", provider="finbox")


async def test_webhook_then_replay_through_one_path(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'i.db'}")
    await store.open()
    hub = Hub(store)
    await hub.start()
    ingest = Ingest(store, hub, PROVIDERS)
    try:
        body = json.dumps(finbox_expiry("s1")).encode()
        headers = {"content-type": "application/json", "x-secret-key": "never kept"}
        kept = await ingest.webhook(
            SOURCE, body, headers, delivery_id=new_delivery_id(), received_at=datetime.now(UTC)
        )
        assert kept.normalized.verdict is DeliveryVerdict.MAPPED
        [event] = kept.result.events
        assert (event.origin, hub.last_sequence) == (Origin.ORIGIN_WEBHOOK, event.sequence)
        [stored] = await store.list_deliveries([DeliveryVerdict.MAPPED])
        assert stored.headers == {"content-type": "application/json"}

        # A body that still does not map is judged, and nothing is written for it.
        junk = await ingest.webhook(
            SOURCE, b"[1]", {}, delivery_id=new_delivery_id(), received_at=datetime.now(UTC)
        )
        assert junk.normalized.verdict is DeliveryVerdict.REJECTED
        [rejected] = await store.list_deliveries([DeliveryVerdict.REJECTED])
        again = await ingest.replay(SOURCE, rejected)
        assert (again.normalized.verdict, again.result.events) == (DeliveryVerdict.REJECTED, [])
        assert await store.last_sequence() == event.sequence

        # The mapped one replays as a duplicate: the ordering rules hold, no event.
        replayed = await ingest.replay(SOURCE, stored)
        assert (replayed.normalized.verdict, replayed.result.events) == (
            DeliveryVerdict.MAPPED,
            [],
        )
    finally:
        await hub.close()
        await store.close()
