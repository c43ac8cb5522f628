"""A delivery: one raw inbound webhook request, kept verbatim, and the verdict on it."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime


class DeliveryVerdict(enum.StrEnum):
    MAPPED = "mapped"  # normalized; may have produced zero events (duplicate / stale)
    UNMAPPED = "unmapped"  # authentic JSON of an unknown shape (202)
    REJECTED = "rejected"  # not JSON, not an object, or unusable content (400)


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
