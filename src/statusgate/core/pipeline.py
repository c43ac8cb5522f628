"""The one write path: store an ingest durably, then wake the hub.

Webhooks, polls, the reconciler and replays all come through here, so every change is
ordered by the same rules, gets exactly one event and reaches every Watch stream.
"""

from __future__ import annotations

from statusgate.core.hub import Hub
from statusgate.store.base import IngestRequest, IngestResult, Store


class Pipeline:
    def __init__(self, store: Store, hub: Hub) -> None:
        self.store = store
        self.hub = hub

    async def ingest(self, request: IngestRequest) -> IngestResult:
        result = await self.store.ingest(request)
        self.hub.offer(result.events)
        return result
