"""What a provider offers for polling: "ask the provider about this name".

A ``Poller`` belongs to one source. It knows which subject's endpoints describe
a name (an account is described by its session's answers), calls them concurrently
through the source's API client, and maps the answers with the very functions the
webhook adapter uses, so a poll and a webhook that say the same thing make the same
update. It never writes: the poller (``statusgate.poll.service``) ingests what it returns.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import ClassVar, Protocol, TypeVar

from statusgate.core.errors import ApiError, Reason
from statusgate.core.names import InvalidNameError, ResourceName
from statusgate.providers.base import InvalidPayloadError, UnknownShapeError
from statusgate.upstream.breaker import BreakerState, CircuitBreaker
from statusgate.upstream.http import CallScope, HttpClient, UpstreamObserver
from statusgate.v1.status_pb2 import Status

T = TypeVar("T")


@dataclass(slots=True)
class PollReport:
    """What the provider said about a subject (and its children), in apply order, and
    the error of the endpoints that failed. Both may be set: what the endpoints that
    answered said is applied, and the failure is reported all the same."""

    updates: list[Status] = field(default_factory=list)
    error: ApiError | None = None

    def fail(self, error: ApiError) -> None:
        # The first failure is reported; the endpoints are listed most important first.
        if self.error is None:
            self.error = error


class Poller(Protocol):
    source: str

    @property
    def breaker(self) -> CircuitBreaker | None:
        """The source's circuit breaker (None when nothing is ever called)."""

    def missing_settings(self) -> list[str]:
        """API settings (under ``sources.<id>.api``) that must be set before polling;
        empty when the source can poll."""

    def target(self, name: ResourceName) -> ResourceName:
        """The subject whose endpoints describe ``name``. Raises ApiError
        (UNIMPLEMENTED) for subjects the provider has no status endpoint for."""

    async def poll(
        self, target: ResourceName, current: Status | None, scope: CallScope
    ) -> PollReport:
        """Ask the provider about ``target`` (``current`` is its stored status, if any).
        Raises ApiError when nothing could be learnt."""

    async def close(self) -> None: ...


class _HasHttp(Protocol):
    http: HttpClient


class HttpPoller:
    """What the pollers over a provider API client share: the client's circuit breaker,
    a name resolved to the top-level subject whose endpoints describe it, and closing
    the client's HTTP session."""

    provider_label: ClassVar[str]
    # Top-level collections the provider has status endpoints for.
    pollable: ClassVar[tuple[str, ...]]

    def __init__(self, source: str, client: _HasHttp) -> None:
        self.source = source
        self.client = client

    @property
    def breaker(self) -> CircuitBreaker:
        return self.client.http.breaker

    def missing_settings(self) -> list[str]:
        return []  # a client exists only once its settings are complete

    def target(self, name: ResourceName) -> ResourceName:
        collection, id_ = name.path[0]
        if collection not in self.pollable:
            described = " and ".join(c.replace("-", " ") for c in self.pollable)
            raise not_supported(f"{name}: {self.provider_label} has {described}, not {collection}")
        return ResourceName(name.source, ((collection, id_),))

    async def close(self) -> None:
        await self.client.http.close()


def observe_upstream(poller: Poller, observer: UpstreamObserver) -> None:
    """Report the requests of ``poller``'s HTTP client, and its breaker, to
    ``observer`` (a poller without one calls nothing)."""
    if isinstance(poller, HttpPoller):
        poller.client.http.observer = observer


def breaker_open(poller: Poller) -> bool:
    breaker = poller.breaker
    return breaker is not None and breaker.state == BreakerState.OPEN


class UnconfiguredPoller:
    """A source whose API settings are incomplete: every poll names what is missing."""

    breaker = None

    def __init__(self, source: str, missing: list[str]) -> None:
        self.source = source
        self._missing = missing

    def missing_settings(self) -> list[str]:
        return list(self._missing)

    def target(self, name: ResourceName) -> ResourceName:
        return name

    async def poll(
        self, target: ResourceName, current: Status | None, scope: CallScope
    ) -> PollReport:
        raise not_configured(self.source, self._missing)

    async def close(self) -> None:
        return None


async def attempt(call: Awaitable[T]) -> tuple[T | None, ApiError | None]:
    """(result, None) or (None, error): lets concurrent endpoint calls fail one by one."""
    try:
        return await call, None
    except ApiError as error:
        return None, error


def add_mapped(answer: PollReport, label: str, mapping: Callable[[], list[Status]]) -> bool:
    """Run the mapping of one endpoint's answer: its updates join ``answer``; an answer
    the mapping refuses becomes the answer's error (the other endpoints still count)."""
    try:
        answer.updates.extend(mapping())
    except (InvalidPayloadError, UnknownShapeError, InvalidNameError) as error:
        answer.fail(answer_invalid(label, str(error)))
        return False
    return True


def not_configured(source: str, missing: list[str]) -> ApiError:
    settings = ", ".join(f"sources.{source}.api.{name}" for name in missing)
    return ApiError(
        Reason.POLLING_NOT_CONFIGURED, f"source {source!r} cannot poll its provider: set {settings}"
    )


def not_supported(message: str) -> ApiError:
    return ApiError(Reason.POLLING_NOT_SUPPORTED, message)


def answer_invalid(label: str, problem: str) -> ApiError:
    # The provider answered, in JSON, something our mapping refuses: a gap on our side
    # (or a provider change), which retrying will not fix.
    return ApiError(
        Reason.UPSTREAM_ANSWER_INVALID, f"{label}: the answer could not be mapped: {problem}"
    )
