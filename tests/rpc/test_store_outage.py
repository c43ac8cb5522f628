"""A store outage is UNAVAILABLE with reason STORE_UNAVAILABLE in every RPC, whichever
of the RPC's store calls it hits: clients retry on it, and never read it as their own
mistake or as a bug (UNKNOWN)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import grpc
import pytest
from google.rpc import error_details_pb2
from google.rpc import status_pb2 as rpc_status_pb2
from grpc_status import rpc_status

from statusgate.app import Gateway, load_settings
from statusgate.rpc.errors import code_name
from statusgate.store.base import IngestRequest, IngestResult, StatusQuery, StoreUnavailableError
from statusgate.store.sqlite import SqliteStore
from statusgate.v1 import status_pb2 as pb
from statusgate.v1 import status_service_pb2, status_service_pb2_grpc
from tests.conftest import RunningGateway, stop_gateway
from tests.fakes.finbox import FakeFinbox
from tests.fakes.harness import finbox_api, set_env
from tests.payloads import finbox_upload

SESSION = "sources/finbox/sessions/s1"
# Has no events: ListStatusEvents asks the store whether it exists at all.
UNKNOWN = "sources/finbox/sessions/nobody"
EVERY_CALL = frozenset(
    {"get_status", "get_statuses", "list_statuses", "list_events", "read_events", "ingest"}
)


class OutageStore(SqliteStore):
    """A real SQLite store whose calls named in ``down`` fail as they do in an outage."""

    down: frozenset[str] = frozenset()

    def _check(self, call: str) -> None:
        if call in self.down:
            raise StoreUnavailableError(f"{call}: the store is down (test outage)")

    async def get_status(self, name: str) -> pb.Status | None:
        self._check("get_status")
        return await super().get_status(name)

    async def get_statuses(self, names: Sequence[str]) -> dict[str, pb.Status]:
        self._check("get_statuses")
        return await super().get_statuses(names)

    async def list_statuses(
        self, query: StatusQuery, *, after_name: str = "", limit: int = 100
    ) -> list[pb.Status]:
        self._check("list_statuses")
        return await super().list_statuses(query, after_name=after_name, limit=limit)

    async def list_events(
        self, name: str, *, after_sequence: int = 0, limit: int = 100
    ) -> list[pb.StatusEvent]:
        self._check("list_events")
        return await super().list_events(name, after_sequence=after_sequence, limit=limit)

    async def read_events(self, *, after_sequence: int, limit: int) -> list[pb.StatusEvent]:
        self._check("read_events")
        return await super().read_events(after_sequence=after_sequence, limit=limit)

    async def ingest(self, request: IngestRequest) -> IngestResult:
        self._check("ingest")
        return await super().ingest(request)


@dataclass
class Outage:
    gw: RunningGateway
    store: OutageStore


@pytest.fixture
async def outage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Outage]:
    """A gateway whose FinBox source polls a fake, on a store that already holds
    ``SESSION``'s events from an earlier run: its Watch streams replay from the store,
    not from the in-memory tail."""
    set_env(monkeypatch)
    finbox = FakeFinbox()
    await finbox.start()
    finbox.uploaded("s1", ("a1", "COMPLETED"))
    finbox.processing("s1")
    db = tmp_path / "statusgate.db"
    settings = load_settings(
        None,
        http="127.0.0.1:0",
        grpc="127.0.0.1:0",
        api="127.0.0.1:0",
        store=f"sqlite:///{db}",
        sources={
            "finbox": {"provider": "finbox", "api": finbox_api(finbox), "poll": {"enabled": False}}
        },
    )
    earlier = await start(Gateway(settings))
    try:
        assert (await earlier.post("finbox", finbox_upload("s1", ("a1", "COMPLETED"))))[0] == 200
    finally:
        await stop_gateway(earlier)
    store = OutageStore(db)
    running = await start(Gateway(settings, store=store))
    try:
        yield Outage(running, store)
    finally:
        await stop_gateway(running)
        await finbox.close()


async def start(gateway: Gateway) -> RunningGateway:
    ports = await gateway.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{ports.grpc}")
    stub = status_service_pb2_grpc.StatusServiceStub(channel)
    return RunningGateway(gateway, ports, aiohttp.ClientSession(), channel, stub)  # type: ignore[arg-type]


def reason_of(status: rpc_status_pb2.Status) -> str:
    info = error_details_pb2.ErrorInfo()
    assert status.details and status.details[0].Unpack(info)
    assert info.domain == "statusgate.v1"
    return str(info.reason)


async def answer(gw: RunningGateway, rpc: str, name: str) -> tuple[str, str]:
    """How ``rpc`` about ``name`` fails: its code's name and ErrorInfo reason. PollStatuses
    fails name by name, so there it is the name's result that fails."""
    stub = gw.stub
    condition = pb.WaitCondition(states=pb.StateSet(states=[pb.STATE_FAILED]))
    try:
        match rpc:
            case "GetStatus":
                await stub.GetStatus(pb.GetStatusRequest(name=name))
            case "BatchGetStatuses":
                await stub.BatchGetStatuses(pb.BatchGetStatusesRequest(names=[name]))
            case "ListStatuses":
                await stub.ListStatuses(pb.ListStatusesRequest(parent=name))
            case "ListStatusEvents":
                await stub.ListStatusEvents(pb.ListStatusEventsRequest(name=name))
            case "WatchStatuses":
                stream = stub.WatchStatuses(pb.WatchStatusesRequest(after_sequence=0))
                await anext(aiter(stream))  # type: ignore[call-overload]
            case "PollStatuses":
                response = await stub.PollStatuses(pb.PollStatusesRequest(names=[name]), timeout=20)
                [result] = response.results
                assert result.HasField("error"), result
                return code_name(result.error.code), reason_of(result.error)
            case "WaitStatus":
                await stub.WaitStatus(
                    pb.WaitStatusRequest(name=name, condition=condition), timeout=20
                )
            case _:
                raise AssertionError(f"no call for {rpc}")
    except grpc.aio.AioRpcError as error:
        status = rpc_status.from_call(error)  # type: ignore[arg-type]
        assert status is not None, f"{error.code()}: {error.details()}"
        return error.code().name, reason_of(status)
    raise AssertionError(f"{rpc} succeeded despite the outage")


# (RPC, the subject it asks about, the store calls that fail). Each RPC with the whole
# store down, and with only the one call down that it makes after another succeeded.
OUTAGES = [
    ("GetStatus", SESSION, EVERY_CALL),
    ("BatchGetStatuses", SESSION, EVERY_CALL),
    ("ListStatuses", SESSION, EVERY_CALL),
    ("ListStatusEvents", SESSION, EVERY_CALL),
    ("ListStatusEvents", UNKNOWN, frozenset({"get_status"})),
    ("WatchStatuses", SESSION, EVERY_CALL),
    ("PollStatuses", SESSION, EVERY_CALL),
    ("PollStatuses", SESSION, frozenset({"ingest"})),
    ("WaitStatus", SESSION, EVERY_CALL),
]


def case_id(rpc: str, name: str, down: frozenset[str]) -> str:
    return f"{rpc}-{'all' if down == EVERY_CALL else '+'.join(sorted(down))}"


@pytest.mark.parametrize(
    ("rpc", "name", "down"), [pytest.param(*case, id=case_id(*case)) for case in OUTAGES]
)
async def test_a_store_outage_is_unavailable_in_every_rpc(
    outage: Outage, rpc: str, name: str, down: frozenset[str]
) -> None:
    outage.store.down = down
    assert await answer(outage.gw, rpc, name) == ("UNAVAILABLE", "STORE_UNAVAILABLE")


def test_every_rpc_is_covered() -> None:
    methods = status_service_pb2.DESCRIPTOR.services_by_name["StatusService"].methods
    assert {rpc for rpc, _, _ in OUTAGES} == {m.name for m in methods}
