"""WatchStatuses: live tail, replay, resume across a restart, and slow subscribers."""

from __future__ import annotations

import asyncio
import collections
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from statusgate.app import load_settings
from statusgate.v1 import status_pb2 as pb
from statusgate.v1 import status_service_pb2_grpc
from tests.conftest import RunningGateway, gateway_settings, start_gateway, stop_gateway
from tests.payloads import finbox_expiry, finbox_upload


def watch(
    gw: RunningGateway, after: int | None = None, status_filter: pb.StatusFilter | None = None
) -> AsyncIterator[pb.WatchStatusesResponse]:
    request = pb.WatchStatusesRequest(filter=status_filter)
    if after is not None:
        request.after_sequence = after
    return gw.stub.WatchStatuses(request)  # type: ignore[return-value]


async def collect(
    stream: AsyncIterator[pb.WatchStatusesResponse], count: int, timeout: float = 20
) -> list[pb.StatusEvent]:
    events: list[pb.StatusEvent] = []

    async def run() -> None:
        async for message in stream:
            events.extend(message.events)
            if len(events) >= count:
                return

    await asyncio.wait_for(run(), timeout)
    return events


async def post_expiries(gw: RunningGateway, prefix: str, n: int) -> None:
    results = await asyncio.gather(
        *(gw.post("finbox", finbox_expiry(f"{prefix}{i}")) for i in range(n))
    )
    assert all(code == 200 for code, _ in results)


async def test_live_subscriber_gets_caught_up_marker_then_events(gw: RunningGateway) -> None:
    stream = watch(gw)
    first = await anext(aiter(stream))
    assert first.caught_up and not first.events
    await gw.post("finbox", finbox_upload("live", ("a1", "COMPLETED")))
    events = await collect(stream, 2)
    assert {e.status.name for e in events} == {
        "sources/finbox/sessions/live",
        "sources/finbox/sessions/live/accounts/a1",
    }
    assert all(e.origin == pb.ORIGIN_WEBHOOK for e in events)
    stream.cancel()  # type: ignore[attr-defined]


async def test_replay_batches_backlog_then_marks_caught_up(gw: RunningGateway) -> None:
    await post_expiries(gw, "b", 300)
    messages = []
    async for message in watch(gw, after=0):
        messages.append(message)
        if message.caught_up:
            break
    events = [e for m in messages for e in m.events]
    assert [e.sequence for e in events] == list(range(1, 301))
    assert any(len(m.events) > 1 for m in messages), "a backlog comes several per message"
    assert messages[-1].caught_up and not messages[-1].events


async def test_filter_by_name_prefix_selects_a_session_and_its_children(
    gw: RunningGateway,
) -> None:
    stream = watch(
        gw, after=0, status_filter=pb.StatusFilter(name_prefixes=["sources/finbox/sessions/p1"])
    )
    await gw.post("finbox", finbox_upload("p10", ("a1", "COMPLETED")))
    await gw.post("finbox", finbox_upload("p1", ("a1", "COMPLETED")))
    events = await collect(stream, 2)
    assert sorted(e.status.name for e in events) == [
        "sources/finbox/sessions/p1",
        "sources/finbox/sessions/p1/accounts/a1",
    ]
    stream.cancel()  # type: ignore[attr-defined]


async def test_resume_after_restart_has_no_gap_and_no_duplicate(tmp_path: Path) -> None:
    settings = gateway_settings(tmp_path)
    first = await start_gateway(settings)
    try:
        await post_expiries(first, "r", 40)
        seen = await collect(watch(first, after=0), 40)
        last = seen[-1].sequence
    finally:
        await stop_gateway(first)

    second = await start_gateway(settings)
    try:
        await post_expiries(second, "q", 40)
        resumed = await collect(watch(second, after=last), 40)
        sequences = [e.sequence for e in seen + resumed]
        assert sequences == list(range(1, 81))
        assert len({e.event_id for e in seen + resumed}) == 80
    finally:
        await stop_gateway(second)


async def test_slow_subscriber_blocks_nobody_and_misses_nothing(gw: RunningGateway) -> None:
    total = 1500
    # A subscriber on its own channel that reads nothing while the load runs: its
    # HTTP/2 window fills up and the server must stop writing to it, and only to it.
    # No BDP probing keeps its flow-control window at the 64 KiB default.
    slow_channel = grpc.aio.insecure_channel(
        f"127.0.0.1:{gw.ports.grpc}", options=[("grpc.http2.bdp_probe", 0)]
    )
    slow_stub = status_service_pb2_grpc.StatusServiceStub(slow_channel)
    slow = slow_stub.WatchStatuses(pb.WatchStatusesRequest(after_sequence=0))
    fast = watch(gw, after=0)
    try:
        fast_task = asyncio.ensure_future(collect(fast, total, timeout=60))
        for start in range(0, total, 250):
            await post_expiries(gw, f"s{start}-", 250)
        fast_events = await fast_task
        assert [e.sequence for e in fast_events] == list(range(1, total + 1))

        slow_events = await collect(slow, total, timeout=60)  # type: ignore[arg-type]
        assert [e.sequence for e in slow_events] == list(range(1, total + 1))
    finally:
        slow.cancel()
        fast.cancel()  # type: ignore[attr-defined]
        await slow_channel.close()


async def test_many_subscribers_each_see_every_event_once(gw: RunningGateway) -> None:
    streams = [watch(gw) for _ in range(20)]
    for stream in streams:
        assert (await anext(aiter(stream))).caught_up
    await post_expiries(gw, "m", 100)
    results = await asyncio.gather(*(collect(s, 100) for s in streams))
    for events in results:
        assert [e.sequence for e in events] == list(range(1, 101))
    for stream in streams:
        stream.cancel()  # type: ignore[attr-defined]


def error_info(error: grpc.aio.AioRpcError) -> error_details_pb2.ErrorInfo:
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None
    [detail] = status.details
    info = error_details_pb2.ErrorInfo()
    assert detail.Unpack(info)
    return info


async def test_a_cursor_beyond_the_store_is_out_of_range(gw: RunningGateway) -> None:
    """A cursor from a reset database or another gateway must not be accepted and then
    silently never deliver: the client learns the last sequence and resynchronises."""
    await post_expiries(gw, "o", 3)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await anext(aiter(watch(gw, after=1000)))
    assert raised.value.code() == grpc.StatusCode.OUT_OF_RANGE
    info = error_info(raised.value)
    assert info.reason == "SEQUENCE_OUT_OF_RANGE"
    assert dict(info.metadata) == {"last_sequence": "3"}
    assert "3" in (raised.value.details() or "")

    # The last sequence itself is a fine cursor: caught up, then the next event.
    stream = watch(gw, after=3)
    assert (await anext(aiter(stream))).caught_up
    await post_expiries(gw, "p", 1)
    [event] = await collect(stream, 1)
    assert event.sequence == 4
    stream.cancel()  # type: ignore[attr-defined]


async def test_a_negative_cursor_is_invalid(gw: RunningGateway) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await anext(aiter(watch(gw, after=-1)))
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_info(raised.value).reason == "INVALID_ARGUMENT"


async def open_streams(
    target: str, count: int, metadata: tuple[tuple[str, str], ...] = ()
) -> tuple[list[grpc.aio.UnaryStreamCall], list[str]]:
    """Open ``count`` Watch streams at once, each filtering on its own session; each
    one's first answer: "caught_up", or the status code and details it ended with."""
    channel = grpc.aio.insecure_channel(target)
    stub = status_service_pb2_grpc.StatusServiceStub(channel)
    calls = [
        stub.WatchStatuses(
            pb.WatchStatusesRequest(
                filter=pb.StatusFilter(names=[f"sources/finbox/sessions/at-once-{i}"])
            ),
            metadata=metadata,
        )
        for i in range(count)
    ]

    async def first(call: grpc.aio.UnaryStreamCall) -> str:
        try:
            message = await asyncio.wait_for(call.read(), 60)
        except grpc.aio.AioRpcError as error:
            return f"{error.code().name}: {error.details()}"
        return "caught_up" if message.caught_up else f"unexpected {message}"

    outcomes = await asyncio.gather(*(first(call) for call in calls))
    return calls, outcomes


async def test_two_thousand_streams_opened_at_once_are_all_served(gw: RunningGateway) -> None:
    # grpc's server queue of calls not yet picked up drops some silently (CANCELLED,
    # nothing logged) once it holds more than 1,000: every stream must be served.
    calls, outcomes = await open_streams(f"127.0.0.1:{gw.ports.grpc}", 2000)
    try:
        assert collections.Counter(outcomes) == {"caught_up": 2000}
        # And they are live: an event for one of them reaches that one.
        await gw.post("finbox", finbox_expiry("at-once-1999"))
        message = await asyncio.wait_for(calls[1999].read(), 20)
        assert [e.status.name for e in message.events] == ["sources/finbox/sessions/at-once-1999"]
    finally:
        for call in calls:
            call.cancel()


async def test_streams_over_a_clients_limit_are_refused_with_the_limit(tmp_path: Path) -> None:
    token = "watch-many-token"
    config = tmp_path / "statusgate.toml"
    config.write_text(
        "[clients.many]\n"
        f'token_sha256 = "{hashlib.sha256(token.encode()).hexdigest()}"\n'
        'sources = ["*"]\n'
        "max_watch_streams = 1500\n"
    )
    settings = load_settings(
        config, http="127.0.0.1:0", grpc="127.0.0.1:0", store=f"sqlite:///{tmp_path / 'g.db'}"
    )
    running = await start_gateway(settings)
    try:
        calls, outcomes = await open_streams(
            f"127.0.0.1:{running.ports.grpc}", 2000, (("authorization", f"Bearer {token}"),)
        )
        counted = collections.Counter(outcomes)
        refused = "RESOURCE_EXHAUSTED: client 'many' already has its maximum of 1500 Watch streams"
        assert counted == {"caught_up": 1500, refused: 500}
        for call in calls:
            call.cancel()
    finally:
        await stop_gateway(running)
