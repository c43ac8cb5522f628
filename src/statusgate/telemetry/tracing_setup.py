"""Tracing's set-up: whether this process exports spans, and where to, from the
``[tracing]`` config and the standard ``OTEL_*`` variables, which win; then its
``TracerProvider``, installed with ``tracing.install`` (see ``tracing`` for what is
traced and why)."""

from __future__ import annotations

import logging
import os
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from statusgate.config import Tracing as TracingConfig
from statusgate.telemetry.tracing import MAX_ATTRIBUTE_LENGTH, enabled, install, uninstall

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

log = logging.getLogger(__name__)

DEFAULT_ENDPOINT = "http://localhost:4318"
SUPPORTED_PROTOCOL = "http/protobuf"
# How long a stopping gateway gives the collector to take the spans still queued.
FLUSH_SECONDS = 2.0
# The exporter of the provider ``start`` installed, for ``stop`` to cut short.
_exporters: list[SpanExporter] = []


class TracingSetupError(ValueError):
    """Tracing cannot start as configured; the message is one line saying why."""


@dataclass(frozen=True, slots=True)
class Plan:
    """What ``start`` would install: None from ``plan`` when tracing stays off."""

    endpoint: str  # "" when the OTEL_* variables name it (the exporter reads them)
    service_name: str
    sample_ratio: float


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() == "true"


def plan(config: TracingConfig, environ: Mapping[str, str] = os.environ) -> Plan | None:
    """Whether, and where to, this process exports. Raises TracingSetupError."""
    if _truthy(environ.get("OTEL_SDK_DISABLED")) or config.enabled is False:
        return None
    from_env = bool(
        environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        or environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    )
    if not (config.enabled or from_env or config.endpoint):
        return None
    for variable in ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"):
        protocol = environ.get(variable, "").strip()
        if protocol and protocol != SUPPORTED_PROTOCOL:
            raise TracingSetupError(
                f"{variable}={protocol} is not supported: the gateway exports traces as "
                f"OTLP over {SUPPORTED_PROTOCOL}; set it to {SUPPORTED_PROTOCOL} and point "
                "the endpoint at the receiver's HTTP port (4318)"
            )
        if protocol:
            break
    endpoint = "" if from_env else (config.endpoint or DEFAULT_ENDPOINT)
    return Plan(endpoint, config.service_name, config.sample_ratio)


def start(
    config: TracingConfig,
    *,
    worker: int | None = None,
    environ: Mapping[str, str] = os.environ,
) -> bool:
    """Install this process's provider and exporter when ``config`` and the
    environment say so; returns whether it did (then ``stop`` is the caller's: a
    provider installed before is left to whoever installed it). Raises
    TracingSetupError."""
    planned = plan(config, environ)
    if planned is None or enabled():
        return False
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    exporter = (
        OTLPSpanExporter(endpoint=planned.endpoint.rstrip("/") + "/v1/traces")
        if planned.endpoint
        else OTLPSpanExporter()
    )
    provider = new_provider(planned, worker=worker, environ=environ)
    provider.add_span_processor(BatchSpanProcessor(exporter))
    _exporters.append(exporter)
    install(provider)
    shown = planned.endpoint or environ.get(
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "")
    )
    # Scheme and host only: a URL may carry credentials.
    where = urlsplit(shown)
    log.info("tracing: exporting OTLP/HTTP to %s://%s", where.scheme, where.hostname)
    return True


def new_provider(
    planned: Plan, *, worker: int | None = None, environ: Mapping[str, str] = os.environ
) -> TracerProvider:
    """A provider with the gateway's resource, sampler and limits, without processors."""
    from opentelemetry.sdk.resources import SERVICE_INSTANCE_ID, SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import SpanLimits, TracerProvider
    from opentelemetry.sdk.trace.sampling import ParentBased, Sampler, TraceIdRatioBased

    # OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME first; the config's name only
    # where they give none. The instance id is this process's, whatever they say, so
    # the workers of one gateway are told apart.
    resource = Resource.create({})
    attributes: dict[str, str | int] = {SERVICE_INSTANCE_ID: str(uuid.uuid4())}
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        attributes[SERVICE_NAME] = planned.service_name
    if worker is not None:
        attributes["statusgate.worker"] = worker
    resource = resource.merge(Resource(attributes))
    sampler: Sampler | None = None  # None: the SDK reads OTEL_TRACES_SAMPLER(_ARG)
    if not environ.get("OTEL_TRACES_SAMPLER"):
        sampler = ParentBased(TraceIdRatioBased(planned.sample_ratio))
    limits = SpanLimits()
    if not (
        environ.get("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT")
        or environ.get("OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT")
    ):
        limits = SpanLimits(max_span_attribute_length=MAX_ATTRIBUTE_LENGTH)
    return TracerProvider(resource=resource, sampler=sampler, span_limits=limits)


def stop() -> None:
    """Flush what is queued and end the exporter, within ``FLUSH_SECONDS``: a collector
    that is down or refusing keeps the SDK retrying an export for its whole timeout (10 s
    by default), and must not hold up a drain. Past that, the exporter is shut down,
    which ends its retries; the spans still queued are lost (spans, never webhooks).
    Blocking: call it off the event loop."""
    provider = uninstall()
    if provider is None:
        return
    flushing = threading.Thread(target=provider.shutdown, name="tracing-shutdown", daemon=True)
    flushing.start()
    flushing.join(FLUSH_SECONDS)
    if flushing.is_alive():
        log.warning(
            "tracing: the collector did not take the last spans within %.0f s; they are dropped",
            FLUSH_SECONDS,
        )
        for exporter in _exporters:
            exporter.shutdown()
        flushing.join(FLUSH_SECONDS)
    _exporters.clear()
