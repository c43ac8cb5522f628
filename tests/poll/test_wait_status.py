"""WaitStatus polls the provider while it waits, and still ends at the deadline."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from statusgate.poll import waits
from statusgate.v1 import status_pb2 as pb
from tests.conftest import RunningGateway
from tests.poll.conftest import Fakes

SESSION = "sources/finbox/sessions/s1"


@pytest.fixture(autouse=True)
def quick_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(waits, "WAIT_POLL_FIRST", 0.1)
    monkeypatch.setattr(waits, "WAIT_POLL_LONGEST", 0.2)


def reason_of(error: grpc.aio.AioRpcError) -> str:
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None
    [detail] = status.details
    info = error_details_pb2.ErrorInfo()
    detail.Unpack(info)
    return str(info.reason)


def wait(gw: RunningGateway, name: str, timeout: float) -> asyncio.Future[pb.Status]:
    request = pb.WaitStatusRequest(name=name, condition=pb.WaitCondition(terminal=True))
    return asyncio.ensure_future(gw.stub.WaitStatus(request, timeout=timeout))


async def test_wait_status_is_woken_by_its_own_polls(pgw: RunningGateway, fakes: Fakes) -> None:
    fakes.finbox.uploaded("s1", ("a1", "COMPLETED"))
    fakes.finbox.processing("s1")
    waiting = wait(pgw, SESSION, timeout=30)
    async with asyncio.timeout(20):  # the unknown subject is polled at once
        while fakes.finbox.calls["upload_status"] == 0:
            await asyncio.sleep(0.01)
    assert not waiting.done()

    fakes.finbox.processed("s1", ("a1", "completed"))  # no webhook will say so
    status = await waiting
    assert status.terminal and status.state == pb.STATE_COMPLETED
    events = await pgw.stub.ListStatusEvents(pb.ListStatusEventsRequest(name=SESSION))
    assert events.events[-1].origin == pb.ORIGIN_POLL


async def test_wait_status_deadline_exceeded_while_polling(
    pgw: RunningGateway, fakes: Fakes
) -> None:
    fakes.finbox.uploaded("s1", ("a1", "COMPLETED"))
    fakes.finbox.processing("s1")
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await wait(pgw, SESSION, timeout=1)
    assert raised.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert fakes.finbox.calls["upload_status"] >= 1


async def test_wait_status_without_api_credentials_waits_for_webhooks(
    pgw: RunningGateway,
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await wait(pgw, "sources/bare/sessions/s1", timeout=0.5)
    assert raised.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED


async def test_wait_status_on_a_subject_nobody_knows_is_not_found(
    pgw: RunningGateway, fakes: Fakes
) -> None:
    """The provider says it does not know the session and the store never saw it: the
    answer is NOT_FOUND at once, not a wait to the deadline."""
    fakes.finbox.missing["ghost"] = 404
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await wait(pgw, "sources/finbox/sessions/ghost", timeout=60)
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
    assert reason_of(raised.value) == "UPSTREAM_NOT_FOUND"
    assert "SESSION_NOT_FOUND" in (raised.value.details() or "")


async def test_wait_status_on_a_known_subject_outlives_a_404(
    pgw: RunningGateway, fakes: Fakes
) -> None:
    """A subject the gateway has seen is not declared unknown by one 404 (a provider
    that lost it for a moment, or purged it): the wait goes on to its deadline."""
    fakes.finbox.uploaded("s1", ("a1", "COMPLETED"))
    [polled] = (await pgw.stub.PollStatuses(pb.PollStatusesRequest(names=[SESSION]))).results
    assert polled.status.state == pb.STATE_COMPLETED
    fakes.finbox.missing["s1"] = 404
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await wait(pgw, SESSION, timeout=1)
    assert raised.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert fakes.finbox.calls["upload_status"] >= 2
