"""Prometheus metrics, one registry per gateway (tests run several in one process), and
the counts of the last hour that the operator console shows (``core.recent``).

One label vocabulary (docs/observability.md): ``source`` and ``provider`` come from the
configuration, every other label from a fixed set here, so no label value ever comes
from a client. The children of each configured source are made up front
(``SourceMetrics``), so the hot paths (a webhook, an upstream request) look a child up
in a dict by a string they already hold instead of building label tuples.

The workers of a supervised gateway each count in files of the supervisor's metrics
directory (prometheus-client's multiprocess mode, switched on by the environment the
supervisor gives them); any worker's ``/metrics`` then answers with the sums over all of
them, the workers that died and were replaced included, so counters never go back.
Gauges say in their ``multiprocess_mode`` how the workers' values combine; the process
and GC metrics, which prometheus-client leaves out in that mode, come from
``telemetry.process``. The counts of the last hour are each worker's own.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.gc_collector import GCCollector
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from statusgate.core.errors import GRPC_CODES, Reason
from statusgate.core.recent import RecentCounts
from statusgate.telemetry.process import GcCounters, ProcessTreeCollector
from statusgate.v1.status_pb2 import Origin, State, StatusEvent

# Every verdict of statusgate_webhooks_total.
VERDICTS = (
    "mapped",
    "duplicate",
    "unmapped",
    "rejected",
    "conflict",
    "unauthenticated",
    "rate_limited",
    "too_large",
    "unsupported_encoding",
    "body_timeout",
    "bad_body",
    "disconnected",
    "unavailable",
)
ORIGINS: dict[int, str] = {
    Origin.ORIGIN_WEBHOOK: "webhook",
    Origin.ORIGIN_POLL: "poll",
    Origin.ORIGIN_RECONCILE: "reconcile",
    Origin.ORIGIN_REPLAY: "replay",
}
# What statusgate_upstream_requests_total counts an HTTP request (or a refusal) as.
UPSTREAM_CODES = (
    "2xx",
    "3xx",
    "4xx",
    "5xx",
    "429",
    "timeout",
    "connection_error",
    "invalid_response",
    "breaker_open",
)
# upstream.breaker.BreakerState values -> statusgate_breaker_state.
BREAKER_VALUES = {"closed": 0.0, "half-open": 1.0, "open": 2.0}
# Canonical states, lower-case without their prefix (statusgate_subjects).
STATES: dict[int, str] = {
    value: name.removeprefix("STATE_").lower()
    for name, value in State.items()
    if value != State.STATE_UNSPECIFIED
}
# A poll's code: OK, or the gRPC code name of its per-name error.
POLL_CODES = ("OK", *sorted(set(GRPC_CODES.values())))

ACK_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
COMMIT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
# Unary calls take milliseconds; Watch streams last minutes to days.
GRPC_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600)
UPSTREAM_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class Metrics:
    """Every metric of one gateway. ``sources``: configured source id -> its provider
    kind. ``multiprocess_dir``: the supervisor's metrics directory, for a worker."""

    def __init__(
        self, sources: Mapping[str, str] | None = None, multiprocess_dir: Path | None = None
    ) -> None:
        self._multiprocess_dir = multiprocess_dir
        self.registry = CollectorRegistry()
        registry = self.registry
        self.webhooks = Counter(
            "statusgate_webhooks",
            "Webhooks answered for a configured source, by verdict.",
            ["source", "provider", "verdict"],
            registry=registry,
        )
        self.ack_seconds = Histogram(
            "statusgate_webhook_ack_seconds",
            "Time from a webhook's arrival to its durable acknowledgement.",
            ["source", "provider"],
            buckets=ACK_BUCKETS,
            registry=registry,
        )
        self.events = Counter(
            "statusgate_events",
            "Status events applied (committed), by origin.",
            ["source", "provider", "origin"],
            registry=registry,
        )
        self.commit_batch_size = Histogram(
            "statusgate_commit_batch_size",
            "Deliveries and polls committed in one group commit.",
            buckets=BATCH_BUCKETS,
            registry=registry,
        )
        self.commit_seconds = Histogram(
            "statusgate_commit_seconds",
            "Latency of one group commit, from its start until it is durable.",
            buckets=COMMIT_BUCKETS,
            registry=registry,
        )
        self.commit_failures = Counter(
            "statusgate_commit_failures",
            "Group commits that failed (store unavailable, disk full...).",
            registry=registry,
        )
        # A worker's own store connection: 0 as soon as one worker's cannot commit.
        self.store_up = Gauge(
            "statusgate_store_up",
            "1 when the store answers (readiness), 0 when not.",
            registry=registry,
            multiprocess_mode="livemin",
        )
        self.head_sequence = Gauge(
            "statusgate_store_head_sequence",
            "The newest committed event sequence.",
            registry=registry,
            multiprocess_mode="livemostrecent",
        )
        self.grpc_calls = Counter(
            "statusgate_grpc_calls",
            "Finished gRPC server calls, by method and status code.",
            ["method", "code"],
            registry=registry,
        )
        self.grpc_seconds = Histogram(
            "statusgate_grpc_call_seconds",
            "Duration of gRPC calls: unary calls, and streams from start to end.",
            ["method"],
            buckets=GRPC_BUCKETS,
            registry=registry,
        )
        self.watch_streams = Gauge(
            "statusgate_watch_streams",
            "Open WatchStatuses streams (gRPC and Server-Sent Events).",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.watch_lag = Gauge(
            "statusgate_watch_lag_events",
            "The most committed events any open Watch stream has not been sent yet.",
            registry=registry,
            multiprocess_mode="livemax",
        )
        self.polls = Counter(
            "statusgate_polls",
            "Polls of one name (origin poll: PollStatuses and WaitStatus; reconcile: the "
            "reconciler), by OK or the gRPC code of the name's error.",
            ["source", "provider", "origin", "code"],
            registry=registry,
        )
        self.upstream_requests = Counter(
            "statusgate_upstream_requests",
            "HTTP requests to a provider's status API, retries included, by status class "
            "or failure; breaker_open: refused by the circuit breaker, not sent.",
            ["source", "provider", "code"],
            registry=registry,
        )
        self.upstream_seconds = Histogram(
            "statusgate_upstream_request_seconds",
            "Duration of each HTTP request sent to a provider's status API.",
            ["source", "provider"],
            buckets=UPSTREAM_BUCKETS,
            registry=registry,
        )
        # Each worker has its own breakers: the worst of them.
        self.breaker_state = Gauge(
            "statusgate_breaker_state",
            "The source's circuit breaker: 0 closed, 1 half-open, 2 open.",
            ["source", "provider"],
            registry=registry,
            multiprocess_mode="livemax",
        )
        self.reconciler_backlog = Gauge(
            "statusgate_reconciler_backlog",
            "Subjects whose reconciliation poll is due now.",
            registry=registry,
            multiprocess_mode="livemostrecent",
        )
        self.reconciler_lag = Gauge(
            "statusgate_reconciler_lag_seconds",
            "How late the most overdue reconciliation poll is (0 when none is due).",
            registry=registry,
            multiprocess_mode="livemostrecent",
        )
        self.subjects = Gauge(
            "statusgate_subjects",
            "Tracked subjects by canonical state.",
            ["source", "provider", "state"],
            registry=registry,
            multiprocess_mode="livemostrecent",
        )
        self.oldest_open_age = Gauge(
            "statusgate_oldest_open_subject_age_seconds",
            "Age (since first seen) of the source's non-terminal subject that changed "
            "longest ago; 0 when none.",
            ["source", "provider"],
            registry=registry,
            multiprocess_mode="livemostrecent",
        )
        # (metric, label values) -> its child: labels() validates and locks on every
        # call, which shows on hot paths.
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}
        self.sources = {
            sid: SourceMetrics(self, sid, kind) for sid, kind in (sources or {}).items()
        }
        # By source, over the last hour.
        self.recent_auth_failures = RecentCounts()
        self.recent_poll_errors = RecentCounts()
        self.gc = GcCounters(registry) if multiprocess_dir is not None else None
        self._exposed = self._exposition()

    def _exposition(self) -> CollectorRegistry:
        """The registry /metrics renders: this one, or in a worker the sum over every
        worker's files plus the gateway's process tree (this worker's supervisor and
        everything under it) and this interpreter's platform."""
        if self._multiprocess_dir is None:
            ProcessCollector(registry=self.registry)
            GCCollector(registry=self.registry)
            PlatformCollector(registry=self.registry)
            return self.registry
        summed = CollectorRegistry()
        MultiProcessCollector(summed, path=str(self._multiprocess_dir))  # type: ignore[no-untyped-call]
        ProcessTreeCollector(summed)
        PlatformCollector(registry=summed)
        return summed

    def child(self, metric: MetricWrapperBase, *values: str) -> Any:
        """``metric.labels(*values)``, looked up once."""
        key = (id(metric), values)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*values)
        return found

    # --- what the layers below report --------------------------------------------------

    def record_auth_failure(self, source: str) -> None:
        self.recent_auth_failures.add(source)

    def record_poll(self, source: str, origin: int, reason: Reason | None) -> None:
        """One poll of a name; ``reason`` is its error's, None when it succeeded. A name
        of no configured source is not counted (its source came from the caller)."""
        bundle = self.sources.get(source)
        if bundle is None:
            return
        code = "OK" if reason is None else GRPC_CODES[reason]
        self.child(self.polls, source, bundle.provider, ORIGINS[origin], code).inc()
        # A malformed name is the caller's mistake, not a failure of the source.
        if reason is not None and reason is not Reason.INVALID_NAME:
            self.recent_poll_errors.add(source)

    def record_events(self, origin: int, events: Iterable[StatusEvent]) -> None:
        """Events one ingest committed (all of one source: a webhook, a poll of one
        subject, a replay of one delivery)."""
        count = 0
        source = ""
        for event in events:
            if not count:
                source = source_of(event.status.name)
            count += 1
        bundle = self.sources.get(source) if count else None
        if bundle is not None:
            bundle.events[origin].inc(count)

    def committed(self, size: int, seconds: float) -> None:
        """A group commit of ``size`` requests became durable (``store.group_commit``)."""
        self.commit_batch_size.observe(size)
        self.commit_seconds.observe(seconds)
        self.store_up.set(1)

    def commit_failed(self, size: int) -> None:
        self.commit_failures.inc()
        self.store_up.set(0)

    def commit_recovered(self) -> None:
        self.store_up.set(1)

    def render(self) -> bytes:
        if self.gc is not None:
            self.gc.sync()
        return generate_latest(self._exposed)


class SourceMetrics:
    """The children of one configured source, made once. Also what the source's HTTP
    client reports its requests and its breaker to (``upstream.http.UpstreamObserver``)."""

    def __init__(self, metrics: Metrics, source: str, provider: str) -> None:
        self.source = source
        self.provider = provider
        self.webhooks = {v: metrics.webhooks.labels(source, provider, v) for v in VERDICTS}
        self.ack_seconds = metrics.ack_seconds.labels(source, provider)
        self.events = {o: metrics.events.labels(source, provider, n) for o, n in ORIGINS.items()}
        self.upstream = {
            c: metrics.upstream_requests.labels(source, provider, c) for c in UPSTREAM_CODES
        }
        self.upstream_seconds = metrics.upstream_seconds.labels(source, provider)
        self.breaker_state = metrics.breaker_state.labels(source, provider)
        self.subjects = {
            value: metrics.subjects.labels(source, provider, name) for value, name in STATES.items()
        }
        self.oldest_open_age = metrics.oldest_open_age.labels(source, provider)

    def request(self, code: str, seconds: float | None) -> None:
        """One HTTP request to the provider (``seconds`` None: refused unsent)."""
        self.upstream[code].inc()
        if seconds is not None:
            self.upstream_seconds.observe(seconds)

    def breaker(self, state: str) -> None:
        self.breaker_state.set(BREAKER_VALUES[state])


def source_of(name: str) -> str:
    """``sources/{source}/...`` -> source ("" for anything else)."""
    if not name.startswith("sources/"):
        return ""
    end = name.find("/", 8)
    return name[8:end] if end > 0 else name[8:]
