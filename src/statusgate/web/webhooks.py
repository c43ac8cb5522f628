"""``POST /webhooks/{source}``: the one route every provider's webhooks arrive on.

The order of checks: unknown source or path (404), a declared body over the limit
(413) and an unsupported ``Content-Encoding`` (415) first; then whatever of the source's
authentication needs no body (401) — for a shared secret, basic auth or an IP allowlist
that is all of it, so a refused request never costs a body read; then the body, within
``body_timeout_seconds`` (408) and the size limit (413), decoded and depth-checked here;
then the authentication that needs the body (401, nothing stored) and the rate limit
(429). The raw delivery is then stored durably, together with whatever it maps to,
before any 2xx. A body we cannot use is kept too (400 rejected, 202 unmapped), so a
later mapping fix can replay it, and so is one that reuses its provider's delivery id
with other content (409). When the store cannot commit, the answer is 503 so the
provider retries; never a 4xx, which would tell it to give up on a delivery we have not
kept. A client that goes away mid-body is logged at debug, once.

Every answer but the unknown source's is encoded by the source's ``Acknowledgement``,
which may reshape (and sign) it in the provider's own vocabulary: it is told which
authentication method refused a request and the adapter's own code for a payload.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from statusgate.config import SourceConfig
from statusgate.core.deliveries import DeliveryVerdict
from statusgate.core.names import quoted
from statusgate.ingest import Ingest, new_delivery_id
from statusgate.logs import request_id
from statusgate.providers.registry import Registry
from statusgate.providers.spec import Acknowledgement, WebhookReply
from statusgate.store.base import StoreUnavailableError
from statusgate.telemetry import tracing
from statusgate.telemetry.metrics import Metrics
from statusgate.v1.status_pb2 import State
from statusgate.web.auth import AuthenticationError, VerifiableRequest, WebhookVerifier
from statusgate.web.encoding import (
    BodyTooLargeError,
    UnsupportedEncodingError,
    body_decoder,
)
from statusgate.web.ratelimit import TokenBucket, retry_after_header

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = "5"


class WebhookReceiver:
    def __init__(
        self,
        sources: Mapping[str, SourceConfig],
        registry: Registry,
        verifiers: Mapping[str, WebhookVerifier],
        acknowledgements: Mapping[str, Acknowledgement],
        ingest: Ingest,
        metrics: Metrics,
        max_body_bytes: int,
        *,
        body_timeout: float = 30.0,
    ) -> None:
        self._body_timeout = body_timeout
        self._sources = sources
        self._registry = registry
        self._verifiers = verifiers
        self._acknowledgements = acknowledgements
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
            return _json(
                404, _error("unknown_source", f"no source {quoted(source_id)} is configured")
            )
        spec = self._registry.for_source(source)
        if tracing.enabled():  # values from the config and our own id: never the request's
            tracing.set_attributes(
                {
                    "statusgate.source": source_id,
                    "statusgate.provider": source.provider,
                    "statusgate.delivery_id": delivery_id,
                }
            )
        answer = _Answerer(self._acknowledgements[source_id])
        path = request.match_info.get("path", "")
        if path not in spec.webhook_paths:
            return _closing(
                answer(
                    404,
                    _error("unknown_path", f"source {source_id!r} has no webhook {quoted(path)}"),
                )
            )
        if (request.content_length or 0) > self._max_body_bytes:
            return _closing(self._too_large(source_id, answer))
        try:
            decoder = body_decoder(request.headers.getall("Content-Encoding", []))
        except UnsupportedEncodingError as error:
            self._count(source_id, "unsupported_encoding")
            return _closing(answer(415, _error("unsupported_content_encoding", str(error))))

        verifier = self._verifiers[source_id]
        refused = self._authenticate(source_id, verifier, verifier.verify_headers, request, b"")
        if refused is not None:
            return _closing(answer.send(refused))
        if not verifier.needs_body and (limited := self._rate_limited(source_id)):
            return _closing(answer.send(limited))

        try:
            async with asyncio.timeout(self._body_timeout):
                raw = await request.read()
        except TimeoutError:
            self._count(source_id, "body_timeout")
            log.info("webhook body not received in time", extra={"source": source_id})
            return _closing(answer(408, _error("body_timeout", "the body did not arrive in time")))
        except web.HTTPRequestEntityTooLarge:
            return _closing(self._too_large(source_id, answer))
        except web.RequestPayloadError:
            self._count(source_id, "bad_body")
            return _closing(
                answer(400, _error("invalid_body", "the body is not valid HTTP framing"))
            )
        except ConnectionError:
            # The client went away mid-body: nothing to answer, nothing to keep.
            self._count(source_id, "disconnected")
            log.debug("client disconnected before its webhook body arrived")
            return web.Response(status=400)
        unusable: str | None = None
        try:
            body = decoder(raw, self._max_body_bytes)
        except BodyTooLargeError:
            return _closing(self._too_large(source_id, answer))
        except ValueError as error:
            # Kept as rejected once authentic, like any other body we cannot use.
            body, unusable = raw, str(error)
        answer.request_body = body

        if verifier.needs_body:
            refused = self._authenticate(source_id, verifier, verifier.verify, request, body)
            if refused is not None:
                return answer.send(refused)
            if limited := self._rate_limited(source_id):
                return answer.send(limited)

        try:
            ingested = await self._ingest.webhook(
                source,
                body,
                request.headers,
                delivery_id=delivery_id,
                received_at=datetime.now(UTC),
                unusable=unusable,
                path=path,
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
        tracing.set_attributes({"statusgate.verdict": verdict.value})
        # (Its events are counted by Ingest, with those of every other origin.)
        self._metrics.sources[source_id].ack_seconds.observe(time.perf_counter() - started)
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

        if ingested.conflicts_with:
            self._count(source_id, "conflict")
            return answer(
                409,
                {**_error("idempotency_conflict", detail), "delivery_id": result.delivery_id},
            )
        if verdict is DeliveryVerdict.REJECTED:
            self._count(source_id, "rejected")
            return answer.send(
                WebhookReply(
                    400,
                    {**_error("invalid_payload", detail), "delivery_id": result.delivery_id},
                    provider_code=ingested.normalized.code,
                )
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

    def _authenticate(
        self,
        source_id: str,
        verifier: WebhookVerifier,
        check: Callable[[VerifiableRequest], None],
        request: web.Request,
        body: bytes,
    ) -> WebhookReply | None:
        """None when ``check`` passes; otherwise the 401 to send (counted, logged),
        naming the method that refused."""
        try:
            check(VerifiableRequest(headers=request.headers, body=body, peer=request.remote))
        except AuthenticationError as error:
            self._metrics.record_auth_failure(source_id)
            self._count(source_id, "unauthenticated")
            # The reason names the check that failed; never the body or a secret.
            log.warning("webhook refused", extra={"source": source_id, "reason": error.reason})
            return WebhookReply(
                401,
                _error("unauthenticated", "webhook authentication failed"),
                failed_check=error.method or getattr(verifier, "method", ""),
            )
        return None

    def _rate_limited(self, source_id: str) -> WebhookReply | None:
        bucket = self._buckets.get(source_id)
        if bucket is None or not (wait := bucket.take()):
            return None
        self._count(source_id, "rate_limited")
        return WebhookReply(
            429,
            _error("rate_limited", f"source {source_id!r} exceeds its webhook rate limit"),
            {"Retry-After": retry_after_header(wait)},
        )

    def _too_large(self, source_id: str, answer: _Answerer) -> web.Response:
        self._count(source_id, "too_large")
        return answer(
            413, _error("body_too_large", f"the body exceeds {self._max_body_bytes} bytes")
        )

    def _count(self, source_id: str, verdict: str) -> None:
        self._metrics.sources[source_id].webhooks[verdict].inc()


class _Answerer:
    """Answers one webhook in the shape its provider expects (``Acknowledgement``)."""

    def __init__(self, acknowledgement: Acknowledgement) -> None:
        self._acknowledgement = acknowledgement
        self.request_body: bytes | None = None

    def __call__(
        self, status: int, document: dict[str, Any], headers: Mapping[str, str] | None = None
    ) -> web.Response:
        return self.send(WebhookReply(status, document, headers or {}))

    def send(self, reply: WebhookReply) -> web.Response:
        encoded = self._acknowledgement.encode(self.request_body, reply)
        return web.Response(status=encoded.status, body=encoded.body, headers=encoded.headers)


def _closing(response: web.Response) -> web.Response:
    """An answer sent before the body was (wholly) read: the connection closes after
    it, so an unread body is never parsed as the next request, and costs at most
    aiohttp's lingering time."""
    response.force_close()
    return response


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def _json(status: int, document: dict[str, Any]) -> web.Response:
    return web.json_response(document, status=status)
