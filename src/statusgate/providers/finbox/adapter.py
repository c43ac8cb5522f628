"""The FinBox webhook adapter: tells the session flow and the legacy entity flow apart
by shape, validates, and hands over to ``mapping``.

- ``event_name`` present: a session-flow event. A known name is validated as its
  payload (a missing or malformed ``session_id`` is an invalid payload); any other
  value, including a non-string, is an unknown shape.
- ``entity_id`` and ``progress`` present: the legacy entity webhook.
- anything else: an unknown shape.
"""

from __future__ import annotations

from typing import ClassVar

from statusgate.config import SourceConfig
from statusgate.providers.base import JSONObject, UnknownShapeError
from statusgate.providers.common import ANY_CASE, parse
from statusgate.providers.finbox.mapping import (
    ENRICHMENT_EVENT,
    UPLOAD_EVENTS,
    enrichment_updates,
    entity_updates,
    upload_webhook_updates,
)
from statusgate.providers.finbox.payloads import EnrichmentWebhook, EntityWebhook, UploadWebhook
from statusgate.v1.status_pb2 import Provider, Status


class FinboxAdapter:
    provider: ClassVar[Provider.ValueType] = Provider.PROVIDER_FINBOX

    def normalize(
        self, source: SourceConfig, payload: JSONObject, *, path: str = ""
    ) -> list[Status]:
        if not isinstance(payload, dict):
            raise UnknownShapeError("a FinBox webhook is a JSON object")
        if "event_name" in payload:
            event = payload["event_name"]
            if isinstance(event, str) and UPLOAD_EVENTS.word(event) is not None:
                upload = parse(UploadWebhook, payload, "FinBox upload webhook")
                return upload_webhook_updates(source.id, upload)
            if isinstance(event, str) and ANY_CASE.fold(event) == ENRICHMENT_EVENT:
                enrichment = parse(EnrichmentWebhook, payload, "FinBox enrichment webhook")
                return enrichment_updates(source.id, enrichment)
            raise UnknownShapeError(f"unknown FinBox event_name {str(event)[:60]!r}")
        if "entity_id" in payload and "progress" in payload:
            entity = parse(EntityWebhook, payload, "FinBox entity webhook")
            return entity_updates(source.id, entity)
        raise UnknownShapeError(
            "neither a FinBox session event (event_name) nor an entity webhook "
            "(entity_id and progress)"
        )
