"""Upstream HTTP calls for polling: one aiohttp session per source, timeouts bound by
the caller's deadline, retries with exponential backoff and jitter that honour
Retry-After, the source's circuit breaker, and every failure turned into a
``ApiError`` that says what went wrong (``envelopes``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import ssl
import time
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiohttp
from multidict import CIMultiDict
from opentelemetry.trace import SpanKind

from statusgate.config import ApiConfig
from statusgate.core.errors import ApiError, Reason
from statusgate.telemetry import tracing
from statusgate.upstream.breaker import CircuitBreaker, Outcome
from statusgate.upstream.envelopes import Failure, bad_response, http_failure

log = logging.getLogger(__name__)

# Kept from the caller's deadline so the answer (or the error) still reaches it in time.
DEADLINE_MARGIN = 0.05
# The longest wait between two attempts, whatever the backoff says (Retry-After aside).
MAX_BACKOFF = 10.0


@dataclass(slots=True)
class CallScope:
    """One poll's budget: the absolute deadline (``time.monotonic``) every upstream
    call of it must finish by, and how many calls it has made (``upstream_calls``)."""

    deadline: float
    calls: int = 0

    @classmethod
    def within(cls, seconds: float) -> CallScope:
        return cls(time.monotonic() + seconds)

    def remaining(self) -> float:
        return self.deadline - time.monotonic()


@dataclass(frozen=True, slots=True)
class UpstreamResponse:
    status: int
    # Decoded JSON; None when the body was empty or not JSON (is_json says which).
    body: Any
    raw: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    is_json: bool = True


def deadline_exceeded(label: str) -> ApiError:
    return ApiError(
        Reason.DEADLINE_EXCEEDED,
        f"{label}: the caller's deadline passed before the provider answered",
    )


Sleep = Callable[[float], Awaitable[None]]


class UpstreamObserver(Protocol):
    """Told of every request (``telemetry.metrics.SourceMetrics`` is one)."""

    def request(self, code: str, seconds: float | None) -> None:
        """One request, by ``code`` ("2xx"... "5xx", "429", "timeout",
        "connection_error", "invalid_response"), or one the breaker refused
        ("breaker_open", ``seconds`` None)."""

    def breaker(self, state: str) -> None:
        """The breaker's state after a request (a ``BreakerState`` value)."""


class HttpClient:
    """The HTTP side of one source's API client.

    ``sleep`` is the wait between retries (tests record it instead of waiting).
    """

    def __init__(
        self,
        *,
        provider: str,
        api: ApiConfig,
        ssl_context: ssl.SSLContext | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.provider = provider
        self.breaker = CircuitBreaker(
            api.breaker_failures, api.breaker_cooldown_seconds, name=provider
        )
        self._timeout = api.timeout_seconds
        self._retries = api.retries
        self._backoff = api.retry_backoff_seconds
        self._ssl = ssl_context
        self._sleep = sleep
        self._session: aiohttp.ClientSession | None = None
        # Whether the provider's last word on our credentials was a refusal (401/403).
        self._refused = False
        self.observer: UpstreamObserver | None = None

    def _client(self) -> aiohttp.ClientSession:
        # Created on first use: a ClientSession belongs to the running event loop.
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(ssl=self._ssl if self._ssl is not None else True)
            self._session = aiohttp.ClientSession(connector=connector)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def call(
        self,
        method: str,
        url: str,
        *,
        label: str,
        scope: CallScope,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
        data: bytes | Mapping[str, str] | None = None,
        passthrough: Collection[int] = (),
    ) -> UpstreamResponse:
        """A 2xx answer with a JSON body, or an answer whose status is in
        ``passthrough`` (the caller knows what it means, e.g. a 401 that asks for a new
        token). Anything else raises ``ApiError`` after the retries it deserves.

        The body is ``json_body`` encoded, or ``data`` as it is: exact bytes (a body
        whose signature is sent along must be sent byte for byte) or a form.

        Traced as one span for the call and a child span per attempt."""
        with tracing.span(
            "statusgate.upstream.call",
            {
                "statusgate.upstream": self.provider,
                "statusgate.upstream.endpoint": label,
                "http.request.method": method,
            },
        ):
            request = _Request(method, url, label, headers, params, json_body, data)
            return await self._call(request, scope, passthrough)

    async def _call(
        self, request: _Request, scope: CallScope, passthrough: Collection[int]
    ) -> UpstreamResponse:
        label = request.label
        attempt = 0
        while True:
            with tracing.span(
                "statusgate.upstream.attempt",
                {"statusgate.upstream.attempt": attempt + 1},
                kind=SpanKind.CLIENT,
            ):
                outcome = await self._attempt(request, scope)
                if not isinstance(outcome, UpstreamResponse):
                    tracing.fail(str(outcome.error.reason))
                elif not (200 <= outcome.status < 300 or outcome.status in passthrough):
                    tracing.fail(f"HTTP {outcome.status}")
            if isinstance(outcome, UpstreamResponse):
                if 200 <= outcome.status < 300:
                    self._credentials(refused=None)
                    return outcome
                if outcome.status in passthrough:
                    return outcome
                failure = http_failure(
                    outcome.status, outcome.raw, outcome.headers.get("Retry-After"), label
                )
            else:
                failure = outcome
            if not failure.retryable or attempt >= self._retries:
                if failure.error.reason == Reason.UPSTREAM_AUTH_FAILED:
                    self._credentials(refused=failure.error)
                raise failure.error
            delay = self._delay(attempt, failure.retry_after)
            if delay > scope.remaining() - DEADLINE_MARGIN:
                failure.error.message += " (no time left before the deadline to retry)"
                raise failure.error
            tracing.add_event(
                "statusgate.upstream.retry",
                {"statusgate.upstream.reason": str(failure.error.reason), "delay_seconds": delay},
            )
            await self._sleep(delay)
            attempt += 1

    def _credentials(self, *, refused: ApiError | None) -> None:
        """Log when the provider starts refusing the gateway's own credentials, and when
        it accepts them again: once per change, not per call (every poll of the source
        fails meanwhile, and each says so in its result). The line quotes the provider's
        answer, never a credential."""
        if refused is not None and not self._refused:
            log.warning(
                "%s API refused the gateway's credentials: %s; every poll of this source "
                "fails until its API credentials are fixed",
                self.provider,
                refused.message,
            )
        elif refused is None and self._refused:
            log.info("%s API accepts the gateway's credentials again", self.provider)
        self._refused = refused is not None

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        # Full jitter: concurrent pollers that failed together do not retry together.
        delay = random.uniform(0, min(MAX_BACKOFF, self._backoff * 2**attempt))
        if retry_after is not None:
            delay = retry_after + random.uniform(0, self._backoff)
        return delay

    async def _attempt(self, request: _Request, scope: CallScope) -> UpstreamResponse | Failure:
        label = request.label
        try:
            admitted = await self.breaker.admit(max(0.0, scope.remaining() - DEADLINE_MARGIN))
        except TimeoutError:
            raise deadline_exceeded(label) from None
        # The breaker's decision on this attempt (its state as the attempt leaves it).
        tracing.set_attributes(
            {
                "statusgate.breaker.admitted": admitted,
                "statusgate.breaker.state": str(self.breaker.state),
            }
        )
        if not admitted:
            if self.observer is not None:
                self.observer.request("breaker_open", None)
            raise ApiError(
                Reason.UPSTREAM_UNAVAILABLE,
                f"{label}: not called, the {self.provider} API failed "
                f"{self.breaker.consecutive_failures} times in a row (circuit breaker open; "
                f"next try in {self.breaker.retry_in():.1f}s)",
            )
        outcome = Outcome.NEUTRAL
        detail = ""
        try:
            remaining = scope.remaining() - DEADLINE_MARGIN
            if remaining <= 0:
                raise deadline_exceeded(label)
            timeout = min(self._timeout, remaining)
            started = time.perf_counter()
            result = await self._send(request, scope, timeout)
            if self.observer is not None:
                self.observer.request(_code(result), time.perf_counter() - started)
            if isinstance(result, UpstreamResponse):
                outcome = _health(result)
                if 200 <= result.status < 300 and not result.is_json:
                    failure = bad_response(label, result.status, result.raw)
                    detail = failure.error.message
                    return failure
                if outcome == Outcome.FAILURE:
                    detail = http_failure(result.status, result.raw, None, label).error.message
                return result
            detail = result.error.message
            if result.provider_down:
                outcome = Outcome.FAILURE
            if result.error.reason == Reason.UPSTREAM_TIMEOUT and timeout < self._timeout:
                # Cut short by the caller's deadline, not by the provider's slowness.
                outcome = Outcome.NEUTRAL
                if scope.remaining() <= DEADLINE_MARGIN:
                    raise deadline_exceeded(label)
            return result
        finally:
            self.breaker.record(outcome, detail)
            if self.observer is not None:
                self.observer.breaker(self.breaker.state)

    async def _send(
        self, request: _Request, scope: CallScope, limit: float
    ) -> UpstreamResponse | Failure:
        label = request.label
        scope.calls += 1
        try:
            async with self._client().request(
                request.method,
                request.url,
                headers=request.headers,
                params=request.params,
                json=request.json_body,
                data=request.data,
                timeout=aiohttp.ClientTimeout(total=limit),
            ) as response:
                tracing.set_attributes({"http.response.status_code": response.status})
                raw = await response.read()
                return _answer(response.status, raw, CIMultiDict(response.headers))
        except TimeoutError:
            return Failure(
                ApiError(
                    Reason.UPSTREAM_TIMEOUT,
                    f"{label}: no answer within {limit:.2f}s",
                ),
                retryable=True,
                provider_down=True,
            )
        except (aiohttp.ClientSSLError, aiohttp.ClientConnectorCertificateError) as error:
            # A TLS failure (wrong CA, client certificate refused) will not heal by
            # itself: say so at once instead of retrying.
            return Failure(
                ApiError(
                    Reason.UPSTREAM_UNAVAILABLE,
                    f"{label}: TLS handshake failed ({type(error).__name__}); check the "
                    "API's certificate settings",
                ),
                retryable=False,
                provider_down=True,
            )
        except (aiohttp.ClientError, OSError) as error:
            return Failure(
                ApiError(
                    Reason.UPSTREAM_UNAVAILABLE,
                    f"{label}: connection failed ({type(error).__name__})",
                ),
                retryable=True,
                provider_down=True,
            )


@dataclass(frozen=True, slots=True)
class _Request:
    """One call's request, the same for each of its attempts."""

    method: str
    url: str
    label: str
    headers: Mapping[str, str] | None
    params: Mapping[str, str] | None
    json_body: Any
    data: bytes | Mapping[str, str] | None


def _answer(status: int, raw: bytes, headers: Mapping[str, str]) -> UpstreamResponse:
    try:
        # An empty body is not JSON either: json.loads refuses it.
        return UpstreamResponse(status, json.loads(raw), raw, headers)
    except ValueError:
        return UpstreamResponse(status, None, raw, headers, is_json=False)


def _code(result: UpstreamResponse | Failure) -> str:
    """How the metrics count a request: its status class, or how it failed."""
    if isinstance(result, Failure):
        return "timeout" if result.error.reason == Reason.UPSTREAM_TIMEOUT else "connection_error"
    status = result.status
    if status == 429:
        return "429"
    if 200 <= status < 300 and not result.is_json:
        return "invalid_response"
    return f"{min(max(status // 100, 2), 5)}xx"


def _health(answer: UpstreamResponse) -> Outcome:
    """What an answer says about the provider: alive, down, or nothing (429)."""
    if answer.status >= 500 or (200 <= answer.status < 300 and not answer.is_json):
        return Outcome.FAILURE
    if answer.status == 429:
        return Outcome.NEUTRAL
    return Outcome.SUCCESS
