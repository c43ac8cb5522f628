"""The poller: a name in, the provider asked, the answers through the one write path.

PollStatuses, WaitStatus and the reconciler all poll through here. For each name: the
source's ``Poller`` says which subject's endpoints describe it (an account is
described by its session), concurrent polls of that subject share one run (single
flight), the answers go through ``Ingest.poll`` with origin POLL or RECONCILE (so
ordering, dedupe, events and Watch streams are exactly those of webhooks), and the
result is the store's status of the name afterwards. Failures are per name.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from statusgate.core.errors import ApiError, Reason
from statusgate.core.names import InvalidNameError, ResourceName, parse_name
from statusgate.ingest import Ingest
from statusgate.providers.polling import Poller, PollReport, breaker_open, not_configured
from statusgate.store.base import Store, StoreUnavailableError
from statusgate.telemetry import tracing
from statusgate.upstream.breaker import BreakerSnapshot
from statusgate.upstream.http import DEADLINE_MARGIN, CallScope, deadline_exceeded
from statusgate.upstream.single_flight import SingleFlight
from statusgate.v1.status_pb2 import Origin, Status

log = logging.getLogger(__name__)

# How long a poll may take when its caller set no deadline (the reconciler, a client
# without one).
DEFAULT_BUDGET = 30.0
# Last-poll times kept in memory for max_staleness; the oldest are forgotten first.
MAX_REMEMBERED = 100_000


# (source, origin, error reason or None) of every poll, for metrics.
PollObserver = Callable[[str, Origin.ValueType, Reason | None], None]


@dataclass(frozen=True, slots=True)
class PollResult:
    name: str
    # The stored status after the poll (unchanged when the answer said nothing new).
    status: Status | None = None
    error: ApiError | None = None
    # Provider calls this result cost: 0 when served from a recent poll or when it
    # joined a poll another caller had started.
    upstream_calls: int = 0
    # Whether the poll's answers changed this subject.
    changed: bool = False


@dataclass(frozen=True, slots=True)
class _Flight:
    error: ApiError | None
    calls: int
    # Names whose status the poll changed.
    changed: frozenset[str]
    # Statuses after the poll, by name: those it changed, and the polled subject's.
    statuses: dict[str, Status]


class PollService:
    def __init__(
        self,
        store: Store,
        ingest: Ingest,
        pollers: Mapping[str, Poller],
        *,
        default_budget: float = DEFAULT_BUDGET,
        observe: PollObserver | None = None,
    ) -> None:
        self._observe = observe
        self._store = store
        self._ingest = ingest
        self._pollers = dict(pollers)
        self._budget = default_budget
        self._flights: SingleFlight[str, _Flight] = SingleFlight()
        # Subject name -> time.monotonic() of its last successful poll, in this process.
        self._polled_at: OrderedDict[str, float] = OrderedDict()

    # --- what can be polled ------------------------------------------------------------

    def missing_settings(self, source: str) -> list[str]:
        poller = self._pollers.get(source)
        return ["(source not configured)"] if poller is None else poller.missing_settings()

    def breaker(self, source: str) -> BreakerSnapshot | None:
        """The state of ``source``'s circuit breaker; None when it polls nothing (no
        API configured, or an unknown source)."""
        poller = self._pollers.get(source)
        breaker = poller.breaker if poller is not None else None
        return breaker.snapshot() if breaker is not None else None

    def breaker_open(self, source: str) -> bool:
        poller = self._pollers.get(source)
        return poller is not None and breaker_open(poller)

    def target(self, name: str) -> str | None:
        """The subject whose endpoints a poll of ``name`` calls; None when ``name``
        cannot be polled (malformed, unknown source, no credentials, no endpoint)."""
        try:
            parsed = parse_name(name)
            poller = self._pollers[parsed.source]
            if poller.missing_settings():
                return None
            return str(poller.target(parsed))
        except (InvalidNameError, KeyError, ApiError):
            return None

    def waiters(self, name: str) -> int:
        """Callers waiting on the poll in flight for ``name``'s subject (tests, bench)."""
        target = self.target(name)
        return 0 if target is None else self._flights.waiters(target)

    # --- polling -----------------------------------------------------------------------

    async def poll_many(
        self,
        names: Sequence[str],
        *,
        within: float | None,
        max_staleness: float = 0.0,
        origin: Origin.ValueType = Origin.ORIGIN_POLL,
    ) -> list[PollResult]:
        return list(
            await asyncio.gather(
                *(
                    self.poll(name, within=within, max_staleness=max_staleness, origin=origin)
                    for name in names
                )
            )
        )

    async def poll(
        self,
        name: str,
        *,
        within: float | None,
        max_staleness: float = 0.0,
        origin: Origin.ValueType = Origin.ORIGIN_POLL,
    ) -> PollResult:
        """Poll one name (see ``_poll``), and tell the observer how it went."""
        outcome = await self._poll(name, within=within, max_staleness=max_staleness, origin=origin)
        if self._observe is not None:
            source = name.split("/")[1] if name.startswith("sources/") else ""
            reason = outcome.error.reason if outcome.error is not None else None
            self._observe(source, origin, reason)
        return outcome

    async def _poll(
        self,
        name: str,
        *,
        within: float | None,
        max_staleness: float = 0.0,
        origin: Origin.ValueType = Origin.ORIGIN_POLL,
    ) -> PollResult:
        """Poll one name. ``within`` is the caller's remaining time in seconds (None:
        the default budget); ``max_staleness`` > 0 serves the stored status without
        calling when the subject was polled or changed no longer ago than that."""
        budget = self._budget if within is None else within - DEADLINE_MARGIN
        deadline = time.monotonic() + budget
        try:
            parsed = parse_name(name)
        except InvalidNameError as invalid:
            return PollResult(
                name,
                error=ApiError(Reason.INVALID_NAME, str(invalid)),
            )
        poller = self._pollers.get(parsed.source)
        if poller is None:
            return PollResult(
                name,
                error=ApiError(
                    Reason.SOURCE_NOT_FOUND,
                    f"source {parsed.source!r} is not configured",
                ),
            )
        try:
            missing = poller.missing_settings()
            if missing:
                raise not_configured(parsed.source, missing)
            target = poller.target(parsed)
        except ApiError as refused:
            return PollResult(name, await self._stored(name), refused)
        key = str(target)
        # A caller that finds a poll in flight joins it at once: after a store read it
        # might find it over and start a second one. Otherwise the store may answer: a
        # terminal subject never changes again, so asking its provider is wasted (and a
        # recent one is what max_staleness accepts).
        if max_staleness > 0 or not self._flights.in_flight(key):
            stored = await self._stored(name)
            if stored is not None and (stored.terminal or self._recent(key, stored, max_staleness)):
                return PollResult(name, stored)

        task, started = self._flights.join(
            key, lambda: self._run(poller, target, CallScope(deadline), origin)
        )
        try:
            flight = await self._flights.wait(task, key, max(0.0, deadline - time.monotonic()))
        except TimeoutError:
            # The run goes on for whoever else waits on it; this caller is out of time.
            return PollResult(name, await self._stored(name), deadline_exceeded(f"polling {key}"))
        error = flight.error
        status = flight.statuses.get(name)
        if status is None:
            try:
                status = await self._store.get_status(name)
            except StoreUnavailableError:
                error = error or _store_unavailable()
        if status is None and error is None:
            error = ApiError(
                Reason.NOT_IN_ANSWER,
                f"the provider's answer about {key} does not mention {name}",
            )
        return PollResult(
            name,
            status,
            error,
            upstream_calls=flight.calls if started else 0,
            changed=name in flight.changed,
        )

    async def _run(
        self,
        poller: Poller,
        target: ResourceName,
        scope: CallScope,
        origin: Origin.ValueType,
    ) -> _Flight:
        """One poll of a subject's endpoints (the callers sharing it wait on this), in a
        span of its own: its upstream calls are its children, its commit links to it."""
        with tracing.span(
            "statusgate.poll",
            {"statusgate.source": target.source, "statusgate.origin": Origin.Name(origin)},
        ):
            flight = await self._run_traced(poller, target, scope, origin)
            tracing.set_attributes({"statusgate.upstream_calls": flight.calls})
            if flight.error is not None:
                tracing.fail(str(flight.error.reason))
            return flight

    async def _run_traced(
        self,
        poller: Poller,
        target: ResourceName,
        scope: CallScope,
        origin: Origin.ValueType,
    ) -> _Flight:
        key = str(target)
        try:
            current = await self._store.get_status(key)
            answer = await poller.poll(target, current, scope)
        except ApiError as error:
            answer = PollReport(error=error)
        except StoreUnavailableError:
            answer = PollReport(error=_store_unavailable())
        except Exception:
            log.exception("polling %s failed", key)
            answer = PollReport(error=_internal(key))
        statuses: dict[str, Status] = {}
        if answer.updates:
            try:
                result = await self._ingest.poll(
                    answer.updates,
                    received_at=datetime.now(UTC),
                    by_reconciler=origin == Origin.ORIGIN_RECONCILE,
                )
                statuses = {event.status.name: event.status for event in result.events}
            except StoreUnavailableError:
                answer.error = _store_unavailable()
            except Exception:
                log.exception("applying the poll of %s failed", key)
                answer.error = _internal(key)
        changed = frozenset(statuses)
        if key not in statuses:
            # Read once here rather than once per caller waiting on this poll.
            with contextlib.suppress(StoreUnavailableError):
                if (status := await self._store.get_status(key)) is not None:
                    statuses[key] = status
        if answer.error is None:
            self._remember(key)
        return _Flight(answer.error, scope.calls, changed, statuses)

    async def _stored(self, name: str) -> Status | None:
        """The stored status to go with an error, if the store can tell."""
        try:
            return await self._store.get_status(name)
        except StoreUnavailableError:
            return None

    def _recent(self, key: str, current: Status, max_staleness: float) -> bool:
        """Whether the subject was polled (in this process) or changed no longer ago
        than ``max_staleness`` seconds (0: never recent enough)."""
        if max_staleness <= 0:
            return False
        polled_at = self._polled_at.get(key)
        if polled_at is not None and time.monotonic() - polled_at <= max_staleness:
            return True
        age = unchanged_for(current)
        return age is not None and age <= max_staleness

    def _remember(self, key: str) -> None:
        self._polled_at.pop(key, None)
        self._polled_at[key] = time.monotonic()
        while len(self._polled_at) > MAX_REMEMBERED:
            self._polled_at.popitem(last=False)

    async def close(self) -> None:
        await self._flights.close()
        await asyncio.gather(*(poller.close() for poller in self._pollers.values()))


def unchanged_for(status: Status) -> float | None:
    """Seconds since the status last changed (None when the store did not say)."""
    if not status.HasField("updated_at"):
        return None
    return (datetime.now(UTC) - status.updated_at.ToDatetime(UTC)).total_seconds()


def _store_unavailable() -> ApiError:
    return ApiError(Reason.STORE_UNAVAILABLE, "the store is unavailable")


def _internal(key: str) -> ApiError:
    return ApiError(
        Reason.POLL_FAILED,
        f"polling {key} failed unexpectedly (see the gateway's log)",
    )
