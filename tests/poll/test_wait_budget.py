"""WaitStatus cannot be turned into a stream of provider calls: a read-only client's
waits never poll, waits on one subject share one schedule, and polling for waits stays
within each source's upstream budget and each client's bound."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest

from statusgate.poll import waits
from statusgate.v1 import status_pb2 as pb
from tests.conftest import RunningGateway, start_gateway, stop_gateway
from tests.poll.conftest import Fakes, poll_settings

READER, POLLER = "token-reader", "token-poller"


def sha(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


CLIENTS = {
    "reader": {"token_sha256": sha(READER), "sources": ["*"], "permissions": ["read"]},
    "poller": {
        "token_sha256": sha(POLLER),
        "sources": ["*"],
        "permissions": ["read", "poll"],
        "max_polled_waits": 4,
    },
}


@pytest.fixture(autouse=True)
def quick_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(waits, "WAIT_POLL_FIRST", 0.05)
    monkeypatch.setattr(waits, "WAIT_POLL_LONGEST", 0.1)


Start = Callable[..., Any]


@pytest.fixture
async def start(tmp_path: Path, fakes: Fakes) -> AsyncIterator[Start]:
    running: list[RunningGateway] = []

    async def _start(**api: Any) -> RunningGateway:
        settings = poll_settings(tmp_path, fakes, api=api, clients=CLIENTS)
        gw = await start_gateway(settings)
        running.append(gw)
        return gw

    yield _start
    for gw in running:
        await stop_gateway(gw)


def calls(fakes: Fakes) -> int:
    return sum(fakes.finbox.calls.values())


async def wait_all(gw: RunningGateway, names: list[str], token: str, timeout: float) -> None:
    metadata = (("authorization", f"Bearer {token}"),)
    request = lambda name: pb.WaitStatusRequest(  # noqa: E731
        name=name, condition=pb.WaitCondition(terminal=True)
    )
    results = await asyncio.gather(
        *(gw.stub.WaitStatus(request(n), timeout=timeout, metadata=metadata) for n in names),
        return_exceptions=True,
    )
    assert all(
        isinstance(r, grpc.aio.AioRpcError) and r.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        for r in results
    ), results


def sessions(n: int) -> list[str]:
    return [f"sources/finbox/sessions/w{i}" for i in range(n)]


async def test_a_read_only_clients_waits_never_call_the_provider(
    start: Start, fakes: Fakes
) -> None:
    gw = await start()
    # Before: 300 waits of a read-only client made ~1,200 provider calls in 4 s.
    await wait_all(gw, sessions(300), READER, timeout=2)
    assert calls(fakes) == 0


async def test_waits_on_one_subject_share_one_schedule(start: Start, fakes: Fakes) -> None:
    gw = await start(wait_calls_per_second=1000)
    one = "sources/finbox/sessions/shared"
    await wait_all(gw, [one], POLLER, timeout=1)
    alone = calls(fakes)
    assert alone >= 2  # it was polled, more than once
    fakes.finbox.calls.clear()
    await wait_all(gw, [one] * 50, POLLER, timeout=1)
    # Fifty waiters poll like one (a round more or less: timing is the machine's).
    assert calls(fakes) <= alone + 4


async def test_polling_for_waits_stays_within_the_sources_budget(
    start: Start, fakes: Fakes
) -> None:
    gw = await start(wait_calls_per_second=2)
    started = asyncio.get_running_loop().time()
    await wait_all(gw, sessions(4), POLLER, timeout=2)
    elapsed = asyncio.get_running_loop().time() - started
    # A bucket of 2 calls refilled at 2/s; the very first polls reserve one call each
    # and cost two (FinBox's upload status and progress), so up to 4 calls of debt.
    # Unbounded, these four waits make over a hundred calls in 2 s.
    assert calls(fakes) <= 2 + 2 * elapsed + 4


async def test_a_client_holds_at_most_its_bound_of_polled_waits(start: Start, fakes: Fakes) -> None:
    gw = await start(wait_calls_per_second=1000)
    waiting = asyncio.ensure_future(wait_all(gw, sessions(20), POLLER, timeout=1.5))
    await asyncio.sleep(0.7)
    assert gw.gateway.parts.waits.schedules() == 4
    await waiting
    polled = {r.path.split("/")[2] for r in fakes.finbox.requests_to("upload_status")}
    assert len(polled) == 4
    assert gw.gateway.parts.waits.schedules() == 0
