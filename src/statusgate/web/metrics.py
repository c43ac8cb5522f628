"""Prometheus metrics, one registry per gateway (tests run several in one process), and
the counts of the last hour that the operator console shows (``core.recent``).

The workers of a supervised gateway each count in files of the supervisor's metrics
directory (prometheus-client's multiprocess mode, switched on by the environment the
supervisor gives them); any worker's ``/metrics`` then answers with the sums over all of
them, the workers that died and were replaced included, so counters never go back. The
counts of the last hour are each worker's own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.multiprocess import MultiProcessCollector

from statusgate.core.recent import RecentCounts


class Metrics:
    def __init__(self, multiprocess_dir: Path | None = None) -> None:
        self._multiprocess_dir = multiprocess_dir
        self.registry = CollectorRegistry()
        self.webhooks = Counter(
            "statusgate_webhooks",
            "Webhook deliveries by source and outcome.",
            ["source", "outcome"],
            registry=self.registry,
        )
        self.auth_failures = Counter(
            "statusgate_webhook_auth_failures",
            "Webhook deliveries refused by the source's authentication.",
            ["source"],
            registry=self.registry,
        )
        self.events = Counter(
            "statusgate_events",
            "Status events applied, by source and origin.",
            ["source", "origin"],
            registry=self.registry,
        )
        self.polls = Counter(
            "statusgate_polls",
            "Polls of a name (PollStatuses, WaitStatus, the reconciler) by outcome: OK or "
            "the error reason.",
            ["source", "origin", "reason"],
            registry=self.registry,
        )
        self.upstream_calls = Counter(
            "statusgate_upstream_calls",
            "Calls to providers' status APIs, retries included.",
            ["source"],
            registry=self.registry,
        )
        self.ack_seconds = Histogram(
            "statusgate_webhook_ack_seconds",
            "Time from a webhook's arrival to its durable acknowledgement.",
            ["source"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=self.registry,
        )
        # (metric, label values) -> its child: labels() validates and locks on every
        # call, which shows on the path of every webhook.
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}
        # By source, over the last hour.
        self.recent_auth_failures = RecentCounts()
        self.recent_poll_errors = RecentCounts()

    def record_auth_failure(self, source: str) -> None:
        self.child(self.auth_failures, source).inc()
        self.recent_auth_failures.add(source)

    def child(self, metric: MetricWrapperBase, *values: str) -> Any:
        """``metric.labels(*values)``, looked up once."""
        key = (id(metric), values)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*values)
        return found

    def record_poll(self, source: str, origin: str, reason: str, upstream_calls: int) -> None:
        self.child(self.polls, source, origin, reason).inc()
        # A name that is malformed or of no configured source is the caller's mistake,
        # not a failure of a source (and its "source" came from the caller).
        if reason not in ("OK", "INVALID_NAME", "SOURCE_NOT_FOUND"):
            self.recent_poll_errors.add(source)
        if upstream_calls:
            self.child(self.upstream_calls, source).inc(upstream_calls)

    def render(self) -> bytes:
        if self._multiprocess_dir is None:
            return generate_latest(self.registry)
        summed = CollectorRegistry()
        MultiProcessCollector(summed, path=str(self._multiprocess_dir))  # type: ignore[no-untyped-call]
        return generate_latest(summed)
