"""Traces from a real ``statusgate serve`` to a real OTLP/HTTP receiver: a webhook's
server span, its normalization, the group commit it rode in (linked both ways), the
Watch event that names the webhook's span, and gRPC calls that continue a caller's
trace."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import grpc
import pytest

from statusgate.v1 import status_pb2 as pb
from statusgate.v1 import status_service_pb2_grpc
from tests.payloads import finbox_upload
from tests.process import ServeProcess, free_port
from tests.telemetry.otlp import OtlpReceiver

WEBHOOK_ROUTE = "POST /webhooks/{source}"


@pytest.fixture
async def receiver() -> AsyncIterator[OtlpReceiver]:
    running = OtlpReceiver()
    await running.start()
    yield running
    await running.close()


def traced_env(receiver: OtlpReceiver) -> dict[str, str]:
    return {
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
        "OTEL_BSP_SCHEDULE_DELAY": "50",
        "OTEL_SERVICE_NAME": "statusgate-under-test",
    }


def new_ids() -> tuple[str, str]:
    return secrets.token_hex(16), secrets.token_hex(8)


async def post(
    serve: ServeProcess, session: str, headers: dict[str, str]
) -> tuple[int, dict[str, object]]:
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{serve.base}/webhooks/finbox",
            data=json.dumps(finbox_upload(session, ("a1", "COMPLETED"))),
            headers={"Content-Type": "application/json", **headers},
        ) as response,
    ):
        return response.status, await response.json()


async def test_webhook_commit_and_watch_share_the_senders_trace(
    tmp_path: Path, receiver: OtlpReceiver
) -> None:
    serve = ServeProcess(f"sqlite:///{tmp_path / 'gw.db'}", env=traced_env(receiver))
    await serve.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{serve.grpc_port}") as channel:
            stub = status_service_pb2_grpc.StatusServiceStub(channel)
            stream = stub.WatchStatuses(pb.WatchStatusesRequest())
            assert (await anext(aiter(stream))).caught_up

            trace_id, sender_span = new_ids()
            secret = secrets.token_hex(12)
            status, answer = await post(
                serve,
                f"traced-{secret}",
                {"traceparent": f"00-{trace_id}-{sender_span}-01", "x-secret-key": secret},
            )
            assert status == 200
            async with asyncio.timeout(20):
                watched = (await anext(aiter(stream))).events
            stream.cancel()

            # A gRPC call continuing another caller's trace.
            grpc_trace, grpc_parent = new_ids()
            await stub.GetStatus(
                pb.GetStatusRequest(name=watched[0].status.name),
                metadata=(("traceparent", f"00-{grpc_trace}-{grpc_parent}-01"),),
            )

        spans = await receiver.wait_for(
            lambda got: (
                any(s.name == "statusgate.commit" for s in got)
                and any(s.name == WEBHOOK_ROUTE for s in got)
                and any(s.trace_id == grpc_trace for s in got)
            )
        )
    finally:
        assert serve.terminate() == 0

    [webhook] = [s for s in spans if s.name == WEBHOOK_ROUTE]
    assert (webhook.trace_id, webhook.parent_span_id) == (trace_id, sender_span)
    assert webhook.span.kind == webhook.span.SPAN_KIND_SERVER
    assert webhook.attributes == {
        "http.request.method": "POST",
        "http.route": "/webhooks/{source}",
        "http.response.status_code": 200,
        "statusgate.source": "finbox",
        "statusgate.provider": "finbox",
        "statusgate.delivery_id": answer["delivery_id"],
        "statusgate.verdict": "mapped",
    }
    assert webhook.resource["service.name"] == "statusgate-under-test"
    assert webhook.resource["service.instance.id"]

    [normalize] = [s for s in spans if s.name == "statusgate.normalize"]
    assert (normalize.trace_id, normalize.parent_span_id) == (trace_id, webhook.span_id)
    assert normalize.attributes["statusgate.verdict"] == "mapped"

    [batch] = [s for s in spans if (trace_id, webhook.span_id) in s.links]
    assert batch.name == "statusgate.commit" and not batch.parent_span_id
    assert (batch.trace_id, batch.span_id) in webhook.links

    # The event names the webhook's span: a subscriber's span can link to it.
    assert {e.trace_parent for e in watched} == {f"00-{trace_id}-{webhook.span_id}-01"}

    [get] = [s for s in spans if s.trace_id == grpc_trace]
    assert get.name == "/statusgate.v1.StatusService/GetStatus"
    assert get.parent_span_id == grpc_parent
    assert get.span.kind == get.span.SPAN_KIND_SERVER

    # Neither a header's value nor the body ever leaves in a span.
    assert not any(secret.encode() in body for body in receiver.bodies)
    # Health checks make no spans.
    assert not any(s.name.startswith("/grpc.health") for s in spans)


async def test_every_worker_exports_as_its_own_instance(
    tmp_path: Path, receiver: OtlpReceiver
) -> None:
    serve = ServeProcess(f"sqlite:///{tmp_path / 'gw.db'}", env=traced_env(receiver), workers=2)
    await serve.start()
    try:
        # New connections are spread over the workers by the kernel: post until both
        # have answered one.
        instances: set[str] = set()
        for attempt in range(60):
            status, _ = await post(serve, f"w-{attempt}", {})
            assert status == 200
            if attempt % 10 == 9:
                await asyncio.sleep(0.3)
                instances = {
                    s.resource["service.instance.id"] for s in receiver.named(WEBHOOK_ROUTE)
                }
                if len(instances) == 2:
                    break
    finally:
        assert serve.terminate() == 0
    assert len(instances) == 2
    workers = {s.resource["statusgate.worker"] for s in receiver.named(WEBHOOK_ROUTE)}
    assert workers == {0, 1}
    assert all(s.resource["service.name"] == "statusgate-under-test" for s in receiver.spans)


def test_an_unsupported_otlp_protocol_stops_start_up_with_one_line(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
        "STATUSGATE_LOG_FORMAT": "text",
    }
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "statusgate.cli",
            "serve",
            "--store",
            f"sqlite:///{tmp_path / 'x.db'}",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    [line] = done.stderr.strip().splitlines()
    assert "cannot start: tracing: OTEL_EXPORTER_OTLP_PROTOCOL=grpc is not supported" in line
    assert not (tmp_path / "x.db").exists()  # nothing was opened


@pytest.fixture
async def failing_collector() -> AsyncIterator[str]:
    """An OTLP endpoint that answers every export 503 (retryable: the exporter backs off
    and tries again)."""

    async def refuse(request: aiohttp.web.Request) -> aiohttp.web.Response:
        await request.read()
        return aiohttp.web.Response(status=503)

    app = aiohttp.web.Application()
    app.router.add_post("/v1/traces", refuse)
    runner = aiohttp.web.AppRunner(app)
    await runner.setup()
    site = aiohttp.web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


@pytest.mark.parametrize("collector", ["down", "failing"])
async def test_a_collector_that_is_down_or_failing_costs_no_webhook_and_no_shutdown(
    tmp_path: Path, collector: str, failing_collector: str
) -> None:
    """Spans are lost, never webhooks: every webhook is acknowledged; on SIGTERM the
    gateway stops cleanly, giving up on the spans it could not export instead of waiting
    out the exporter's retries (it says so); the exporter's credentials never reach the
    log."""
    endpoint = failing_collector if collector == "failing" else f"http://127.0.0.1:{free_port()}"
    credential = secrets.token_hex(16)
    log = tmp_path / "serve.log"
    serve = ServeProcess(
        f"sqlite:///{tmp_path / 'gw.db'}",
        env={
            "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
            "OTEL_EXPORTER_OTLP_HEADERS": f"authorization=Bearer {credential}",
            "OTEL_BSP_SCHEDULE_DELAY": "50",
        },
        log=log,
    )
    await serve.start()
    try:
        answers = await asyncio.gather(*(post(serve, f"lost-spans-{i}", {}) for i in range(20)))
        assert [status for status, _ in answers] == [200] * 20
        await asyncio.sleep(0.5)  # exports attempted, and failing, meanwhile
    finally:
        assert serve.terminate() == 0
    logged = log.read_text()
    assert "the collector did not take the last spans" in logged
    assert credential not in logged
