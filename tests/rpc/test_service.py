"""The unary read API over a real gRPC server."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_status import rpc_status

from statusgate.v1 import status_pb2 as pb
from tests.conftest import RunningGateway
from tests.payloads import finbox_enrichment, finbox_expiry, finbox_upload


async def seed(gw: RunningGateway) -> None:
    await gw.post("finbox", finbox_upload("s1", ("a1", "COMPLETED"), ("a2", "PARTIAL")))
    await gw.post("finbox", finbox_upload("s10", ("a1", "COMPLETED")))
    await gw.post("finbox", finbox_expiry("s2"))
    await gw.post("setu", {"type": "UNKNOWN_TYPE"})


async def test_list_under_a_subject_selects_its_children_only(gw: RunningGateway) -> None:
    await seed(gw)
    listed = await gw.stub.ListStatuses(pb.ListStatusesRequest(parent="sources/finbox/sessions/s1"))
    assert [s.name for s in listed.statuses] == [
        "sources/finbox/sessions/s1/accounts/a1",
        "sources/finbox/sessions/s1/accounts/a2",
    ]


async def test_list_filters_and_pages_with_opaque_tokens(gw: RunningGateway) -> None:
    await seed(gw)
    request = pb.ListStatusesRequest(
        parent="sources/finbox", filter=pb.StatusFilter(kinds=[pb.KIND_SESSION]), page_size=2
    )
    first = await gw.stub.ListStatuses(request)
    assert [s.name for s in first.statuses] == [
        "sources/finbox/sessions/s1",
        "sources/finbox/sessions/s10",
    ]
    assert first.next_page_token
    request.page_token = first.next_page_token
    second = await gw.stub.ListStatuses(request)
    assert [s.name for s in second.statuses] == ["sources/finbox/sessions/s2"]
    assert second.next_page_token == ""

    terminal = await gw.stub.ListStatuses(
        pb.ListStatusesRequest(filter=pb.StatusFilter(terminal_only=True))
    )
    assert [s.name for s in terminal.statuses] == ["sources/finbox/sessions/s2"]
    partial = await gw.stub.ListStatuses(
        pb.ListStatusesRequest(filter=pb.StatusFilter(states=[pb.STATE_PARTIAL]))
    )
    assert [s.name for s in partial.statuses] == ["sources/finbox/sessions/s1/accounts/a2"]

    # A token is bound to its request: reusing it with another filter is refused.
    other = pb.ListStatusesRequest(parent="sources/finbox", page_token=first.next_page_token)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await gw.stub.ListStatuses(other)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_batch_get_reports_missing_names(gw: RunningGateway) -> None:
    await seed(gw)
    response = await gw.stub.BatchGetStatuses(
        pb.BatchGetStatusesRequest(
            names=["sources/finbox/sessions/s2", "sources/finbox/sessions/nope"]
        )
    )
    assert [s.name for s in response.statuses] == ["sources/finbox/sessions/s2"]
    assert list(response.missing_names) == ["sources/finbox/sessions/nope"]


async def test_list_status_events_is_the_subjects_history(gw: RunningGateway) -> None:
    await gw.post("finbox", finbox_upload("h1", ("a1", "COMPLETED")))
    await gw.post("finbox", finbox_enrichment("h1", ("a1", "completed")))
    name = "sources/finbox/sessions/h1"
    first = await gw.stub.ListStatusEvents(pb.ListStatusEventsRequest(name=name, page_size=1))
    assert len(first.events) == 1 and first.next_page_token
    second = await gw.stub.ListStatusEvents(
        pb.ListStatusEventsRequest(name=name, page_size=1, page_token=first.next_page_token)
    )
    events = [*first.events, *second.events]
    assert [e.status.state for e in events] == [pb.STATE_COMPLETED, pb.STATE_COMPLETED]
    assert [e.status.stage for e in events] == [pb.STAGE_UPLOAD, pb.STAGE_PROCESSING]
    assert [e.status.version for e in events] == [1, 2]
    assert events[1].previous_state == pb.STATE_COMPLETED
    assert events[0].previous_state == pb.STATE_UNSPECIFIED
    assert all(e.origin == pb.ORIGIN_WEBHOOK and e.delivery_id for e in events)
    assert events[0].sequence < events[1].sequence


async def test_errors_carry_error_info(gw: RunningGateway) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await gw.stub.GetStatus(pb.GetStatusRequest(name="sources/finbox/bogus/x"))
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    status = rpc_status.from_call(raised.value)  # type: ignore[arg-type]
    assert status is not None
    info = error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(info)
    assert info.reason == "INVALID_NAME" and info.domain == "statusgate.v1"


async def test_health_and_reflection_are_served(gw: RunningGateway) -> None:
    health = health_pb2_grpc.HealthStub(gw.channel)
    response = await health.Check(
        health_pb2.HealthCheckRequest(service="statusgate.v1.StatusService")
    )
    assert response.status == health_pb2.HealthCheckResponse.SERVING

    reflection = reflection_pb2_grpc.ServerReflectionStub(gw.channel)

    async def ask() -> list[str]:
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        async for answer in reflection.ServerReflectionInfo(iter([request])):
            return [s.name for s in answer.list_services_response.service]
        return []

    assert "statusgate.v1.StatusService" in await ask()


async def test_wait_status_returns_when_the_condition_holds(gw: RunningGateway) -> None:
    name = "sources/finbox/sessions/w1"
    await gw.post("finbox", finbox_upload("w1", ("a1", "COMPLETED")))
    waiting = asyncio.ensure_future(
        gw.stub.WaitStatus(
            pb.WaitStatusRequest(name=name, condition=pb.WaitCondition(terminal=True)),
            timeout=10,
        )
    )
    await asyncio.sleep(0.2)
    assert not waiting.done()
    await gw.post("finbox", finbox_enrichment("w1", ("a1", "completed")))
    status = await waiting
    assert status.terminal and status.state == pb.STATE_COMPLETED

    # Already true: answers at once.
    again = await gw.stub.WaitStatus(
        pb.WaitStatusRequest(name=name, condition=pb.WaitCondition(ready_to_fetch=True)),
        timeout=5,
    )
    assert again.ready_to_fetch


async def test_wait_status_deadline_exceeded(gw: RunningGateway) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await gw.stub.WaitStatus(
            pb.WaitStatusRequest(
                name="sources/finbox/sessions/never",
                condition=pb.WaitCondition(states=pb.StateSet(states=[pb.STATE_COMPLETED])),
            ),
            timeout=0.3,
        )
    assert raised.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED


async def test_oversized_messages_are_refused_without_harm(gw: RunningGateway) -> None:
    huge = "sources/finbox/sessions/" + "x" * (17 * 1024 * 1024)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await gw.stub.GetStatus(pb.GetStatusRequest(name=huge), timeout=10)
    assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    # The server is fine afterwards.
    await gw.post("finbox", finbox_expiry("after"))
    status = await gw.stub.GetStatus(pb.GetStatusRequest(name="sources/finbox/sessions/after"))
    assert status.state == pb.STATE_EXPIRED


async def test_every_page_under_a_subject_is_full_until_the_last(gw: RunningGateway) -> None:
    """The parent itself sorts first among its descendants; dropping it after the page
    was cut left the first page one short."""
    accounts = [(f"a{i}", "COMPLETED") for i in range(5)]
    await gw.post("finbox", finbox_upload("s1", *accounts))
    request = pb.ListStatusesRequest(parent="sources/finbox/sessions/s1", page_size=2)
    pages = []
    while True:
        page = await gw.stub.ListStatuses(request)
        pages.append([s.name for s in page.statuses])
        if not page.next_page_token:
            break
        request.page_token = page.next_page_token
    prefix = "sources/finbox/sessions/s1/accounts/"
    assert pages == [
        [prefix + "a0", prefix + "a1"],
        [prefix + "a2", prefix + "a3"],
        [prefix + "a4"],
    ]
