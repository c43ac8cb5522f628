"""``POST /webhooks/{source}``: the one route every provider's webhooks arrive on.

The order of checks is DESIGN.md §6: unknown source (404) and oversized body (413) first,
then the source's authentication (401, nothing stored), then the raw delivery is stored
durably, together with whatever it maps to, before any 2xx. A body we cannot use is
kept too (400 rejected, 202 unmapped), so a later mapping fix can replay it. When the
store cannot commit, the answer is 503 so the provider retries; never a 4xx, which
would tell it to give up on a delivery we have not kept.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from statusgate.config import SourceConfig
from statusgate.core.pipeline import Pipeline, normalize_body
from statusgate.logs import request_id
from statusgate.store.base import Delivery, DeliveryVerdict, IngestRequest, StoreUnavailableError
from statusgate.v1.status_pb2 import Origin, State
from statusgate.web.auth import AuthenticationError, VerifiableRequest, WebhookVerifier
from statusgate.web.metrics import Metrics
from statusgate.web.ratelimit import TokenBucket, retry_after_header

log = logging.getLogger(__name__)

# Headers kept with a delivery for inspection. An allowlist, so that credentials
# (authorization, x-secret-key, cookies) can never be stored by accident.
KEPT_HEADERS = (
    "content-type",
    "user-agent",
    "webhook-id",
    "webhook-timestamp",
    "x-jws-signature",
    "x-request-id",
    "x-forwarded-for",
)
RETRY_AFTER_SECONDS = "5"


def new_delivery_id() -> str:
    """Time-ordered (microseconds) then random: sorts by arrival, never collides."""
    return f"{time.time_ns() // 1000:014x}{secrets.token_hex(6)}"


class WebhookReceiver:
    def __init__(
        self,
        sources: Mapping[str, SourceConfig],
        verifiers: Mapping[str, WebhookVerifier],
        pipeline: Pipeline,
        metrics: Metrics,
        max_body_bytes: int,
    ) -> None:
        self._sources = sources
        self._verifiers = verifiers
        self._pipeline = pipeline
        self._metrics = metrics
        self._max_body_bytes = max_body_bytes
        self._buckets = {
            sid: TokenBucket(s.rate_limit) for sid, s in sources.items() if s.rate_limit
        }

    async def handle(self, request: web.Request) -> web.Response:
        started = time.perf_counter()
        delivery_id = new_delivery_id()
        # Every log line about this webhook and its events carries this id.
        request_id.set(delivery_id)
        source_id = request.match_info["source"]
        source = self._sources.get(source_id)
        if source is None:
            return _error(404, "unknown_source", f"no source {source_id!r} is configured")
        if (request.content_length or 0) > self._max_body_bytes:
            return self._too_large(source_id)
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return self._too_large(source_id)

        try:
            self._verifiers[source_id].verify(
                VerifiableRequest(headers=request.headers, body=body, peer=request.remote)
            )
        except AuthenticationError as error:
            self._metrics.auth_failures.labels(source_id).inc()
            self._count(source_id, "unauthenticated")
            # The reason names the check that failed; never the body or a secret.
            log.warning("webhook refused", extra={"source": source_id, "reason": error.reason})
            return _error(401, "unauthenticated", "webhook authentication failed")

        bucket = self._buckets.get(source_id)
        if bucket is not None and (wait := bucket.take()):
            self._count(source_id, "rate_limited")
            return _error(
                429,
                "rate_limited",
                f"source {source_id!r} exceeds its webhook rate limit",
                headers={"Retry-After": retry_after_header(wait)},
            )

        verdict, updates, detail = normalize_body(source, body)
        delivery = Delivery(
            id=delivery_id,
            source=source_id,
            received_at=datetime.now(UTC),
            body=body,
            headers={k: request.headers[k] for k in KEPT_HEADERS if k in request.headers},
            verdict=verdict,
            detail=detail,
        )
        try:
            result = await self._pipeline.ingest(
                IngestRequest(origin=Origin.ORIGIN_WEBHOOK, updates=updates, delivery=delivery)
            )
        except StoreUnavailableError:
            self._count(source_id, "unavailable")
            log.error("webhook not stored: store unavailable", extra={"source": source_id})
            return _error(
                503,
                "store_unavailable",
                "the delivery was not stored; retry later",
                headers={"Retry-After": RETRY_AFTER_SECONDS},
            )
        self._metrics.ack_seconds.labels(source_id).observe(time.perf_counter() - started)
        if result.events:
            self._metrics.events.labels(source_id, "webhook").inc(len(result.events))
        log.info(
            "webhook stored",
            extra={
                "source": source_id,
                "verdict": verdict.value,
                "detail": detail,
                "events": ",".join(
                    f"{e.sequence}:{e.status.name}:{State.Name(e.status.state)}"
                    for e in result.events
                ),
            },
        )

        if verdict is DeliveryVerdict.REJECTED:
            self._count(source_id, "rejected")
            return _error(400, "invalid_payload", detail, delivery_id=result.delivery_id)
        if verdict is DeliveryVerdict.UNMAPPED:
            self._count(source_id, "unmapped")
            return web.json_response(
                {"delivery_id": result.delivery_id, "unmapped": True, "detail": detail},
                status=202,
            )
        self._count(source_id, "mapped" if result.events else "duplicate")
        return web.json_response(
            {
                "delivery_id": result.delivery_id,
                "events": [{"sequence": e.sequence, "name": e.status.name} for e in result.events],
            }
        )

    def _too_large(self, source_id: str) -> web.Response:
        self._count(source_id, "too_large")
        return _error(413, "body_too_large", f"the body exceeds {self._max_body_bytes} bytes")

    def _count(self, source_id: str, outcome: str) -> None:
        self._metrics.webhooks.labels(source_id, outcome).inc()


def _error(
    status: int,
    code: str,
    message: str,
    *,
    headers: Mapping[str, str] | None = None,
    delivery_id: str = "",
) -> web.Response:
    body: dict[str, Any] = {"error": {"code": code, "message": message}}
    if delivery_id:
        body["delivery_id"] = delivery_id
    return web.json_response(body, status=status, headers=headers)
