"""Traces of a gateway on port 0 in this process: with tracing off (no provider, no
exporter thread, a caller's traceparent still on the events), and with a provider of
the test's own (spans kept in memory) for a poll whose upstream call is retried."""

from __future__ import annotations

import os
import secrets
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aiohttp import web
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from statusgate.config import Tracing
from statusgate.config.sources import ApiConfig
from statusgate.core.errors import ApiError
from statusgate.telemetry import tracing, tracing_setup
from statusgate.upstream.http import CallScope, HttpClient
from statusgate.v1 import status_pb2 as pb
from tests.conftest import RunningGateway, start_gateway, stop_gateway
from tests.fakes.server import reply
from tests.payloads import finbox_upload
from tests.poll.conftest import Fakes, fakes, poll_settings

__all__ = ["fakes"]  # the fixture, used by name

SESSION = "sources/finbox/sessions/s1"


@pytest.fixture(autouse=True)
def no_otel_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("OTEL_"):
            monkeypatch.delenv(name)


def traceparent() -> tuple[str, str, str]:
    trace_id, span_id = secrets.token_hex(16), secrets.token_hex(8)
    return trace_id, span_id, f"00-{trace_id}-{span_id}-01"


def exporter_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("OtelBatch")]


@pytest.fixture
async def gw(tmp_path: Path, fakes: Fakes) -> AsyncIterator[RunningGateway]:
    running = await start_gateway(poll_settings(tmp_path, fakes))
    try:
        yield running
    finally:
        await stop_gateway(running)


# --- tracing off ---------------------------------------------------------------------------


async def test_off_nothing_is_installed_and_events_carry_the_callers_traceparent(
    gw: RunningGateway, fakes: Fakes
) -> None:
    assert not tracing.enabled()
    assert exporter_threads() == []

    _, _, sent = traceparent()
    status, answer = await gw.post(
        "finbox", finbox_upload("hooked", ("a1", "COMPLETED")), {"traceparent": sent}
    )
    assert status == 200 and answer["events"]
    listed = await gw.stub.ListStatusEvents(
        pb.ListStatusEventsRequest(name="sources/finbox/sessions/hooked")
    )
    # No span of the gateway's: the sender's own context, as it sent it.
    assert [e.trace_parent for e in listed.events] == [sent]

    # Over gRPC too: a poll made for a caller carries the caller's context.
    fakes.finbox.uploaded("s1", ("a1", "COMPLETED"))
    fakes.finbox.processing("s1")
    _, _, asked = traceparent()
    response = await gw.stub.PollStatuses(
        pb.PollStatusesRequest(names=[SESSION]), metadata=(("traceparent", asked),)
    )
    assert not response.results[0].HasField("error")
    listed = await gw.stub.ListStatusEvents(pb.ListStatusEventsRequest(name=SESSION))
    assert [e.trace_parent for e in listed.events] == [asked]
    # And on the JSON API, both ways: a poll made there carries its header, and the
    # events read there show what they carry.
    fakes.finbox.processing("s1", "completed")
    _, _, posted = traceparent()
    async with gw.http.post(
        gw.api_url("/v1/statuses:poll"), json={"names": [SESSION]}, headers={"traceparent": posted}
    ) as answer:
        assert answer.status == 200, await answer.text()
    async with gw.http.get(gw.api_url(f"/v1/{SESSION}:listEvents")) as answer:
        events = (await answer.json())["events"]
    assert [e.get("traceParent", "") for e in events] == [asked, posted]

    # Nothing incoming, nothing carried; a malformed traceparent is nothing either.
    for headers in ({}, {"traceparent": "00-not-a-trace-01"}):
        status, _ = await gw.post("finbox", finbox_upload(f"plain{len(headers)}"), headers)
        assert status == 200
    stream = gw.stub.WatchStatuses(pb.WatchStatusesRequest(after_sequence=0))
    events: list[pb.StatusEvent] = []
    async for message in stream:
        events.extend(message.events)
        if message.caught_up:
            break
    stream.cancel()  # type: ignore[attr-defined]
    assert [e.trace_parent for e in events if "plain" in e.status.name] == ["", ""]
    assert exporter_threads() == []


def test_off_unless_an_endpoint_or_the_config_says_so() -> None:
    assert tracing_setup.plan(Tracing(), {}) is None
    assert (
        tracing_setup.plan(Tracing(enabled=False), {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x"})
        is None
    )
    on = Tracing(endpoint="http://collector:4318")
    assert tracing_setup.plan(on, {"OTEL_SDK_DISABLED": "true"}) is None
    assert tracing_setup.plan(on, {}) == tracing_setup.Plan(
        "http://collector:4318", "statusgate", 1.0
    )
    # The environment's endpoint wins: the exporter reads it.
    env = {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://other:4318/v1/traces"}
    assert tracing_setup.plan(on, env) == tracing_setup.Plan("", "statusgate", 1.0)
    assert tracing_setup.plan(Tracing(enabled=True), {}) == tracing_setup.Plan(
        tracing_setup.DEFAULT_ENDPOINT, "statusgate", 1.0
    )


def test_an_unsupported_protocol_is_one_clear_error() -> None:
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}
    with pytest.raises(tracing_setup.TracingSetupError, match="OTEL_EXPORTER_OTLP_PROTOCOL=grpc"):
        tracing_setup.plan(Tracing(), env)
    env["OTEL_EXPORTER_OTLP_PROTOCOL"] = "http/protobuf"
    assert tracing_setup.plan(Tracing(), env) is not None


# --- tracing on, spans in memory -----------------------------------------------------------


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = tracing_setup.new_provider(tracing_setup.Plan("", "statusgate", 1.0))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.install(provider)
    try:
        yield exporter
    finally:
        tracing.uninstall()
        provider.shutdown()


def attrs(span: ReadableSpan) -> dict[str, object]:
    return dict(span.attributes or {})


def hex_ids(span: ReadableSpan) -> tuple[str, str]:
    context = span.get_span_context()
    return f"{context.trace_id:032x}", f"{context.span_id:016x}"


async def test_a_poll_has_a_span_per_upstream_attempt_with_its_retry(
    spans: InMemorySpanExporter, tmp_path: Path, fakes: Fakes
) -> None:
    running = await start_gateway(poll_settings(tmp_path, fakes))
    try:
        fakes.finbox.uploaded("s1", ("a1", "COMPLETED"))
        fakes.finbox.processing("s1")
        fakes.finbox.script("upload_status", reply(503, {"error": {"message": "busy"}}))
        trace_id, caller, sent = traceparent()
        response = await running.stub.PollStatuses(
            pb.PollStatusesRequest(names=[SESSION]), metadata=(("traceparent", sent),)
        )
        assert not response.results[0].HasField("error")
        listed = await running.stub.ListStatusEvents(pb.ListStatusEventsRequest(name=SESSION))
        json_trace, json_caller, json_sent = traceparent()
        async with running.http.get(
            running.api_url(f"/v1/{SESSION}:listEvents"), headers={"traceparent": json_sent}
        ) as answer:
            assert answer.status == 200
    finally:
        await stop_gateway(running)

    finished = spans.get_finished_spans()
    by_id = {hex_ids(s)[1]: s for s in finished}
    [rpc] = [s for s in finished if s.name == "/statusgate.v1.StatusService/PollStatuses"]
    assert rpc.kind == SpanKind.SERVER
    assert hex_ids(rpc)[0] == trace_id and rpc.parent is not None
    assert f"{rpc.parent.span_id:016x}" == caller

    [poll] = [s for s in finished if s.name == "statusgate.poll"]
    assert poll.parent is not None and poll.parent.span_id == rpc.context.span_id
    assert attrs(poll)["statusgate.source"] == "finbox"
    assert attrs(poll)["statusgate.origin"] == "ORIGIN_POLL"

    calls = [s for s in finished if s.name == "statusgate.upstream.call"]
    assert {attrs(c)["statusgate.upstream"] for c in calls} == {"FinBox (finbox)"}
    assert all(c.parent is not None and c.parent.span_id == poll.context.span_id for c in calls)
    attempts = [s for s in finished if s.name == "statusgate.upstream.attempt"]
    assert all(a.kind == SpanKind.CLIENT for a in attempts)
    assert all(attrs(a)["statusgate.breaker.admitted"] is True for a in attempts)
    # The upload status call: attempt 1 failed (503), then a retry, attempt 2 answered.
    [retried] = [c for c in calls if any(e.name == "statusgate.upstream.retry" for e in c.events)]
    mine = sorted(
        (
            a
            for a in attempts
            if a.parent is not None and a.parent.span_id == retried.context.span_id
        ),
        key=lambda a: int(str(attrs(a)["statusgate.upstream.attempt"])),
    )
    assert [attrs(a)["http.response.status_code"] for a in mine] == [503, 200]
    assert [a.status.is_ok for a in mine] == [False, True]

    # The poll's event names the poll's span, and its commit links to it both ways.
    assert {e.trace_parent for e in listed.events} == {f"00-{trace_id}-{hex_ids(poll)[1]}-01"}
    [batch] = [
        s
        for s in finished
        if s.name == "statusgate.commit"
        and any(link.context.span_id == poll.context.span_id for link in s.links)
    ]
    assert any(link.context.span_id == batch.context.span_id for link in poll.links)
    assert by_id[hex_ids(batch)[1]].parent is None

    # The JSON API's request: a server span named by its route, in the caller's trace.
    [api] = [s for s in finished if hex_ids(s)[0] == json_trace]
    assert api.kind == SpanKind.SERVER and api.name == "GET /v1/{name}:listEvents"
    assert attrs(api)["rpc.method"] == "statusgate.v1.StatusService.ListStatusEvents"
    assert api.parent is not None and f"{api.parent.span_id:016x}" == json_caller
    assert attrs(api)["http.response.status_code"] == 200


async def test_the_breaker_s_decisions_are_on_the_attempts(spans: InMemorySpanExporter) -> None:
    """A failure that opens the breaker says so on its attempt; the next attempt is
    refused by the breaker and its span says that too, without any HTTP call."""

    async def down(_: web.Request) -> web.Response:
        return web.json_response({"error": "down"}, status=503)

    app = web.Application()
    app.router.add_get("/status", down)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    api = ApiConfig(retries=0, breaker_failures=1, breaker_cooldown_seconds=60)
    client = HttpClient(provider="Test (t)", api=api)
    try:
        for _ in range(2):
            with pytest.raises(ApiError):
                await client.call(
                    "GET",
                    f"http://127.0.0.1:{port}/status",
                    label="status",
                    scope=CallScope.within(5),
                )
    finally:
        await client.close()
        await runner.cleanup()

    opened, refused = [s for s in spans.get_finished_spans() if s.name.endswith(".attempt")]
    assert attrs(opened)["statusgate.breaker.admitted"] is True
    assert attrs(opened)["http.response.status_code"] == 503
    assert [e.name for e in opened.events] == ["statusgate.breaker.opened"]
    assert attrs(refused)["statusgate.breaker.admitted"] is False
    assert attrs(refused)["statusgate.breaker.state"] == "open"
    assert "http.response.status_code" not in attrs(refused)
    assert refused.status.description == "UPSTREAM_UNAVAILABLE"
