"""The store interface shared by the SQLite and PostgreSQL implementations.

Writes go through one call, ``ingest``: a delivery (if any) and its canonical updates are
applied by the rules of ``core.apply`` and committed in one transaction, batched with
concurrent ingests (group commit) so durability costs one sync per batch. The events it
returns carry gateway-wide sequences that are contiguous and strictly increasing in
commit order, which is what lets Watch streams resume without gaps.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from statusgate.core.deliveries import (
    Delivery,
    DeliveryCursor,
    DeliveryQuery,
    DeliveryVerdict,
    EventRef,
)
from statusgate.core.filters import StatusQuery
from statusgate.v1.status_pb2 import Origin, Status, StatusEvent

__all__ = [
    "CommitObserver",
    "Delivery",
    "DeliveryCursor",
    "DeliveryQuery",
    "DeliveryVerdict",
    "EventRef",
    "IngestRequest",
    "IngestResult",
    "PollBacklog",
    "PollClaim",
    "PollIngest",
    "ReplayIngest",
    "Store",
    "StoreUnavailableError",
    "WebhookIngest",
]


class StoreUnavailableError(Exception):
    """The store cannot take or serve data right now; the caller should retry (503)."""


@dataclass(frozen=True, slots=True)
class WebhookIngest:
    """A webhook as it arrived: its delivery row and what it maps to, in one
    transaction (the delivery is kept even when it maps to nothing)."""

    delivery: Delivery
    updates: Sequence[Status] = ()
    # The W3C traceparent of the request, copied to every event it makes.
    trace_parent: str = ""

    @property
    def origin(self) -> Origin.ValueType:
        return Origin.ORIGIN_WEBHOOK


@dataclass(frozen=True, slots=True)
class PollIngest:
    """What a poll learned from a provider's API; no delivery row."""

    updates: Sequence[Status]
    # When the provider's answer arrived; None: the commit's time.
    received_at: datetime | None = None
    # Polled by the reconciler on its own, rather than for a caller.
    by_reconciler: bool = False
    trace_parent: str = ""

    @property
    def origin(self) -> Origin.ValueType:
        return Origin.ORIGIN_RECONCILE if self.by_reconciler else Origin.ORIGIN_POLL


@dataclass(frozen=True, slots=True)
class ReplayIngest:
    """A stored delivery run again through today's adapters: its events point at it,
    and it takes today's verdict and detail (``Ingest`` only sends a replay that
    changes something). The delivery must be stored; a replay of an unknown one fails
    alone with LookupError."""

    delivery_id: str
    updates: Sequence[Status]
    verdict: DeliveryVerdict = DeliveryVerdict.MAPPED
    detail: str = ""
    trace_parent: str = ""

    @property
    def origin(self) -> Origin.ValueType:
        return Origin.ORIGIN_REPLAY


# What one ingest writes, as one of three shapes: an invalid mix (a poll with a
# delivery, a replay with a new delivery row) cannot be built.
IngestRequest = WebhookIngest | PollIngest | ReplayIngest


@dataclass(frozen=True, slots=True)
class IngestResult:
    delivery_id: str
    # The events the updates produced, in sequence order; empty for duplicates.
    events: list[StatusEvent] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class PollClaim:
    """A quiet, non-terminal subject leased to one reconciler for one poll."""

    name: str
    # Consecutive reconciler polls since the subject last changed (drives the backoff).
    attempts: int
    updated_at: datetime
    last_polled_at: datetime | None


@dataclass(frozen=True, slots=True)
class PollBacklog:
    """The reconciler's work waiting in one source: subjects that ``claim_due_polls``
    would lease now, and since when the longest-waiting of them has been due."""

    due: int
    oldest_due_at: datetime | None


class CommitObserver(Protocol):
    """Told of every group commit (``telemetry.metrics.Metrics`` is one)."""

    def committed(self, size: int, seconds: float) -> None:
        """``size`` requests became durable in one transaction of ``seconds``."""

    def commit_failed(self, size: int) -> None:
        """A batch of ``size`` requests failed to commit."""

    def commit_recovered(self) -> None:
        """After failures, a probe committed: the store can commit again."""


class Store(Protocol):
    async def open(self) -> None:
        """Connect and apply pending migrations."""

    async def close(self) -> None:
        """Finish in-flight commits, then release everything."""

    async def ready(self) -> bool:
        """True when the store can take writes now (readiness probe)."""

    def observe_commits(self, observer: CommitObserver) -> None:
        """Report every group commit (its size and latency) and failure to ``observer``."""

    def add_commit_listener(self, listener: Callable[[int], None]) -> None:
        """Call ``listener(sequence)`` on the event loop whenever *another process*
        committed events up to ``sequence`` (PostgreSQL replicas). Local commits are
        returned by ``ingest`` instead, but may be announced here too (the PostgreSQL
        store does, which also covers events whose ``ingest`` caller was cancelled), so
        a listener must ignore sequences it already has. It may be called with a
        sequence it has seen (after a reconnect, with ``last_sequence()``). A
        single-process store may never call it."""

    async def ingest(self, request: IngestRequest) -> IngestResult:
        """Apply and commit durably; returns only after the commit.

        Raises StoreUnavailableError when it cannot commit.
        """

    async def preview(self, requests: Sequence[IngestRequest]) -> list[IngestResult | Exception]:
        """What ``ingest`` of ``requests``, in order, would do now, without writing:
        each is staged against the committed state and the requests before it, exactly
        as one group-commit batch would be (a dry run). One outcome per request, its
        result or the exception it would fail with alone; the events' sequences are
        the ones they would get if nothing else committed first."""

    async def get_status(self, name: str) -> Status | None: ...

    async def get_statuses(self, names: Sequence[str]) -> dict[str, Status]: ...

    async def list_statuses(
        self, query: StatusQuery, *, after_name: str = "", limit: int = 100
    ) -> list[Status]:
        """Matching statuses ordered by name, strictly after ``after_name``."""

    async def list_events(
        self, name: str, *, after_sequence: int = 0, limit: int = 100
    ) -> list[StatusEvent]:
        """One subject's events, oldest first."""

    async def read_events(self, *, after_sequence: int, limit: int) -> list[StatusEvent]:
        """Every subject's events with sequence > after_sequence, in sequence order and
        with no gaps: an event is returned only once every smaller sequence is readable."""

    async def last_sequence(self) -> int:
        """The greatest committed sequence (0 when there is none)."""

    async def claim_due_polls(
        self,
        source: str,
        *,
        now: datetime,
        quiet_before: datetime,
        changed_after: datetime,
        owner: str,
        lease_until: datetime,
        limit: int,
    ) -> list[PollClaim]:
        """Lease, atomically, up to ``limit`` non-terminal statuses of ``source`` that
        last changed before ``quiet_before`` but after ``changed_after`` (older ones are
        abandoned), whose next poll is due at or before ``now``, and that no other owner
        holds a lease on. Two replicas never claim the same subject at once."""

    async def finish_poll(
        self, name: str, *, owner: str, next_poll_at: datetime, attempts: int
    ) -> None:
        """Record a claimed poll's outcome and release ``owner``'s lease on ``name``."""

    async def poll_backlog(
        self, source: str, *, now: datetime, quiet_before: datetime, changed_after: datetime
    ) -> PollBacklog:
        """What ``claim_due_polls`` with these bounds would find, counted without
        leasing anything. A subject is due from its ``next_poll_at``, or, when it was
        never polled or changed since its last poll, from the moment it became quiet
        (``updated_at + (now - quiet_before)``)."""

    async def oldest_non_terminal(self, source: str) -> Status | None:
        """The non-terminal status of ``source`` that changed longest ago."""

    async def count_subjects(self) -> dict[tuple[str, int], int]:
        """Stored subjects by (source, state), the counts that are not 0."""

    async def count_deliveries(
        self, *, received_after: datetime
    ) -> dict[tuple[str, DeliveryVerdict], int]:
        """Deliveries received at or after ``received_after``, by (source, verdict)."""

    async def prune_deliveries(self, received_before: datetime) -> int:
        """Retention: delete raw deliveries received before the cutoff that no event
        points at, and empty the body and headers of those that one does (the row stays
        so the event's delivery_id still resolves). Statuses and events are never
        pruned. Returns how many deliveries were pruned either way."""

    async def list_deliveries(
        self,
        verdicts: Sequence[DeliveryVerdict],
        *,
        source: str | None = None,
        since: datetime | None = None,
        after_id: str = "",
        limit: int = 100,
    ) -> list[Delivery]:
        """Stored deliveries, oldest first (for replay and inspection)."""

    async def find_delivery(self, source: str, idempotency_key: str) -> Delivery | None:
        """The first delivery of ``source`` stored with ``idempotency_key`` that was
        accepted (mapped or unmapped): the one that claims the key. Rejected deliveries
        keep their key for inspection but claim nothing, so a sender may correct a
        refused delivery and send it again under the same key."""

    async def query_deliveries(
        self,
        query: DeliveryQuery,
        *,
        after: DeliveryCursor | None = None,
        limit: int = 100,
        oldest_first: bool = False,
        bodies: bool = False,
    ) -> list[Delivery]:
        """Matching deliveries with the events they produced, newest first by
        (received_at, id), or oldest first; strictly after ``after`` in that order.
        Without ``bodies`` every body is left empty (lists never need them)."""

    async def get_deliveries(self, ids: Sequence[str]) -> dict[str, Delivery]:
        """The stored deliveries among ``ids``, with bodies and events, by id."""
