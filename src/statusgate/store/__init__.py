"""Durable storage of deliveries, events and statuses behind one interface."""

from statusgate.store.base import (
    Delivery,
    DeliveryVerdict,
    IngestRequest,
    IngestResult,
    Store,
    StoreUnavailableError,
)

__all__ = [
    "Delivery",
    "DeliveryVerdict",
    "IngestRequest",
    "IngestResult",
    "Store",
    "StoreUnavailableError",
]
