"""PollStatuses end to end: a gateway on port 0 polling the fake providers over HTTP,
driven over gRPC like a client would."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
from google.protobuf.duration_pb2 import Duration
from google.rpc import error_details_pb2

from statusgate.v1 import status_pb2 as pb
from tests.conftest import RunningGateway, start_gateway, stop_gateway
from tests.fakes.server import reply
from tests.payloads import finbox_enrichment, finbox_upload
from tests.poll.conftest import Fakes, poll_settings
from tests.scrape import scrape

SESSION = "sources/finbox/sessions/s1"


async def poll(
    gw: RunningGateway, *names: str, max_staleness: float | None = None, timeout: float = 20
) -> list[pb.PollResult]:
    request = pb.PollStatusesRequest(names=list(names))
    if max_staleness is not None:
        request.max_staleness.CopyFrom(Duration(nanos=0, seconds=int(max_staleness)))
    response = await gw.stub.PollStatuses(request, timeout=timeout)
    assert [r.name for r in response.results] == list(names)
    return list(response.results)


def reason(result: pb.PollResult) -> str:
    [detail] = result.error.details
    info = error_details_pb2.ErrorInfo()
    detail.Unpack(info)
    return str(info.reason)


async def test_a_never_seen_name_is_polled_and_watched(pgw: RunningGateway, fakes: Fakes) -> None:
    fakes.finbox.uploaded("s1", ("a1", "COMPLETED"))
    fakes.finbox.processing("s1")
    stream = pgw.stub.WatchStatuses(pb.WatchStatusesRequest())
    first = await anext(aiter(stream))
    assert first.caught_up

    [result] = await poll(pgw, SESSION)
    assert not result.HasField("error")
    assert result.upstream_calls == 2  # session_upload_status and progress
    assert (result.status.state, result.status.stage) == (
        pb.STATE_IN_PROGRESS,
        pb.STAGE_PROCESSING,
    )
    events: list[pb.StatusEvent] = []
    async with asyncio.timeout(20):
        async for message in stream:
            events.extend(message.events)
            if any(e.status.name == SESSION for e in events):
                break
    assert all(e.origin == pb.ORIGIN_POLL and not e.delivery_id for e in events)
    assert {e.status.name for e in events} >= {SESSION, SESSION + "/accounts/a1"}
    stream.cancel()  # type: ignore[attr-defined]

    stored = await pgw.stub.GetStatus(pb.GetStatusRequest(name=SESSION))
    assert stored == result.status


async def test_one_failing_name_never_fails_the_others(pgw: RunningGateway, fakes: Fakes) -> None:
    fakes.finbox.uploaded("s1", ("a1", "COMPLETED"))
    fakes.finbox.missing["gone"] = 410
    results = await poll(
        pgw,
        SESSION,
        "sources/finbox/sessions/gone",
        "not a name",
        "sources/nowhere/sessions/x",
        "sources/banqware/payments/p1",
        "sources/bare/sessions/s1",
        "sources/setu/consents/unknown",
    )
    ok, gone, malformed, unknown_source, payment, bare, missing = results
    assert ok.status.state == pb.STATE_COMPLETED and not ok.HasField("error")
    expected = [
        (gone, grpc.StatusCode.NOT_FOUND, "UPSTREAM_NOT_FOUND"),
        (malformed, grpc.StatusCode.INVALID_ARGUMENT, "INVALID_NAME"),
        (unknown_source, grpc.StatusCode.NOT_FOUND, "SOURCE_NOT_FOUND"),
        (payment, grpc.StatusCode.UNIMPLEMENTED, "POLLING_NOT_SUPPORTED"),
        (bare, grpc.StatusCode.FAILED_PRECONDITION, "POLLING_NOT_CONFIGURED"),
        (missing, grpc.StatusCode.NOT_FOUND, "UPSTREAM_NOT_FOUND"),
    ]
    for result, code, why in expected:
        assert result.error.code == code.value[0], result
        assert reason(result) == why, result
        assert not result.HasField("status")
    assert "SESSION_DELETED" in gone.error.message
    assert "sources.bare.api.api_key_env" in bare.error.message

    # Every outcome of a configured source is counted by the gRPC code of its error.
    metrics = await scrape(pgw.http, pgw.api_url("/metrics"))
    polls = "statusgate_polls_total"
    finbox = {"source": "finbox", "provider": "finbox", "origin": "poll"}
    assert metrics.value(polls, **finbox, code="OK") == 1
    assert metrics.value(polls, **finbox, code="NOT_FOUND") == 1
    setu = {"source": "setu", "provider": "setu", "origin": "poll"}
    assert metrics.value(polls, **setu, code="NOT_FOUND") == 1
    bare = {"source": "bare", "provider": "finbox", "origin": "poll"}
    assert metrics.value(polls, **bare, code="FAILED_PRECONDITION") == 1
    banqware = {"source": "banqware", "provider": "banqware", "origin": "poll"}
    assert metrics.value(polls, **banqware, code="UNIMPLEMENTED") == 1
    # The malformed name and the unknown source's came from the caller: not counted.
    assert metrics.label_values(polls, "source") == {"finbox", "bare", "banqware", "setu"}
    requests = "statusgate_upstream_requests_total"
    # s1: upload status 200, progress 400 (not requested); gone: both 410.
    finbox_requests = {"source": "finbox", "provider": "finbox"}
    assert metrics.value(requests, **finbox_requests, code="2xx") == 1
    assert metrics.value(requests, **finbox_requests, code="4xx") == 3


async def test_an_account_is_polled_through_its_session(pgw: RunningGateway, fakes: Fakes) -> None:
    fakes.finbox.uploaded("s1", ("a1", "PARTIAL"))
    [account, stranger] = await poll(
        pgw, SESSION + "/accounts/a1", SESSION + "/accounts/never-listed"
    )
    assert account.status.state == pb.STATE_PARTIAL
    assert reason(stranger) == "NOT_IN_ANSWER"
    # One poll of the session served both names.
    assert fakes.finbox.calls["upload_status"] == 1
    assert account.upstream_calls + stranger.upstream_calls == 2


async def test_concurrent_identical_polls_share_one_upstream_call(
    pgw: RunningGateway, fakes: Fakes
) -> None:
    fakes.finbox.uploaded("s1", ("a1", "COMPLETED"))
    fakes.finbox.processing("s1")
    fakes.finbox.hold("upload_status")
    polls = [asyncio.ensure_future(poll(pgw, SESSION)) for _ in range(100)]
    async with asyncio.timeout(20):
        while pgw.gateway.polling.waiters(SESSION) < 100:
            await asyncio.sleep(0.01)
    fakes.finbox.release("upload_status")
    results = [r for [r] in await asyncio.gather(*polls)]

    assert fakes.finbox.calls["upload_status"] == 1
    assert fakes.finbox.calls["progress"] == 1
    assert sum(r.upstream_calls for r in results) == 2
    assert len({r.status.SerializeToString(deterministic=True) for r in results}) == 1


async def test_max_staleness_serves_a_recent_result(pgw: RunningGateway, fakes: Fakes) -> None:
    fakes.finbox.uploaded("s1", ("a1", "COMPLETED"))
    [first] = await poll(pgw, SESSION)
    [recent] = await poll(pgw, SESSION, max_staleness=60)
    assert recent.upstream_calls == 0 and recent.status == first.status
    assert fakes.finbox.calls["upload_status"] == 1
    [fresh] = await poll(pgw, SESSION)  # no max_staleness: always asks
    assert fresh.upstream_calls == 2
    assert fakes.finbox.calls["upload_status"] == 2


async def test_the_circuit_breaker_opens_and_recovers(tmp_path: Path, fakes: Fakes) -> None:
    api = {"retries": 0, "breaker_failures": 2, "breaker_cooldown_seconds": 0.5}
    gw = await start_gateway(poll_settings(tmp_path, fakes, api=api))
    try:
        fakes.finbox.uploaded("s1", ("a1", "COMPLETED"))
        fakes.finbox.fail_all(reply(503, {"error": {"code": "DOWN", "message": "maintenance"}}))
        [failed] = await poll(gw, SESSION)
        assert reason(failed) == "UPSTREAM_UNAVAILABLE" and "maintenance" in failed.error.message
        sent = fakes.finbox.calls.total()
        assert sent == 2  # upload status and progress, one failure each: open

        [fast] = await poll(gw, SESSION)
        assert reason(fast) == "UPSTREAM_UNAVAILABLE"
        assert "circuit breaker open" in fast.error.message
        assert fakes.finbox.calls.total() == sent  # failed fast: nothing was sent

        fakes.finbox.fail_all(None)  # the provider is back
        async with asyncio.timeout(20):
            while gw.gateway.polling.breaker_open("finbox"):
                await asyncio.sleep(0.05)  # the cool-down
        # The first poll after the cool-down: one of its two concurrent calls is the
        # breaker's trial, the other waits for the trial's verdict instead of failing.
        [result] = await poll(gw, SESSION)
        assert not result.HasField("error"), result.error
        assert result.status.state == pb.STATE_COMPLETED
        assert result.upstream_calls == 2
        assert fakes.finbox.calls.total() == sent + 2
    finally:
        await stop_gateway(gw)


async def test_setu_token_refresh_is_shared(pgw: RunningGateway, fakes: Fakes) -> None:
    names = []
    for i in range(10):
        fakes.setu.consent(f"c{i}", "ACTIVE")
        names.append(f"sources/setu/consents/c{i}")
    results = await poll(pgw, *names)
    assert all(r.status.state == pb.STATE_ACTIVE for r in results)
    assert fakes.setu.calls["login"] == 1

    fakes.setu.expire_tokens()
    for i in range(10):
        fakes.setu.consent(f"c{i}", "PAUSED")
    results = await poll(pgw, *names)
    assert all(r.status.state == pb.STATE_PAUSED for r in results), results
    assert fakes.setu.calls["login"] == 2


async def test_progress_then_the_enrichment_webhook(pgw: RunningGateway, fakes: Fakes) -> None:
    """The race of the issue: a poll that saw progress "completed" before FinBox had the
    verdicts must leave room for the enrichment webhook's PARTIAL."""
    fakes.finbox.uploaded("s1", ("a1", "COMPLETED"), ("a2", "COMPLETED"))
    fakes.finbox.processing("s1", "completed")
    [polled] = await poll(pgw, SESSION)
    assert not polled.status.terminal

    await pgw.post("finbox", finbox_upload("s1", ("a1", "COMPLETED"), ("a2", "COMPLETED")))
    code, _ = await pgw.post(
        "finbox", finbox_enrichment("s1", ("a1", "completed"), ("a2", "failed"))
    )
    assert code == 200
    status = await pgw.stub.GetStatus(pb.GetStatusRequest(name=SESSION))
    assert (status.state, status.terminal) == (pb.STATE_PARTIAL, True)


async def test_too_many_names_fail_the_call(pgw: RunningGateway) -> None:
    names = [f"sources/finbox/sessions/s{i}" for i in range(101)]
    try:
        await pgw.stub.PollStatuses(pb.PollStatusesRequest(names=names), timeout=10)
    except grpc.aio.AioRpcError as error:
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    else:
        raise AssertionError("101 names were accepted")
