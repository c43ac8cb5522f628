"""A delivery: one raw inbound webhook request, kept verbatim, and the verdict on it."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime


class DeliveryVerdict(enum.StrEnum):
    MAPPED = "mapped"  # normalized; may have produced zero events (duplicate / stale)
    UNMAPPED = "unmapped"  # authentic JSON of an unknown shape (202)
    REJECTED = "rejected"  # not JSON, not an object, or unusable content (400)


@dataclass(frozen=True, slots=True)
class EventRef:
    """An event a delivery produced: its sequence and the subject it changed."""

    sequence: int
    name: str


@dataclass(frozen=True, slots=True)
class Delivery:
    id: str
    source: str
    received_at: datetime
    body: bytes
    # A subset of the request headers (an allowlist: never credentials).
    headers: dict[str, str]
    verdict: DeliveryVerdict
    # Why it was rejected or left unmapped.
    detail: str = ""
    # The provider's own id of the delivery (a transaction id), when it has one: a delivery
    # sent again under the same key is recognised by it (``Store.find_delivery``).
    idempotency_key: str | None = None
    # The sub-path under ``/webhooks/{source}`` it was posted to ("" for that URL), so a
    # replay runs the adapter exactly as the original request did.
    path: str = ""
    # The events it produced (webhook and replays), in sequence order, when the store
    # was asked for them.
    events: tuple[EventRef, ...] = ()


@dataclass(frozen=True, slots=True)
class DeliveryQuery:
    """What ListDeliveries and ReplayDeliveries select; every set field must match,
    within a sequence any value."""

    sources: Sequence[str] = ()
    verdicts: Sequence[DeliveryVerdict] = ()
    # Received at or after / before (the interval is half open).
    received_after: datetime | None = None
    received_before: datetime | None = None
    # A subject name: the deliveries that produced events for it or its descendants.
    name: str = ""


@dataclass(frozen=True, slots=True, order=True)
class DeliveryCursor:
    """A position in the order deliveries are listed in: (received_at, id)."""

    received_at: datetime
    id: str
