"""The health service ends its Watch streams at shutdown, like every other stream."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.conftest import RunningGateway, gateway_settings, start_gateway, stop_gateway

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


@pytest.mark.parametrize("service", ["", "statusgate.v1.StatusService"])
async def test_sigterm_ends_a_health_watch_at_once(tmp_path: Path, service: str) -> None:
    """A held-open Health Watch must not keep shutdown waiting for its grace period
    (a minute here): it hears NOT_SERVING, then ends with UNAVAILABLE."""
    gw = await start_gateway(gateway_settings(tmp_path, shutdown_grace_seconds=60))
    try:
        health = health_pb2_grpc.HealthStub(gw.channel)
        stream = health.Watch(health_pb2.HealthCheckRequest(service=service))
        answers = aiter(stream)
        assert (await anext(answers)).status == SERVING
        stopping = asyncio.ensure_future(gw.gateway.stop())
        seen = []
        with pytest.raises(grpc.aio.AioRpcError) as ended:
            async with asyncio.timeout(30):  # a hang guard, far below the grace period
                async for answer in answers:
                    seen.append(answer.status)
        assert seen[-1:] == [NOT_SERVING]
        assert ended.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "shutting down" in (ended.value.details() or "")
        async with asyncio.timeout(30):
            await stopping
    finally:
        await stop_gateway(gw)


async def test_check_and_watch_answer_as_the_protocol_says(gw: RunningGateway) -> None:
    health = health_pb2_grpc.HealthStub(gw.channel)
    for service in ("", "statusgate.v1.StatusService"):
        answer = await health.Check(health_pb2.HealthCheckRequest(service=service))
        assert answer.status == SERVING
    with pytest.raises(grpc.aio.AioRpcError) as unknown:
        await health.Check(health_pb2.HealthCheckRequest(service="no.Such"))
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND
    stream = health.Watch(health_pb2.HealthCheckRequest(service="no.Such"))
    first = await anext(aiter(stream))
    assert first.status == health_pb2.HealthCheckResponse.SERVICE_UNKNOWN
    stream.cancel()  # type: ignore[attr-defined]
