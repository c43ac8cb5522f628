"""Builders for store tests: updates, deliveries and ingest requests."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime

from statusgate.core.names import parse_name
from statusgate.store.base import (
    Delivery,
    DeliveryVerdict,
    IngestRequest,
    PollIngest,
    WebhookIngest,
)
from statusgate.v1.status_pb2 import Stage, State, Status, StatusEvent


def update(
    name: str,
    state: State.ValueType,
    stage: Stage.ValueType = Stage.STAGE_UNSPECIFIED,
    *,
    terminal: bool = False,
    occurred_at: datetime | None = None,
    attributes: dict[str, str] | None = None,
) -> Status:
    """A canonical update as an adapter would produce it for ``name``."""
    parsed = parse_name(name)
    status = Status(
        name=name,
        source=parsed.source,
        kind=parsed.kind,
        parent=parsed.parent,
        state=state,
        stage=stage,
        terminal=terminal,
        attributes=attributes or {},
    )
    if occurred_at is not None:
        status.occurred_at.FromDatetime(occurred_at)
    return status


def delivery(
    source: str = "finbox",
    *,
    verdict: DeliveryVerdict = DeliveryVerdict.MAPPED,
    received_at: datetime | None = None,
    body: bytes = b'{"event": "x"}',
    id_: str = "",
) -> Delivery:
    return Delivery(
        id=id_ or uuid.uuid4().hex,
        source=source,
        received_at=received_at or datetime.now(UTC),
        body=body,
        headers={"content-type": "application/json", "user-agent": "test"},
        verdict=verdict,
        detail="" if verdict == DeliveryVerdict.MAPPED else f"it was {verdict}",
    )


def webhook(
    *updates: Status,
    source: str = "finbox",
    delivery_id: str = "",
    received_at: datetime | None = None,
) -> IngestRequest:
    """An ingest as the front door makes it: a delivery and the updates it mapped to."""
    return WebhookIngest(
        delivery(source, id_=delivery_id, received_at=received_at),
        list(updates),
    )


def poll(*updates: Status) -> IngestRequest:
    return PollIngest(list(updates))


def sequences(events: Iterable[StatusEvent]) -> list[int]:
    return [event.sequence for event in events]
