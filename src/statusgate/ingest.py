"""The one write path: normalize → ``Delivery`` → store → hub.

The front door, polls, the reconciler and replays all write through ``Ingest``, so every
change is ordered by the same rules (``core.apply``, run by the store inside its
transaction), gets exactly one event, and reaches every Watch stream.

A new webhook is also judged by what its provider's spec adds (``ProviderSpec``): a
delivery that repeats an idempotency key is a duplicate (same content: kept, nothing
applied again) or a conflict (other content: kept as rejected), and the spec's
``screen`` may refuse what depends on where and when it arrived. Replays skip both: a
stored body is judged by its content alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import secrets
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from statusgate.config import SourceConfig
from statusgate.core.apply import merge
from statusgate.core.deliveries import Delivery, DeliveryVerdict
from statusgate.core.hub import Hub
from statusgate.core.names import InvalidNameError
from statusgate.providers.base import InvalidPayloadError, UnknownShapeError, WebhookAdapter
from statusgate.providers.registry import Registry
from statusgate.providers.spec import ProviderSpec, WebhookContext
from statusgate.store.base import (
    IngestRequest,
    IngestResult,
    PollIngest,
    ReplayIngest,
    Store,
    WebhookIngest,
)
from statusgate.telemetry import tracing
from statusgate.telemetry.metrics import Metrics
from statusgate.v1.status_pb2 import Status

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


# The longest idempotency key kept (providers' ids are UUIDs and the like).
MAX_KEY_LENGTH = 256


def new_delivery_id() -> str:
    """Time-ordered (microseconds) then random: sorts by arrival, never collides."""
    return f"{time.time_ns() // 1000:014x}{secrets.token_hex(6)}"


@dataclass(frozen=True, slots=True)
class Normalized:
    """What today's adapter makes of a body: the verdict, the canonical updates (in
    apply order) and, when it did not map, why (``code``: the provider's own name for
    it, see ``InvalidPayloadError.code``). ``payload`` is the decoded body when it is a
    JSON object."""

    verdict: DeliveryVerdict
    updates: list[Status] = field(default_factory=list)
    detail: str = ""
    code: str = ""
    payload: dict[str, Any] | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class Ingested:
    """A body run through the write path: how it was judged and what it changed.

    A webhook that repeats an idempotency key names the delivery that claimed the key
    first: ``duplicate_of`` when it has the same content (nothing was applied again),
    ``conflicts_with`` when it has other content (kept as rejected; answered 409)."""

    normalized: Normalized
    result: IngestResult
    duplicate_of: str = ""
    conflicts_with: str = ""


# JSON nested deeper than this is rejected before it is parsed (``max_json_depth``).
DEFAULT_MAX_JSON_DEPTH = 64
# JSON strings, so that brackets inside them are not counted as nesting.
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKETS = re.compile(r"[^\[\]{}]+")


def nesting_depth_exceeds(text: str, limit: int) -> bool:
    """Whether the JSON ``text`` nests arrays and objects deeper than ``limit``. Runs
    in time linear in the number of brackets and stops at the first one too deep, so
    100,000 ``[`` cost microseconds instead of a RecursionError in the parser."""
    brackets = _NOT_BRACKETS.sub("", _JSON_STRING.sub("", text))
    depth = 0
    for bracket in brackets:
        if bracket in "[{":
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


def decode_json(body: bytes, max_depth: int) -> Any:
    """The JSON value of a body (UTF-8, -16 or -32, as ``json.loads`` accepts).
    Raises ValueError with the precise problem."""
    if body.count(b"[") + body.count(b"{") <= max_depth:
        # Too few brackets to nest too deep: orjson, at a fraction of the cost. What it
        # accepts the json module reads the same; where it is stricter (UTF-16, NaN,
        # integers beyond 64 bits, lone surrogates) the json module has the last word
        # below, so a body is judged and described exactly as before.
        with contextlib.suppress(orjson.JSONDecodeError):
            return orjson.loads(body)
    try:
        text = body.decode(json.detect_encoding(body))
    except UnicodeDecodeError as error:
        raise ValueError(f"the body is not JSON: {error}") from None
    if nesting_depth_exceeds(text, max_depth):
        raise ValueError(f"the body nests JSON deeper than {max_depth} levels")
    try:
        return json.loads(text)
    except RecursionError:  # not reached below the depth limit; kept as a backstop
        raise ValueError(f"the body nests JSON deeper than {max_depth} levels") from None
    except ValueError as error:
        raise ValueError(f"the body is not JSON: {error}") from None


def normalize_body(
    adapter: WebhookAdapter,
    source: SourceConfig,
    body: bytes,
    *,
    path: str = "",
    max_depth: int = DEFAULT_MAX_JSON_DEPTH,
) -> Normalized:
    """A raw webhook body posted to ``path``, judged by the source's adapter. Shared by
    the front door and replay, so a replayed delivery is judged exactly as a new one
    would be today."""
    try:
        payload: Any = decode_json(body, max_depth)
    except ValueError as error:
        return Normalized(DeliveryVerdict.REJECTED, detail=str(error))
    if not isinstance(payload, dict):
        kind = type(payload).__name__
        return Normalized(
            DeliveryVerdict.REJECTED, detail=f"the body is JSON but not an object ({kind})"
        )
    try:
        updates = adapter.normalize(source, payload, path=path)
    except UnknownShapeError as error:
        return Normalized(DeliveryVerdict.UNMAPPED, detail=str(error), payload=payload)
    except InvalidPayloadError as error:
        return Normalized(
            DeliveryVerdict.REJECTED, detail=str(error), code=error.code, payload=payload
        )
    except InvalidNameError as error:
        return Normalized(DeliveryVerdict.REJECTED, detail=str(error), payload=payload)
    except Exception:
        # An adapter bug must not lose the delivery: keep it unmapped, so a replay after
        # the fix recovers it, and make noise.
        log.exception("adapter %s failed on a delivery for %s", source.provider, source.id)
        return Normalized(
            DeliveryVerdict.UNMAPPED,
            detail="internal mapping error; kept for replay",
            payload=payload,
        )
    return Normalized(DeliveryVerdict.MAPPED, updates, payload=payload)


class Ingest:
    def __init__(
        self,
        store: Store,
        hub: Hub,
        registry: Registry,
        *,
        max_json_depth: int = DEFAULT_MAX_JSON_DEPTH,
        metrics: Metrics | None = None,
    ) -> None:
        self._metrics = metrics
        self.store = store
        self.hub = hub
        self._registry = registry
        self._max_json_depth = max_json_depth
        self._claims = _Claims()

    def normalize(self, source: SourceConfig, body: bytes, *, path: str = "") -> Normalized:
        with tracing.span(
            "statusgate.normalize",
            {"statusgate.source": source.id, "statusgate.provider": source.provider},
        ):
            normalized = normalize_body(
                self._registry.for_source(source).adapter,
                source,
                body,
                path=path,
                max_depth=self._max_json_depth,
            )
            tracing.set_attributes(
                {
                    "statusgate.verdict": normalized.verdict.value,
                    "statusgate.updates": len(normalized.updates),
                }
            )
            return normalized

    async def webhook(
        self,
        source: SourceConfig,
        body: bytes,
        headers: Mapping[str, str],
        *,
        delivery_id: str,
        received_at: datetime,
        unusable: str | None = None,
        path: str = "",
    ) -> Ingested:
        """Keep the delivery and apply what it maps to, in one transaction; returns
        once both are durable. ``unusable`` says why the front door could not use the
        body at all (an invalid Content-Encoding): it is kept as rejected without being
        looked at. ``path`` is the sub-path it was posted to, kept with the delivery so a
        replay runs the adapter exactly as this request did. Raises
        StoreUnavailableError."""
        spec = self._registry.for_source(source)
        if unusable is not None:
            normalized = Normalized(DeliveryVerdict.REJECTED, detail=unusable)
        else:
            normalized = self.normalize(source, body, path=path)
        key = _idempotency_key(spec, normalized)
        duplicate_of = conflicts_with = ""
        # Two copies of one delivery arriving together are judged one after the other,
        # so the second sees the first. (Across processes sharing a store, copies racing
        # within one commit are both kept and applied; applying is idempotent.)
        async with self._claims.hold(source.id, key):
            if key is not None and normalized.verdict is not DeliveryVerdict.REJECTED:
                earlier = await self.store.find_delivery(source.id, key)
                if earlier is not None and _same_content(earlier.body, normalized.payload):
                    duplicate_of = earlier.id
                    normalized = Normalized(
                        normalized.verdict,
                        detail=f"a copy of delivery {earlier.id} (same idempotency key "
                        "and content); not applied again",
                        payload=normalized.payload,
                    )
                elif earlier is not None:
                    conflicts_with = earlier.id
                    normalized = Normalized(
                        DeliveryVerdict.REJECTED,
                        detail=f"idempotency key {key!r} was first used by delivery "
                        f"{earlier.id}, with other content",
                        payload=normalized.payload,
                    )
            if not (duplicate_of or conflicts_with):
                normalized = _screened(spec, source, normalized, path, headers, received_at)
            delivery = Delivery(
                id=delivery_id,
                source=source.id,
                received_at=received_at,
                body=body,
                headers={k: headers[k] for k in KEPT_HEADERS if k in headers},
                verdict=normalized.verdict,
                detail=normalized.detail,
                idempotency_key=key,
                path=path,
            )
            result = await self._commit(
                WebhookIngest(delivery, normalized.updates, tracing.trace_parent())
            )
        return Ingested(normalized, result, duplicate_of, conflicts_with)

    async def poll(
        self, updates: Sequence[Status], *, received_at: datetime, by_reconciler: bool = False
    ) -> IngestResult:
        """Apply what a poll of a provider's API learned: every endpoint's answer about a
        subject merged first (``core.apply.merge``), so one poll is at most one change,
        one event, per subject."""
        return await self._commit(
            PollIngest(merge(updates), received_at, by_reconciler, tracing.trace_parent())
        )

    async def replay(self, source: SourceConfig, delivery: Delivery) -> Ingested:
        """Run one stored delivery through today's adapter (see ``replay_all``)."""
        [outcome] = await self.replay_all([(source, delivery)])
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    async def replay_all(
        self, items: Sequence[tuple[SourceConfig, Delivery]], *, dry_run: bool = False
    ) -> list[Ingested | Exception]:
        """Run stored deliveries, in order, through today's adapters, exactly as they
        were posted (same body, same sub-path). What they map to now is applied with
        origin REPLAY (the ordering rules still hold, so duplicates emit nothing) and
        its events point at the delivery, which takes today's verdict and detail. A
        delivery whose verdict and detail stay as they were and that maps to nothing is
        not written at all.

        They are submitted together, so they share group commits. With ``dry_run``
        nothing is written: the store stages them as that batch would be staged and
        the results say what would change. One outcome per item; an exception (the
        store failed, the delivery was pruned meanwhile) fails that item alone."""
        judged = [(self.normalize(s, d.body, path=d.path), d) for s, d in items]
        parent = tracing.trace_parent()
        requests = {
            index: ReplayIngest(
                d.id, n.updates, verdict=n.verdict, detail=n.detail, trace_parent=parent
            )
            for index, (n, d) in enumerate(judged)
            if n.updates or (n.verdict, n.detail) != (d.verdict, d.detail)
        }
        outcomes: list[IngestResult | BaseException]
        if dry_run:
            outcomes = list(await self.store.preview(list(requests.values())))
        else:
            outcomes = await asyncio.gather(
                *(self._commit(request) for request in requests.values()), return_exceptions=True
            )
        by_index = dict(zip(requests, outcomes, strict=True))
        results: list[Ingested | Exception] = []
        for index, (normalized, delivery) in enumerate(judged):
            outcome = by_index.get(index, IngestResult(delivery_id=delivery.id))
            if isinstance(outcome, Exception):
                results.append(outcome)
            elif isinstance(outcome, BaseException):
                raise outcome  # cancellation
            else:
                results.append(Ingested(normalized, outcome))
        return results

    async def _commit(self, request: IngestRequest) -> IngestResult:
        result = await self.store.ingest(request)
        self.hub.offer(result.events)
        # Every write comes through here, so every origin is counted alike.
        if result.events and self._metrics is not None:
            self._metrics.record_events(request.origin, result.events)
        return result


def _idempotency_key(spec: ProviderSpec, normalized: Normalized) -> str | None:
    """The delivery's key, when its provider names one that can be an index key (short
    printable ASCII: a provider's ids are; a hostile value is simply not one)."""
    if spec.idempotency_key is None or normalized.payload is None:
        return None
    key = spec.idempotency_key(normalized.payload)
    if not key or len(key) > MAX_KEY_LENGTH or not (key.isascii() and key.isprintable()):
        return None
    return key


def _same_content(stored: bytes, payload: dict[str, Any] | None) -> bool:
    """Whether a stored body says what ``payload`` says: equal JSON, whatever the
    spacing or key order. A body pruned by retention cannot tell: taken as the same."""
    if not stored:
        return True
    try:
        return bool(json.loads(stored) == payload)
    except (ValueError, UnicodeDecodeError):
        return False


def _screened(
    spec: ProviderSpec,
    source: SourceConfig,
    normalized: Normalized,
    path: str,
    headers: Mapping[str, str],
    received_at: datetime,
) -> Normalized:
    """``normalized``, or rejected when the provider's screen refuses the webhook."""
    if spec.screen is None or normalized.payload is None:
        return normalized
    if normalized.verdict is not DeliveryVerdict.MAPPED:
        return normalized
    refusal = spec.screen(source, normalized.payload, WebhookContext(path, headers, received_at))
    if refusal is None:
        return normalized
    return Normalized(
        DeliveryVerdict.REJECTED,
        detail=refusal.message,
        code=refusal.code,
        payload=normalized.payload,
    )


class _Claims:
    """One ingest at a time per (source, idempotency key) in this process."""

    def __init__(self) -> None:
        self._held: dict[tuple[str, str], tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, source: str, key: str | None) -> AsyncIterator[None]:
        if key is None:
            yield
            return
        claim = (source, key)
        lock, users = self._held.get(claim, (asyncio.Lock(), 0))
        self._held[claim] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._held[claim]
            if users == 1:
                del self._held[claim]
            else:
                self._held[claim] = (lock, users - 1)
