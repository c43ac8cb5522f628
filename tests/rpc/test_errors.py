"""The code and reason of every error the gRPC API answers, pinned: clients switch on
them, so a refactoring of how handlers fail must not change a single one."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration
from google.rpc import error_details_pb2
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_status import rpc_status

from statusgate.app import load_settings
from statusgate.rpc.access import PERMISSIONS
from statusgate.rpc.server import RpcServer
from statusgate.rpc.service import StatusService
from statusgate.v1 import admin_service_pb2, status_service_pb2, status_service_pb2_grpc
from statusgate.v1 import status_pb2 as pb
from tests.conftest import RunningGateway, start_gateway, stop_gateway
from tests.payloads import finbox_expiry, finbox_upload

READER = "token-reader"
POLLER = "token-poller"
ADMIN = "token-admin"


def sha(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


CONFIG = f"""
[sources.finbox]
provider = "finbox"
[sources.setu]
provider = "setu"

[clients.reader]
token_sha256 = "{sha(READER)}"
sources = ["finbox"]
permissions = ["read"]
max_watch_streams = 1

[clients.poller]
token_sha256 = "{sha(POLLER)}"
sources = ["*"]
permissions = ["poll"]

[clients.ops]
token_sha256 = "{sha(ADMIN)}"
sources = ["*"]
permissions = ["admin"]
"""

SESSION = "sources/finbox/sessions/e1"
UNKNOWN = "sources/finbox/sessions/nobody"
SETU = "sources/setu/consents/c1"
Failure = tuple[grpc.StatusCode, str]


def md(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


async def failure(call: Awaitable[object]) -> Failure:
    """The code and ErrorInfo reason the call failed with."""
    try:
        await call
    except grpc.aio.AioRpcError as error:
        status = rpc_status.from_call(error)  # type: ignore[arg-type]
        assert status is not None, f"{error.code()} without a google.rpc.Status"
        info = error_details_pb2.ErrorInfo()
        assert status.details[0].Unpack(info)
        assert info.domain == "statusgate.v1"
        return error.code(), info.reason
    raise AssertionError("the call succeeded")


async def first_message(stream: object) -> object:
    return await anext(aiter(stream))  # type: ignore[call-overload]


@pytest.fixture
async def gw(tmp_path: Path) -> AsyncIterator[RunningGateway]:
    config = tmp_path / "statusgate.toml"
    config.write_text(CONFIG)
    settings = load_settings(
        config,
        http="127.0.0.1:0",
        grpc="127.0.0.1:0",
        api="127.0.0.1:0",
        store=f"sqlite:///{tmp_path / 'g.db'}",
    )
    running = await start_gateway(settings)
    assert (await running.post("finbox", finbox_upload("e1", ("a1", "COMPLETED"))))[0] == 200
    try:
        yield running
    finally:
        await stop_gateway(running)


Call = Callable[[RunningGateway], Awaitable[object]]

# (what the client does, the code and reason it gets); every call carries the admin's
# token unless it is about who asks.
CASES: dict[str, tuple[Call, grpc.StatusCode, str]] = {
    "get-invalid-name": (
        lambda gw: gw.stub.GetStatus(
            pb.GetStatusRequest(name="sources/finbox/bogus/x"), metadata=md(ADMIN)
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_NAME",
    ),
    "get-unknown-source": (
        lambda gw: gw.stub.GetStatus(
            pb.GetStatusRequest(name="sources/nowhere/sessions/x"), metadata=md(ADMIN)
        ),
        grpc.StatusCode.NOT_FOUND,
        "SOURCE_NOT_FOUND",
    ),
    "get-unknown-status": (
        lambda gw: gw.stub.GetStatus(pb.GetStatusRequest(name=UNKNOWN), metadata=md(ADMIN)),
        grpc.StatusCode.NOT_FOUND,
        "STATUS_NOT_FOUND",
    ),
    "batch-too-many": (
        lambda gw: gw.stub.BatchGetStatuses(
            pb.BatchGetStatusesRequest(names=[SESSION] * 1001), metadata=md(ADMIN)
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "TOO_MANY_NAMES",
    ),
    "batch-invalid-name": (
        lambda gw: gw.stub.BatchGetStatuses(
            pb.BatchGetStatusesRequest(names=[SESSION, "nonsense"]), metadata=md(ADMIN)
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_NAME",
    ),
    "list-invalid-parent": (
        lambda gw: gw.stub.ListStatuses(
            pb.ListStatusesRequest(parent="sources/finbox/bogus/x"), metadata=md(ADMIN)
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_NAME",
    ),
    "list-invalid-filter": (
        lambda gw: gw.stub.ListStatuses(
            pb.ListStatusesRequest(filter=pb.StatusFilter(name_prefixes=["x"])),
            metadata=md(ADMIN),
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_ARGUMENT",
    ),
    "list-negative-page-size": (
        lambda gw: gw.stub.ListStatuses(pb.ListStatusesRequest(page_size=-1), metadata=md(ADMIN)),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_ARGUMENT",
    ),
    "list-bogus-page-token": (
        lambda gw: gw.stub.ListStatuses(
            pb.ListStatusesRequest(page_token="bogus"), metadata=md(ADMIN)
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_ARGUMENT",
    ),
    "events-unknown-status": (
        lambda gw: gw.stub.ListStatusEvents(
            pb.ListStatusEventsRequest(name=UNKNOWN), metadata=md(ADMIN)
        ),
        grpc.StatusCode.NOT_FOUND,
        "STATUS_NOT_FOUND",
    ),
    "events-negative-page-size": (
        lambda gw: gw.stub.ListStatusEvents(
            pb.ListStatusEventsRequest(name=SESSION, page_size=-1), metadata=md(ADMIN)
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_ARGUMENT",
    ),
    "events-bogus-page-token": (
        lambda gw: gw.stub.ListStatusEvents(
            pb.ListStatusEventsRequest(name=SESSION, page_token="bogus"), metadata=md(ADMIN)
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_ARGUMENT",
    ),
    "watch-invalid-filter": (
        lambda gw: first_message(
            gw.stub.WatchStatuses(
                pb.WatchStatusesRequest(filter=pb.StatusFilter(names=["nonsense"])),
                metadata=md(ADMIN),
            )
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_NAME",
    ),
    "poll-too-many": (
        lambda gw: gw.stub.PollStatuses(
            pb.PollStatusesRequest(names=[SESSION] * 101), metadata=md(ADMIN)
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "TOO_MANY_NAMES",
    ),
    "poll-negative-staleness": (
        lambda gw: gw.stub.PollStatuses(
            pb.PollStatusesRequest(names=[SESSION], max_staleness=Duration(seconds=-1)),
            metadata=md(ADMIN),
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_ARGUMENT",
    ),
    "wait-without-condition": (
        lambda gw: gw.stub.WaitStatus(pb.WaitStatusRequest(name=SESSION), metadata=md(ADMIN)),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_CONDITION",
    ),
    "wait-invalid-name": (
        lambda gw: gw.stub.WaitStatus(
            pb.WaitStatusRequest(name="nonsense", condition=pb.WaitCondition(terminal=True)),
            metadata=md(ADMIN),
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_NAME",
    ),
    # Who asks.
    "no-token": (
        lambda gw: gw.stub.GetStatus(pb.GetStatusRequest(name=SESSION)),
        grpc.StatusCode.UNAUTHENTICATED,
        "UNAUTHENTICATED",
    ),
    "unknown-token": (
        lambda gw: gw.stub.ListStatuses(pb.ListStatusesRequest(), metadata=md("guess")),
        grpc.StatusCode.UNAUTHENTICATED,
        "UNAUTHENTICATED",
    ),
    "no-token-on-watch": (
        lambda gw: first_message(gw.stub.WatchStatuses(pb.WatchStatusesRequest())),
        grpc.StatusCode.UNAUTHENTICATED,
        "UNAUTHENTICATED",
    ),
    "reader-polls": (
        lambda gw: gw.stub.PollStatuses(
            pb.PollStatusesRequest(names=[SESSION]), metadata=md(READER)
        ),
        grpc.StatusCode.PERMISSION_DENIED,
        "PERMISSION_DENIED",
    ),
    "poller-reads": (
        lambda gw: gw.stub.GetStatus(pb.GetStatusRequest(name=SESSION), metadata=md(POLLER)),
        grpc.StatusCode.PERMISSION_DENIED,
        "PERMISSION_DENIED",
    ),
    "poller-watches": (
        lambda gw: first_message(
            gw.stub.WatchStatuses(pb.WatchStatusesRequest(), metadata=md(POLLER))
        ),
        grpc.StatusCode.PERMISSION_DENIED,
        "PERMISSION_DENIED",
    ),
    "poller-waits": (
        lambda gw: gw.stub.WaitStatus(
            pb.WaitStatusRequest(name=SESSION, condition=pb.WaitCondition(terminal=True)),
            metadata=md(POLLER),
        ),
        grpc.StatusCode.PERMISSION_DENIED,
        "PERMISSION_DENIED",
    ),
    "reader-gets-other-source": (
        lambda gw: gw.stub.GetStatus(pb.GetStatusRequest(name=SETU), metadata=md(READER)),
        grpc.StatusCode.PERMISSION_DENIED,
        "SOURCE_NOT_PERMITTED",
    ),
    # Scope before existence: an unconfigured source outside the scope is not found
    # to be unconfigured.
    "reader-gets-unconfigured-source": (
        lambda gw: gw.stub.GetStatus(
            pb.GetStatusRequest(name="sources/nowhere/sessions/x"), metadata=md(READER)
        ),
        grpc.StatusCode.PERMISSION_DENIED,
        "SOURCE_NOT_PERMITTED",
    ),
    "reader-lists-other-source": (
        lambda gw: gw.stub.ListStatuses(
            pb.ListStatusesRequest(parent="sources/setu"), metadata=md(READER)
        ),
        grpc.StatusCode.PERMISSION_DENIED,
        "SOURCE_NOT_PERMITTED",
    ),
    "reader-batch-other-source": (
        lambda gw: gw.stub.BatchGetStatuses(
            pb.BatchGetStatusesRequest(names=[SESSION, SETU]), metadata=md(READER)
        ),
        grpc.StatusCode.PERMISSION_DENIED,
        "SOURCE_NOT_PERMITTED",
    ),
    "reader-events-other-source": (
        lambda gw: gw.stub.ListStatusEvents(
            pb.ListStatusEventsRequest(name=SETU), metadata=md(READER)
        ),
        grpc.StatusCode.PERMISSION_DENIED,
        "SOURCE_NOT_PERMITTED",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
async def test_each_error_keeps_its_code_and_reason(gw: RunningGateway, case: str) -> None:
    call, code, reason = CASES[case]
    assert await failure(call(gw)) == (code, reason)


async def test_a_list_statuses_token_is_refused_by_list_status_events(
    gw: RunningGateway,
) -> None:
    """Both requests serialize alike (a name in field 1), so the fingerprint matches: the
    position it carries, a status name, must still not pass for a sequence."""
    await gw.post("finbox", finbox_upload("e1", ("a1", "COMPLETED"), ("a2", "COMPLETED")))
    listed = await gw.stub.ListStatuses(
        pb.ListStatusesRequest(parent=SESSION, page_size=1), metadata=md(ADMIN)
    )
    assert listed.next_page_token
    events = gw.stub.ListStatusEvents(
        pb.ListStatusEventsRequest(name=SESSION, page_token=listed.next_page_token),
        metadata=md(ADMIN),
    )
    assert await failure(events) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT")


async def test_a_second_watch_stream_beyond_the_limit(gw: RunningGateway) -> None:
    first = gw.stub.WatchStatuses(pb.WatchStatusesRequest(), metadata=md(READER))
    assert (await anext(aiter(first))).caught_up
    second = gw.stub.WatchStatuses(pb.WatchStatusesRequest(), metadata=md(READER))
    assert await failure(first_message(second)) == (
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "TOO_MANY_STREAMS",
    )
    first.cancel()


async def test_shutdown_ends_watch_and_wait_with_shutting_down(gw: RunningGateway) -> None:
    stream = gw.stub.WatchStatuses(pb.WatchStatusesRequest(), metadata=md(ADMIN))
    assert (await anext(aiter(stream))).caught_up
    waiting = asyncio.ensure_future(
        failure(
            gw.stub.WaitStatus(
                pb.WaitStatusRequest(name=SESSION, condition=pb.WaitCondition(terminal=True)),
                metadata=md(ADMIN),
                timeout=10,
            )
        )
    )
    await asyncio.sleep(0.2)  # the wait is following the hub
    await gw.gateway.hub.close()
    unavailable = (grpc.StatusCode.UNAVAILABLE, "SHUTTING_DOWN")
    assert await failure(first_message(stream)) == unavailable
    assert await waiting == unavailable


async def test_permissions_allow_what_they_name(gw: RunningGateway) -> None:
    await gw.post("finbox", finbox_expiry("e2"))
    name = "sources/finbox/sessions/e2"
    status = await gw.stub.GetStatus(pb.GetStatusRequest(name=name), metadata=md(READER))
    assert status.state == pb.STATE_EXPIRED
    # Polling is not configured for these sources: the call succeeds, the name fails.
    for token in (POLLER, ADMIN):
        response = await gw.stub.PollStatuses(
            pb.PollStatusesRequest(names=[name]), metadata=md(token)
        )
        assert [r.name for r in response.results] == [name]


async def test_reflection_stays_open(gw: RunningGateway) -> None:
    reflection = reflection_pb2_grpc.ServerReflectionStub(gw.channel)
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    async for answer in reflection.ServerReflectionInfo(iter([request])):
        names = [s.name for s in answer.list_services_response.service]
        assert "statusgate.v1.StatusService" in names
        break


async def test_poll_statuses_without_a_poller_is_unimplemented(gw: RunningGateway) -> None:
    service = StatusService(gw.gateway.store, gw.gateway.hub, ["finbox"], poller=None)
    server = RpcServer(service)
    port = await server.start("127.0.0.1:0")
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = status_service_pb2_grpc.StatusServiceStub(channel)
            polled = stub.PollStatuses(pb.PollStatusesRequest(names=[SESSION]))
            assert await failure(polled) == (grpc.StatusCode.UNIMPLEMENTED, "NOT_IMPLEMENTED")
    finally:
        await server.stop(0)


def test_every_rpc_has_exactly_one_permission() -> None:
    methods = [
        *status_service_pb2.DESCRIPTOR.services_by_name["StatusService"].methods,
        *admin_service_pb2.DESCRIPTOR.services_by_name["AdminService"].methods,
    ]
    assert set(PERMISSIONS) == {m.name for m in methods}
    assert len(PERMISSIONS) == len(methods)  # no name is shared by the two services
    assert {rpc for rpc, permission in PERMISSIONS.items() if permission == "poll"} == {
        "PollStatuses"
    }
    assert {rpc for rpc, permission in PERMISSIONS.items() if permission == "admin"} == {
        "ListDeliveries",
        "GetDelivery",
        "ReplayDeliveries",
    }
