"""OpenTelemetry traces: what the gateway's code calls, and the provider it traces with.

Off (the default without an endpoint), no TracerProvider is installed and no exporter
thread runs; every function here returns at once, and no span is ever made current, so
an incoming W3C ``traceparent`` attached by the doors (``traced_webhook``,
``traced_requests``, ``remote_parent``) stays current as the API's non-recording span
and still reaches ``trace_parent()``, hence every event the request makes.

On (``tracing_setup.start``): one ``TracerProvider`` per process with a
``BatchSpanProcessor`` and the OTLP/HTTP (protobuf) exporter, configured from
``[tracing]`` and the standard ``OTEL_*`` variables, which win (the SDK reads OTEL_BSP_*,
OTEL_EXPORTER_OTLP_HEADERS, _TIMEOUT, _COMPRESSION, _CERTIFICATE... itself). Each worker
of ``serve --workers N`` is its own process, started by exec (never a fork of one that
traces), so each sets up its own provider and exporter thread, with its own
``service.instance.id``.

What comes from the OpenTelemetry packages and what is glue here:

- gRPC: ``opentelemetry-instrumentation-grpc``'s ``aio_server_interceptor`` fits the
  gateway's generic handlers (unary and async-generator server streaming) on grpcio's
  ``grpc.aio`` server, honours an incoming ``traceparent`` in the metadata and names
  each span by its full method (bounded: unknown methods get no span). Only health and
  reflection are filtered out (probes would drown the traces).
- Webhooks and the API listener: glue (``traced_webhook``, ``traced_requests``). The
  aiohttp server instrumentation only works by
  replacing ``aiohttp.web.Application`` for the whole process (the API listener and the
  console too), and records the raw URL and target with their query strings, the
  user agent and the Host header, and, when OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_*
  is set, request headers, which on a webhook hold its credentials (x-secret-key,
  Authorization). The span here is named by the route, never the raw path, and carries
  only values from the config or fixed sets.
- Upstream calls: glue (``span`` around each attempt, in ``upstream.http``) for the same
  reason: the aiohttp client instrumentation records the full URL with its query and,
  on request, headers holding the gateway's provider credentials; and it cannot see
  the retries, the circuit breaker or the deadline, which are what an attempt span
  must tell. (Both aiohttp instrumentations exist only as 0.66b1, which pins the API
  at 1.45.1: they install beside grpc's 0.66b1, not beside its 0.66b2.)
- Tracing off: no interceptor on the gRPC server (one costs every call, and delays the
  end of a call its deadline cut short); the call wrappers of ``rpc.handlers`` attach a
  caller's ``traceparent`` with ``remote_parent``.

Attribute values are cut to ``MAX_ATTRIBUTE_LENGTH`` characters unless
OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT says otherwise, so no value can grow a span without
bound. No header, body or secret is ever an attribute.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import grpc
from aiohttp import web
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import INVALID_SPAN, Link, Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from statusgate.core.errors import ApiError

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

INSTRUMENTATION = "statusgate"
MAX_ATTRIBUTE_LENGTH = 256
# Services whose calls get no span: load balancers' probes and tools' discovery.
UNTRACED_SERVICES = ("grpc.health.v1.", "grpc.reflection.")

# The W3C propagator alone: what the doors read when tracing is off (cheap, and never
# a baggage or other propagator's cost).
_W3C = TraceContextTextMapPropagator()
_ROOT = otel_context.Context()


class _State:
    """The process's tracing: one tracer, or none."""

    tracer: trace.Tracer | None = None
    provider: TracerProvider | None = None


_state = _State()


def enabled() -> bool:
    return _state.tracer is not None


# --- what the gateway's code calls ---------------------------------------------------------


def trace_parent() -> str:
    """The W3C ``traceparent`` of the current span ("" when there is none): the
    gateway's own span with tracing on, the caller's with tracing off."""
    span_context = trace.get_current_span().get_span_context()
    if not span_context.is_valid:
        return ""
    return (
        f"00-{span_context.trace_id:032x}-{span_context.span_id:016x}"
        f"-{int(span_context.trace_flags):02x}"
    )


def current_span() -> Span | None:
    """The current span when it is the gateway's own (tracing on), to link to later."""
    if _state.tracer is None:
        return None
    span = trace.get_current_span()
    return span if span.is_recording() else None


_NO_SPAN: contextlib.nullcontext[Span] = contextlib.nullcontext(INVALID_SPAN)


def span(
    name: str,
    attributes: Mapping[str, str | int | float | bool] | None = None,
    *,
    kind: SpanKind = SpanKind.INTERNAL,
) -> contextlib.AbstractContextManager[Span]:
    """A child span of the current one, made current; off, a shared null context that
    leaves the current (remote) span current."""
    tracer = _state.tracer
    if tracer is None:
        return _NO_SPAN
    return _span(tracer, name, attributes, kind)


@contextlib.contextmanager
def _span(
    tracer: trace.Tracer,
    name: str,
    attributes: Mapping[str, str | int | float | bool] | None,
    kind: SpanKind,
) -> Iterator[Span]:
    # Exceptions are not recorded as events: their messages may quote a provider's
    # answer. The status says what failed in the gateway's words (a reason, a type).
    with tracer.start_as_current_span(
        name,
        kind=kind,
        attributes=attributes,
        record_exception=False,
        set_status_on_exception=False,
    ) as current:
        try:
            yield current
        except BaseException as error:
            current.set_status(Status(StatusCode.ERROR, described(error)))
            raise


def described(error: BaseException) -> str:
    """An exception in words safe for a span: an ApiError's reason, else its type."""
    if isinstance(error, ApiError):
        return str(error.reason)
    return type(error).__name__


def set_attributes(attributes: Mapping[str, str | int | float | bool]) -> None:
    """On the current span (nothing when tracing is off)."""
    if _state.tracer is not None:
        trace.get_current_span().set_attributes(attributes)


def rename(name: str, attributes: Mapping[str, str | int | float | bool]) -> None:
    """A better name for the current span once its handler knows one (the JSON API's
    RPC, found behind one catch-all route), with what it learnt."""
    if _state.tracer is not None:
        current = trace.get_current_span()
        current.update_name(name)
        current.set_attributes({"http.route": name.partition(" ")[2], **attributes})


def add_event(name: str, attributes: Mapping[str, str | int | float | bool]) -> None:
    if _state.tracer is not None:
        trace.get_current_span().add_event(name, attributes)


def fail(description: str) -> None:
    """Mark the current span failed (the description is the gateway's own words)."""
    if _state.tracer is not None:
        trace.get_current_span().set_status(Status(StatusCode.ERROR, description))


@contextlib.contextmanager
def commit_span(store: str, riders: Iterable[Span | None]) -> Iterator[None]:
    """One span for one group commit, a root of its own (it serves many traces), with a
    link to the span of every request that rode in it and, on each of those, a link
    back to it. ``riders`` is only iterated when tracing is on."""
    tracer = _state.tracer
    if tracer is None:
        yield
        return
    spans = [rider for rider in riders if rider is not None]
    links = [Link(rider.get_span_context()) for rider in spans]
    with tracer.start_as_current_span(
        "statusgate.commit",
        context=_ROOT,
        links=links,
        attributes={"statusgate.store": store, "statusgate.commit.requests": len(spans)},
        record_exception=False,
    ) as batch:
        here = batch.get_span_context()
        for rider in spans:
            if rider.is_recording():  # not ended (its caller may have been cancelled)
                rider.add_link(here, {"statusgate.link": "commit"})
        yield


# --- the doors ------------------------------------------------------------------------------

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def traced_webhook(handler: Handler) -> Handler:
    """The front door's handler with its server span: named by method and route (never
    the raw path), a child of the sender's ``traceparent``. Off, only that
    ``traceparent`` is attached, and only when there is one."""

    async def traced(request: web.Request) -> web.StreamResponse:
        return await _serve(handler, request)

    return traced


@web.middleware
async def traced_requests(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The same for every route of an application (the API listener: the JSON API and
    the console, whose replays and polls make events too). Prometheus scrapes and
    requests that match no route get no span."""
    resource = request.match_info.route.resource
    if resource is None or resource.canonical.startswith(UNTRACED_ROUTES):
        return await handler(request)
    return await _serve(handler, request)


UNTRACED_ROUTES = ("/metrics",)
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


async def _serve(handler: Handler, request: web.Request) -> web.StreamResponse:
    tracer = _state.tracer
    headers = request.headers
    if tracer is None:
        if "traceparent" not in headers:
            return await handler(request)
        token = otel_context.attach(_W3C.extract(headers))
        try:
            return await handler(request)
        finally:
            otel_context.detach(token)
    resource = request.match_info.route.resource
    template = resource.canonical if resource is not None else ""
    method = request.method if request.method in _METHODS else "HTTP"
    with tracer.start_as_current_span(
        f"{method} {template}",
        context=_W3C.extract(headers),
        kind=SpanKind.SERVER,
        attributes={"http.request.method": method, "http.route": template},
        record_exception=False,
        set_status_on_exception=False,
    ) as server_span:
        try:
            response = await handler(request)
        except BaseException as error:
            status = getattr(error, "status", None)  # aiohttp's HTTPException answers
            if isinstance(status, int):
                server_span.set_attribute("http.response.status_code", status)
            if not isinstance(status, int) or status >= 500:
                server_span.set_status(Status(StatusCode.ERROR, described(error)))
            raise
        server_span.set_attribute("http.response.status_code", response.status)
        if response.status >= 500:
            server_span.set_status(Status(StatusCode.ERROR))
        return response


def grpc_interceptors() -> list[grpc.aio.ServerInterceptor[Any, Any]]:
    """For ``grpc.aio.server(interceptors=...)``: OpenTelemetry's server interceptor when
    tracing is on; off, none (an interceptor costs every call a little, and delays the
    end of a call its deadline cut short: ``remote_parent`` does what off needs)."""
    if _state.provider is None:
        return []
    from opentelemetry.instrumentation.grpc import aio_server_interceptor

    interceptor: grpc.aio.ServerInterceptor[Any, Any] = aio_server_interceptor(  # type: ignore[no-untyped-call]
        tracer_provider=_state.provider, filter_=_traced_method
    )
    return [interceptor]


def _traced_method(details: Any) -> bool:
    method: str = getattr(details, "method", "") or ""
    return not method.lstrip("/").startswith(UNTRACED_SERVICES)


_NOTHING: contextlib.nullcontext[None] = contextlib.nullcontext()
_KEYS = frozenset(_W3C.fields)


def remote_parent(
    metadata: Iterable[tuple[str, str | bytes]] | None,
) -> contextlib.AbstractContextManager[None]:
    """Tracing off: a gRPC call whose metadata holds a valid ``traceparent`` runs with
    it attached (a non-recording span), so what it writes carries it. On, the
    interceptor has done that and more; without one, nothing happens."""
    if _state.tracer is not None or not metadata:
        return _NOTHING
    carrier = {key: value for key, value in metadata if key in _KEYS and isinstance(value, str)}
    if "traceparent" not in carrier:
        return _NOTHING
    remote = _W3C.extract(carrier)
    if not trace.get_current_span(remote).get_span_context().is_valid:
        return _NOTHING
    return _attached(remote)


@contextlib.contextmanager
def _attached(remote: otel_context.Context) -> Iterator[None]:
    token = otel_context.attach(remote)
    try:
        yield
    finally:
        otel_context.detach(token)


# --- the provider this process traces with --------------------------------------


def install(provider: TracerProvider) -> None:
    """Make ``provider`` this process's (``start`` does; tests install their own). The
    global one is set too, the first time only (the API allows no second)."""
    _state.provider = provider
    _state.tracer = provider.get_tracer(INSTRUMENTATION)
    if isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        trace.set_tracer_provider(provider)


def uninstall() -> TracerProvider | None:
    """Tracing off again for new spans; returns the provider, for its caller to shut
    down (which flushes what it holds)."""
    provider, _state.provider, _state.tracer = _state.provider, None, None
    return provider
