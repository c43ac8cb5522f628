"""What only the front door checks of a ReBIT notification: where and when it arrived,
and whether its ``txnid`` was seen before (``ProviderSpec.screen`` and
``idempotency_key``). A replay, judged on the stored body alone, skips these.

- The sub-path must be the notification's own (a consent notification posted to
  ``FI/Notification`` is refused with InvalidURI).
- ``timestamp`` must lie within the source's ``timestamp_tolerance_seconds`` (15 minutes
  by default) of the gateway's clock, either way (InvalidRequest): a signed
  notification captured and posted again later is refused, not applied.
- ``txnid`` is the delivery's idempotency key: the same txnid with the same content is
  a duplicate (200, nothing applied again), with other content a conflict (409
  IdempotencyError). A copy of a notification already taken is answered 200 even once
  its timestamp is stale, since the AA retrying it only needs to hear it arrived.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from statusgate.providers.common import parse_provider_time
from statusgate.providers.rebit.adapter import PATHS, is_uuid, kind_of
from statusgate.providers.rebit.config import RebitSource
from statusgate.providers.rebit.tables import INVALID_REQUEST, INVALID_URI
from statusgate.providers.spec import Refusal, WebhookContext


def screen(source: Any, payload: Mapping[str, Any], context: WebhookContext) -> Refusal | None:
    """Refuses a mapped notification posted to the wrong sub-path or out of its time."""
    kind = kind_of(dict(payload))
    if kind is not None and context.path != PATHS[kind]:
        return Refusal(
            f"a {kind} is posted to {PATHS[kind]}, not to {context.path or 'the base URL'}",
            INVALID_URI,
        )
    sent_at = parse_provider_time(payload.get("timestamp"))
    if sent_at is None or not isinstance(source, RebitSource):
        return None
    skew = (context.received_at - sent_at).total_seconds()
    if abs(skew) > source.timestamp_tolerance_seconds:
        direction = "before" if skew > 0 else "after"
        return Refusal(
            f"timestamp is {abs(skew):.0f} s {direction} the gateway's clock; at most "
            f"{source.timestamp_tolerance_seconds:.0f} s either way is accepted",
            INVALID_REQUEST,
        )
    return None


def idempotency_key(payload: Mapping[str, Any]) -> str | None:
    """The notification's ``txnid``, when it is one (a UUID; other values are refused
    by the adapter anyway)."""
    txnid = payload.get("txnid")
    return txnid if isinstance(txnid, str) and is_uuid(txnid) else None
