"""The metrics of a real gateway after a scripted mix of traffic: webhooks of every kind,
gRPC calls, a Watch stream, polls against a fake provider that fails, and the gauges
the schedule refreshes, read from /metrics with prometheus-client's parser."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from statusgate.telemetry.metrics import STATES, VERDICTS
from statusgate.v1 import status_pb2 as pb
from tests.conftest import RunningGateway, gateway_settings, start_gateway, stop_gateway
from tests.fakes.server import reply
from tests.payloads import finbox_expiry
from tests.poll.conftest import Fakes, poll_settings
from tests.scrape import Scrape, scrape

FINBOX = {"source": "finbox", "provider": "finbox"}
LOCKED = {"source": "locked", "provider": "finbox"}
WATCH = "/statusgate.v1.StatusService/WatchStatuses"


@pytest.fixture
async def mgw(
    tmp_path: Path, fakes: Fakes, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[RunningGateway]:
    monkeypatch.setenv("LOCKED_SECRET", "s3cret")
    locked = {
        "provider": "finbox",
        "auth": {"method": "shared_secret", "secret_env": "LOCKED_SECRET"},
        "poll": {"enabled": False},
    }
    settings = poll_settings(
        tmp_path,
        fakes,
        # One failure opens a breaker: the failing poll below shows it open.
        api={"breaker_failures": 1},
        extra_sources={"locked": locked},
        metrics_refresh_seconds=0.05,
    )
    running = await start_gateway(settings)
    try:
        yield running
    finally:
        await stop_gateway(running)


async def metrics_of(gw: RunningGateway) -> Scrape:
    return await scrape(gw.http, gw.api_url("/metrics"))


async def eventually(gw: RunningGateway, holds: Callable[[Scrape], bool]) -> Scrape:
    """The first scrape of which ``holds`` is true (gauges the schedule refreshes, or
    one a closing stream updates once the server has seen it go)."""
    async with asyncio.timeout(20):
        while True:
            found = await metrics_of(gw)
            if holds(found):
                return found
            await asyncio.sleep(0.02)


def subjects(found: Scrape) -> dict[tuple[str, int], float]:
    """statusgate_subjects by (source, state), the counts that are not 0."""
    states = {name: value for value, name in STATES.items()}
    return {
        (s.labels["source"], states[s.labels["state"]]): s.value
        for s in found.samples
        if s.name == "statusgate_subjects" and s.value
    }


async def test_a_scripted_mix_of_traffic_is_counted_exactly(
    mgw: RunningGateway, fakes: Fakes
) -> None:
    gw = mgw
    # Webhooks: three mapped, one duplicate, one rejected, one unauthenticated, and one
    # for a source that is not configured (404, counted nowhere).
    for session in ("m1", "m2", "m3"):
        assert (await gw.post("finbox", finbox_expiry(session)))[0] == 200
    assert (await gw.post("finbox", finbox_expiry("m1")))[0] == 200
    assert (await gw.post("finbox", b"not json"))[0] == 400
    assert (await gw.post("locked", finbox_expiry("x"), {"x-secret-key": "wrong"}))[0] == 401
    assert (await gw.post("nope", finbox_expiry("x")))[0] == 404

    # gRPC: a GetStatus found, one not found, and a method nobody registered.
    await gw.stub.GetStatus(pb.GetStatusRequest(name="sources/finbox/sessions/m1"))
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await gw.stub.GetStatus(pb.GetStatusRequest(name="sources/finbox/sessions/none"))
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as unknown:
        await gw.channel.unary_unary("/statusgate.v1.StatusService/Invented")(b"")
    assert unknown.value.code() == grpc.StatusCode.UNIMPLEMENTED

    # A Watch stream: open, then cancelled by its client.
    stream = gw.stub.WatchStatuses(pb.WatchStatusesRequest())
    first = await anext(aiter(stream))
    assert first.caught_up
    await eventually(gw, lambda found: found.value("statusgate_watch_streams") == 1)
    stream.cancel()  # type: ignore[attr-defined]
    await eventually(gw, lambda found: found.value("statusgate_watch_streams") == 0)

    # A stream the handler ends at once, with the code it aborts with.
    with pytest.raises(grpc.aio.AioRpcError) as beyond:
        async for _ in gw.stub.WatchStatuses(pb.WatchStatusesRequest(after_sequence=10**6)):
            pass
    assert beyond.value.code() == grpc.StatusCode.OUT_OF_RANGE

    # Polls: one that maps (two events of origin poll), then one against a provider
    # that answers 500 to everything.
    fakes.finbox.uploaded("p1", ("a1", "COMPLETED"))
    [polled] = (
        await gw.stub.PollStatuses(pb.PollStatusesRequest(names=["sources/finbox/sessions/p1"]))
    ).results
    assert not polled.HasField("error")
    fakes.finbox.fail_all(reply(500, {"error": "down"}))
    [failed] = (
        await gw.stub.PollStatuses(pb.PollStatusesRequest(names=["sources/finbox/sessions/p2"]))
    ).results
    assert failed.error.code == grpc.StatusCode.UNAVAILABLE.value[0]

    listed = await gw.stub.ListStatuses(pb.ListStatusesRequest(page_size=1000))
    by_state = Counter((s.name.split("/")[1], s.state) for s in listed.statuses)
    expected_open = [s for s in listed.statuses if not s.terminal]
    assert expected_open  # p1 and its account
    # Once the scheduled refresh has seen every subject (as ListStatuses counts them).
    found = await eventually(gw, lambda found: subjects(found) == dict(by_state))

    # Webhooks by verdict, every verdict present from the start.
    webhooks = {v: found.value("statusgate_webhooks_total", **FINBOX, verdict=v) for v in VERDICTS}
    assert webhooks == {
        **dict.fromkeys(VERDICTS, 0.0),
        "mapped": 3,
        "duplicate": 1,
        "rejected": 1,
    }
    assert found.value("statusgate_webhooks_total", **LOCKED, verdict="unauthenticated") == 1
    # Acknowledged (stored) webhooks are timed: the three mapped, the duplicate, the
    # rejected one.
    assert found.value("statusgate_webhook_ack_seconds_count", **FINBOX) == 5

    # Events by origin: three expiries, and one for each subject the poll found (the
    # session, its account and statement).
    polled_subjects = [s for s in listed.statuses if s.name.startswith(polled.name)]
    assert len(polled_subjects) >= 2
    events = "statusgate_events_total"
    assert found.value(events, **FINBOX, origin="webhook") == 3
    assert found.value(events, **FINBOX, origin="poll") == len(polled_subjects)
    assert found.value(events, **FINBOX, origin="reconcile") == 0
    assert found.value(events, **FINBOX, origin="replay") == 0
    assert found.value("statusgate_store_head_sequence") == 3 + len(polled_subjects)

    # Six ingests (five stored webhooks and the poll that mapped), however batched.
    assert found.value("statusgate_commit_batch_size_sum") == 6
    assert found.value("statusgate_commit_failures_total") == 0
    assert found.value("statusgate_store_up") == 1

    # gRPC calls by method and code; the invented method is "unknown".
    calls = "statusgate_grpc_calls_total"
    get = "/statusgate.v1.StatusService/GetStatus"
    assert found.value(calls, method=get, code="OK") == 1
    assert found.value(calls, method=get, code="NOT_FOUND") == 1
    assert found.value(calls, method="unknown", code="UNIMPLEMENTED") == 1
    watch = WATCH
    assert found.value(calls, method=watch, code="CANCELLED") == 1
    assert found.value(calls, method=watch, code="OUT_OF_RANGE") == 1
    assert found.value("statusgate_grpc_call_seconds_count", method=watch) == 2
    assert found.value(calls, method="/statusgate.v1.StatusService/PollStatuses", code="OK") == 2
    assert found.value("statusgate_watch_lag_events") == 0

    # Polls: one OK, one UNAVAILABLE. The failing one sent both of FinBox's calls at
    # once (both 500, the first failure opened the breaker); their retries were refused.
    polls = "statusgate_polls_total"
    assert found.value(polls, **FINBOX, origin="poll", code="OK") == 1
    assert found.value(polls, **FINBOX, origin="poll", code="UNAVAILABLE") == 1
    requests = "statusgate_upstream_requests_total"
    assert found.value(requests, **FINBOX, code="2xx") == 1  # p1's upload status
    assert found.value(requests, **FINBOX, code="4xx") == 1  # p1's progress: not requested
    assert found.value(requests, **FINBOX, code="5xx") == 2
    assert found.value(requests, **FINBOX, code="breaker_open") == 2
    assert found.value("statusgate_upstream_request_seconds_count", **FINBOX) == 4
    assert found.value("statusgate_breaker_state", **FINBOX) == 2
    assert found.value("statusgate_breaker_state", source="setu", provider="setu") == 0

    # Subjects by state, as the store has them (the wait above); every state of every
    # source is there, 0 or not.
    assert by_state[("finbox", pb.STATE_EXPIRED)] == 3
    assert sum(s.value for s in found.samples if s.name == "statusgate_subjects") == len(
        listed.statuses
    )
    assert found.label_values("statusgate_subjects", "state") == set(STATES.values())
    assert found.value("statusgate_oldest_open_subject_age_seconds", **FINBOX) > 0
    assert (
        found.value("statusgate_oldest_open_subject_age_seconds", source="setu", provider="setu")
        == 0
    )
    assert found.value("statusgate_reconciler_backlog") == 0
    assert found.value("statusgate_reconciler_lag_seconds") == 0

    # The process, GC and platform metrics of a single process.
    assert {"process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds"} <= (
        found.names()
    )
    assert found.value("python_gc_collections_total", generation="0") >= 0
    assert "python_info" in found.names()


async def test_no_label_value_comes_from_a_client(mgw: RunningGateway) -> None:
    gw = mgw
    before = await metrics_of(gw)
    for source in ("nope", "finbox%2F..", "x" * 50):
        await gw.post(source, finbox_expiry("x"))
    for method in ("/statusgate.v1.StatusService/Invented", "/evil.Service/" + "y" * 40):
        with pytest.raises(grpc.aio.AioRpcError):
            await gw.channel.unary_unary(method)(b"")
    await gw.stub.PollStatuses(
        pb.PollStatusesRequest(names=["sources/invented/sessions/s", "not a name"])
    )
    with pytest.raises(grpc.aio.AioRpcError):
        await gw.stub.GetStatus(pb.GetStatusRequest(name="sources/invented/sessions/s"))
    after = await metrics_of(gw)

    configured = {"finbox", "setu", "banqware", "bare", "locked"}
    for sample in after.samples:
        if "source" in sample.labels:
            assert sample.labels["source"] in configured, sample
    registered = {
        s.labels["method"] for s in after.samples if s.name == "statusgate_grpc_calls_total"
    }
    assert registered <= {
        "unknown",
        "/statusgate.v1.StatusService/GetStatus",
        "/statusgate.v1.StatusService/PollStatuses",
    }
    assert after.value("statusgate_grpc_calls_total", method="unknown", code="UNIMPLEMENTED") == 2
    # No series appeared but those of the calls themselves.
    new = {(s.name, tuple(sorted(s.labels.items()))) for s in after.samples} - {
        (s.name, tuple(sorted(s.labels.items()))) for s in before.samples
    }
    assert {name for name, _ in new} <= {
        "statusgate_grpc_calls_total",
        "statusgate_grpc_call_seconds_bucket",
        "statusgate_grpc_call_seconds_count",
        "statusgate_grpc_call_seconds_sum",
        "statusgate_grpc_call_seconds_created",
        "statusgate_grpc_calls_created",
    }


async def test_streams_open_at_shutdown_end_unavailable_and_are_counted(tmp_path: Path) -> None:
    gw = await start_gateway(gateway_settings(tmp_path))
    stopped = False
    try:
        watch = gw.stub.WatchStatuses(pb.WatchStatusesRequest())
        assert (await anext(aiter(watch))).caught_up
        health = health_pb2_grpc.HealthStub(gw.channel).Watch(health_pb2.HealthCheckRequest())
        assert (await anext(aiter(health))).status == health_pb2.HealthCheckResponse.SERVING
        await eventually(gw, lambda found: found.value("statusgate_watch_streams") == 1)
        ended = asyncio.gather(_end_code(watch), _end_code(health))
        await gw.gateway.stop()
        stopped = True
        assert await ended == [grpc.StatusCode.UNAVAILABLE] * 2
    finally:
        await gw.http.close()
        await gw.channel.close()
        if not stopped:
            await gw.gateway.stop()
    # Counted by the gateway as it stopped (a streaming handler written with
    # context.write, like health's Watch, and an async generator, like WatchStatuses).
    found = Scrape.parse(gw.gateway.parts.metrics.render().decode())
    calls = "statusgate_grpc_calls_total"
    assert found.value(calls, method=WATCH, code="UNAVAILABLE") == 1
    assert found.value(calls, method="/grpc.health.v1.Health/Watch", code="UNAVAILABLE") == 1
    assert found.value("statusgate_watch_streams") == 0


async def _end_code(stream: Any) -> grpc.StatusCode:
    try:
        async for _ in stream:
            pass
    except grpc.aio.AioRpcError as error:
        return error.code()
    return grpc.StatusCode.OK
