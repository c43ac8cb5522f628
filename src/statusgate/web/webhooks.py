"""``POST /webhooks/{source}``: the one route every provider's webhooks arrive on.

The order of checks: unknown source or path (404) and oversized body (413) first,
then the source's authentication (401, nothing stored), then the raw delivery is stored
durably, together with whatever it maps to, before any 2xx. A body we cannot use is
kept too (400 rejected, 202 unmapped), so a later mapping fix can replay it. When the
store cannot commit, the answer is 503 so the provider retries; never a 4xx, which
would tell it to give up on a delivery we have not kept.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from statusgate.config import SourceConfig
from statusgate.core.deliveries import DeliveryVerdict
from statusgate.ingest import Ingest, new_delivery_id
from statusgate.logs import request_id
from statusgate.providers.registry import Registry
from statusgate.providers.spec import Acknowledgement, WebhookReply
from statusgate.store.base import StoreUnavailableError
from statusgate.v1.status_pb2 import State
from statusgate.web.auth import AuthenticationError, VerifiableRequest, WebhookVerifier
from statusgate.web.metrics import Metrics
from statusgate.web.ratelimit import TokenBucket, retry_after_header

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = "5"


class WebhookReceiver:
    def __init__(
        self,
        sources: Mapping[str, SourceConfig],
        registry: Registry,
        verifiers: Mapping[str, WebhookVerifier],
        ingest: Ingest,
        metrics: Metrics,
        max_body_bytes: int,
    ) -> None:
        self._sources = sources
        self._registry = registry
        self._verifiers = verifiers
        self._ingest = ingest
        self._metrics = metrics
        self._max_body_bytes = max_body_bytes
        self._buckets = {
            sid: TokenBucket(s.rate_limit) for sid, s in sources.items() if s.rate_limit
        }

    async def handle(self, request: web.Request) -> web.StreamResponse:
        started = time.perf_counter()
        delivery_id = new_delivery_id()
        # Every log line about this webhook and its events carries this id.
        request_id.set(delivery_id)
        source_id = request.match_info["source"]
        source = self._sources.get(source_id)
        if source is None:
            return _json(404, _error("unknown_source", f"no source {source_id!r} is configured"))
        spec = self._registry.for_source(source)
        path = request.match_info.get("path", "")
        if path not in spec.webhook_paths:
            return _json(
                404, _error("unknown_path", f"source {source_id!r} has no webhook {path!r}")
            )
        answer = _Answerer(spec.acknowledgement)
        if (request.content_length or 0) > self._max_body_bytes:
            return self._too_large(source_id, answer)
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return self._too_large(source_id, answer)
        answer.request_body = body

        try:
            self._verifiers[source_id].verify(
                VerifiableRequest(headers=request.headers, body=body, peer=request.remote)
            )
        except AuthenticationError as error:
            self._metrics.auth_failures.labels(source_id).inc()
            self._count(source_id, "unauthenticated")
            # The reason names the check that failed; never the body or a secret.
            log.warning("webhook refused", extra={"source": source_id, "reason": error.reason})
            return answer(401, _error("unauthenticated", "webhook authentication failed"))

        bucket = self._buckets.get(source_id)
        if bucket is not None and (wait := bucket.take()):
            self._count(source_id, "rate_limited")
            return answer(
                429,
                _error("rate_limited", f"source {source_id!r} exceeds its webhook rate limit"),
                {"Retry-After": retry_after_header(wait)},
            )

        try:
            ingested = await self._ingest.webhook(
                source,
                body,
                request.headers,
                delivery_id=delivery_id,
                received_at=datetime.now(UTC),
            )
        except StoreUnavailableError:
            self._count(source_id, "unavailable")
            log.error("webhook not stored: store unavailable", extra={"source": source_id})
            return answer(
                503,
                _error("store_unavailable", "the delivery was not stored; retry later"),
                {"Retry-After": RETRY_AFTER_SECONDS},
            )
        verdict, detail = ingested.normalized.verdict, ingested.normalized.detail
        result = ingested.result
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
            return answer(
                400, {**_error("invalid_payload", detail), "delivery_id": result.delivery_id}
            )
        if verdict is DeliveryVerdict.UNMAPPED:
            self._count(source_id, "unmapped")
            return answer(
                202, {"delivery_id": result.delivery_id, "unmapped": True, "detail": detail}
            )
        self._count(source_id, "mapped" if result.events else "duplicate")
        return answer(
            200,
            {
                "delivery_id": result.delivery_id,
                "events": [{"sequence": e.sequence, "name": e.status.name} for e in result.events],
            },
        )

    def _too_large(self, source_id: str, answer: _Answerer) -> web.Response:
        self._count(source_id, "too_large")
        return answer(
            413, _error("body_too_large", f"the body exceeds {self._max_body_bytes} bytes")
        )

    def _count(self, source_id: str, outcome: str) -> None:
        self._metrics.webhooks.labels(source_id, outcome).inc()


class _Answerer:
    """Answers one webhook in the shape its provider expects (``Acknowledgement``)."""

    def __init__(self, acknowledgement: Acknowledgement) -> None:
        self._acknowledgement = acknowledgement
        self.request_body: bytes | None = None

    def __call__(
        self, status: int, document: dict[str, Any], headers: Mapping[str, str] | None = None
    ) -> web.Response:
        reply = WebhookReply(status, document, headers or {})
        encoded = self._acknowledgement.encode(self.request_body, reply)
        return web.Response(status=encoded.status, body=encoded.body, headers=encoded.headers)


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def _json(status: int, document: dict[str, Any]) -> web.Response:
    return web.json_response(document, status=status)
