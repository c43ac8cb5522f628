"""The one write path: store an ingest durably, then wake the hub.

Webhooks, polls, the reconciler and replays all come through here, so every change is
ordered by the same rules, gets exactly one event and reaches every Watch stream.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from statusgate.config import SourceConfig
from statusgate.core.hub import Hub
from statusgate.core.names import InvalidNameError
from statusgate.providers.base import InvalidPayloadError, UnknownShapeError
from statusgate.providers.registry import adapter_for
from statusgate.store.base import DeliveryVerdict, IngestRequest, IngestResult, Store
from statusgate.v1.status_pb2 import Status

log = logging.getLogger(__name__)


class Pipeline:
    def __init__(self, store: Store, hub: Hub) -> None:
        self.store = store
        self.hub = hub

    async def ingest(self, request: IngestRequest) -> IngestResult:
        result = await self.store.ingest(request)
        self.hub.offer(result.events)
        return result


def normalize_body(source: SourceConfig, body: bytes) -> tuple[DeliveryVerdict, list[Status], str]:
    """A raw webhook body -> (verdict, canonical updates, why not mapped).

    Shared by the front door and replay, so a replayed delivery is judged exactly as a
    new one would be today.
    """
    try:
        payload: Any = json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        return DeliveryVerdict.REJECTED, [], f"the body is not JSON: {error}"
    if not isinstance(payload, dict):
        kind = type(payload).__name__
        return DeliveryVerdict.REJECTED, [], f"the body is JSON but not an object ({kind})"
    try:
        updates = adapter_for(source.provider).normalize(source, payload)
    except UnknownShapeError as error:
        return DeliveryVerdict.UNMAPPED, [], str(error)
    except (InvalidPayloadError, InvalidNameError) as error:
        return DeliveryVerdict.REJECTED, [], str(error)
    except Exception:
        # An adapter bug must not lose the delivery: keep it unmapped, so a replay after
        # the fix recovers it, and make noise.
        log.exception("adapter %s failed on a delivery for %s", source.provider, source.id)
        return DeliveryVerdict.UNMAPPED, [], "internal mapping error; kept for replay"
    return DeliveryVerdict.MAPPED, updates, ""
