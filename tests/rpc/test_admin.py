"""AdminService over gRPC: deliveries listed, opened and replayed while the gateway
serves, on both stores, through the one write path; scoped admin tokens see only their
sources; every new RPC needs the admin permission."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2

from statusgate.v1 import admin_service_pb2 as admin_pb
from statusgate.v1 import status_pb2 as pb
from tests import operating
from tests.conftest import RunningGateway
from tests.operating import ADMIN, FINBOX_ADMIN, READER, admin_stub, metadata, operating_gateway
from tests.payloads import finbox_expiry
from tests.store.conftest import postgres_url, store_url  # noqa: F401 - fixtures

MAPPED, UNMAPPED, REJECTED = (
    admin_pb.DELIVERY_VERDICT_MAPPED,
    admin_pb.DELIVERY_VERDICT_UNMAPPED,
    admin_pb.DELIVERY_VERDICT_REJECTED,
)


@pytest.fixture
def unfixed() -> Iterator[None]:
    """The tickets adapter knows only "open"; a test may "fix" it by adding "closed"."""
    yield
    operating.KNOWN_WORDS.pop("closed", None)


def fix_the_mapping() -> None:
    operating.KNOWN_WORDS["closed"] = operating.WORDS["closed"]


def reason(error: grpc.aio.AioRpcError) -> str:
    from grpc_status import rpc_status

    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None
    info = error_details_pb2.ErrorInfo()
    status.details[0].Unpack(info)
    return info.reason


async def post(gw: RunningGateway, path: str, payload: object) -> str:
    code, answer = await gw.post(path, payload)
    assert code in (200, 202, 400), (code, answer)
    delivery_id: str = answer["delivery_id"]
    return delivery_id


async def test_list_and_get_newest_first_with_events(tmp_path: Path) -> None:
    async with operating_gateway(tmp_path) as gw:
        admin = admin_stub(gw)
        first = await post(gw, "finbox", finbox_expiry("e1"))
        rejected = await post(gw, "finbox", b"{not json")
        later = await post(gw, "tickets/v2", {"ticket": "t1", "state": "open"})
        listed = await admin.ListDeliveries(
            admin_pb.ListDeliveriesRequest(), metadata=metadata(ADMIN)
        )
        assert [d.id for d in listed.deliveries] == [later, rejected, first]
        assert all(d.body == b"" for d in listed.deliveries)
        assert [d.verdict for d in listed.deliveries] == [MAPPED, REJECTED, MAPPED]
        assert listed.deliveries[0].path == "v2"
        assert [e.name for e in listed.deliveries[2].events] == ["sources/finbox/sessions/e1"]

        one = await admin.GetDelivery(
            admin_pb.GetDeliveryRequest(id=rejected), metadata=metadata(ADMIN)
        )
        assert one.body == b"{not json" and "not JSON" in one.detail
        assert one.headers["content-type"] == "application/json"

        by_verdict = admin_pb.ListDeliveriesRequest(
            filter=admin_pb.DeliveryFilter(verdicts=[REJECTED])
        )
        answer = await admin.ListDeliveries(by_verdict, metadata=metadata(ADMIN))
        assert [d.id for d in answer.deliveries] == [rejected]
        by_name = admin_pb.ListDeliveriesRequest(
            filter=admin_pb.DeliveryFilter(name="sources/finbox/sessions/e1")
        )
        answer = await admin.ListDeliveries(by_name, metadata=metadata(ADMIN))
        assert [d.id for d in answer.deliveries] == [first]

        # Paged: a token carries on where the page ended; it belongs to its filter.
        page = await admin.ListDeliveries(
            admin_pb.ListDeliveriesRequest(page_size=2), metadata=metadata(ADMIN)
        )
        assert len(page.deliveries) == 2 and page.next_page_token
        rest = await admin.ListDeliveries(
            admin_pb.ListDeliveriesRequest(page_size=2, page_token=page.next_page_token),
            metadata=metadata(ADMIN),
        )
        assert [d.id for d in rest.deliveries] == [first] and not rest.next_page_token
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await admin.ListDeliveries(
                admin_pb.ListDeliveriesRequest(
                    filter=by_verdict.filter, page_token=page.next_page_token
                ),
                metadata=metadata(ADMIN),
            )
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_scoped_admins_see_only_their_sources(tmp_path: Path) -> None:
    async with operating_gateway(tmp_path) as gw:
        admin = admin_stub(gw)
        finbox = await post(gw, "finbox", finbox_expiry("e1"))
        setu = await post(gw, "setu", {"type": "CONSENT_STATUS_UPDATE"})
        mine = metadata(FINBOX_ADMIN)
        listed = await admin.ListDeliveries(admin_pb.ListDeliveriesRequest(), metadata=mine)
        assert [d.id for d in listed.deliveries] == [finbox]
        asked = admin_pb.ListDeliveriesRequest(filter=admin_pb.DeliveryFilter(sources=["setu"]))
        assert list((await admin.ListDeliveries(asked, metadata=mine)).deliveries) == []
        # Another source's delivery is as unknown as one that never existed.
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await admin.GetDelivery(admin_pb.GetDeliveryRequest(id=setu), metadata=mine)
        assert (raised.value.code(), reason(raised.value)) == (
            grpc.StatusCode.NOT_FOUND,
            "DELIVERY_NOT_FOUND",
        )
        replayed = await admin.ReplayDeliveries(
            admin_pb.ReplayDeliveriesRequest(ids=[setu, finbox], dry_run=True), metadata=mine
        )
        assert [r.error.code for r in replayed.results] == [grpc.StatusCode.NOT_FOUND.value[0], 0]
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            by_name = admin_pb.DeliveryFilter(name="sources/setu/consents/c1")
            await admin.ListDeliveries(
                admin_pb.ListDeliveriesRequest(filter=by_name), metadata=mine
            )
        assert reason(raised.value) == "SOURCE_NOT_PERMITTED"


@pytest.mark.parametrize(
    "call",
    [
        lambda a, m: a.ListDeliveries(admin_pb.ListDeliveriesRequest(), metadata=m),
        lambda a, m: a.GetDelivery(admin_pb.GetDeliveryRequest(id="x"), metadata=m),
        lambda a, m: a.ReplayDeliveries(admin_pb.ReplayDeliveriesRequest(ids=["x"]), metadata=m),
    ],
)
async def test_every_admin_rpc_needs_the_admin_permission(tmp_path: Path, call: object) -> None:
    async with operating_gateway(tmp_path) as gw:
        admin = admin_stub(gw)
        for token, code in [
            (READER, grpc.StatusCode.PERMISSION_DENIED),
            ("wrong", grpc.StatusCode.UNAUTHENTICATED),
        ]:
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await call(admin, metadata(token))  # type: ignore[operator]
            assert raised.value.code() == code


async def test_replay_while_serving_after_a_mapping_fix(
    tmp_path: Path,
    store_url: str,  # noqa: F811 - the imported fixture
    unfixed: None,
) -> None:
    async with operating_gateway(tmp_path, store_url) as gw:
        admin = admin_stub(gw)
        opened = await post(gw, "tickets/v2", {"ticket": "t1", "state": "open"})
        closed = await post(gw, "tickets/v2", {"ticket": "t1", "state": "closed"})
        garbage = await post(gw, "tickets", b"\xff")
        watch = gw.stub.WatchStatuses(pb.WatchStatusesRequest(), metadata=metadata(READER))
        assert (await anext(aiter(watch))).caught_up

        fix_the_mapping()
        request = admin_pb.ReplayDeliveriesRequest(
            ids=[closed, "no-such-id", garbage, opened], dry_run=True
        )
        dry = await admin.ReplayDeliveries(request, metadata=metadata(ADMIN))
        results = {r.delivery_id: r for r in dry.results}
        assert [r.delivery_id for r in dry.results] == [closed, "no-such-id", garbage, opened]
        assert (results[closed].verdict_before, results[closed].verdict_after) == (UNMAPPED, MAPPED)
        [would] = results[closed].events
        assert (would.sequence, would.event_id) == (0, "")  # nothing assigned in a dry run
        assert (would.previous_state, would.status.state) == (
            pb.STATE_IN_PROGRESS,
            pb.STATE_COMPLETED,
        )
        assert results["no-such-id"].error.code == grpc.StatusCode.NOT_FOUND.value[0]
        assert (results[garbage].verdict_after, list(results[garbage].events)) == (REJECTED, [])
        # Replaying what already applied is a duplicate: nothing would change.
        assert (results[opened].verdict_after, list(results[opened].events)) == (MAPPED, [])
        # The dry run wrote nothing.
        status = await gw.stub.GetStatus(
            pb.GetStatusRequest(name="sources/tickets/payments/t1"), metadata=metadata(READER)
        )
        assert status.state == pb.STATE_IN_PROGRESS

        request.dry_run = False
        done = await admin.ReplayDeliveries(request, metadata=metadata(ADMIN))
        [applied] = next(r for r in done.results if r.delivery_id == closed).events
        assert applied.origin == pb.ORIGIN_REPLAY and applied.delivery_id == closed
        # Run exactly as posted: through the same sub-path.
        assert applied.status.provider_state == "v2:closed"
        status = await gw.stub.GetStatus(
            pb.GetStatusRequest(name="sources/tickets/payments/t1"), metadata=metadata(READER)
        )
        assert (status.state, status.sequence) == (pb.STATE_COMPLETED, applied.sequence)
        stored = await admin.GetDelivery(
            admin_pb.GetDeliveryRequest(id=closed), metadata=metadata(ADMIN)
        )
        assert (stored.verdict, stored.detail) == (MAPPED, "")
        assert [e.sequence for e in stored.events] == [applied.sequence]
        # Watch streams see the replay like any other change.
        message = await asyncio.wait_for(anext(aiter(watch)), 10)
        assert [e.sequence for e in message.events] == [applied.sequence]
        watch.cancel()

        # Again: the ordering rules hold, a duplicate emits nothing.
        again = await admin.ReplayDeliveries(
            admin_pb.ReplayDeliveriesRequest(ids=[closed]), metadata=metadata(ADMIN)
        )
        assert list(again.results[0].events) == []


async def test_replay_by_filter_pages_oldest_first(tmp_path: Path, unfixed: None) -> None:
    async with operating_gateway(tmp_path) as gw:
        admin = admin_stub(gw)
        kept = [await post(gw, "tickets", {"ticket": f"t{i}", "state": "closed"}) for i in range(3)]
        fix_the_mapping()
        request = admin_pb.ReplayDeliveriesRequest(
            filter=admin_pb.DeliveryFilter(verdicts=[UNMAPPED]), page_size=2
        )
        first = await admin.ReplayDeliveries(request, metadata=metadata(ADMIN))
        assert [r.delivery_id for r in first.results] == kept[:2] and first.next_page_token
        request.page_token = first.next_page_token
        second = await admin.ReplayDeliveries(request, metadata=metadata(ADMIN))
        assert [r.delivery_id for r in second.results] == kept[2:] and not second.next_page_token
        assert all(r.verdict_after == MAPPED for r in [*first.results, *second.results])

        for wrong in (
            admin_pb.ReplayDeliveriesRequest(),
            admin_pb.ReplayDeliveriesRequest(ids=["x"], filter=admin_pb.DeliveryFilter()),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await admin.ReplayDeliveries(wrong, metadata=metadata(ADMIN))
            assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_reflection_names_the_admin_service(tmp_path: Path) -> None:
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    async with operating_gateway(tmp_path) as gw:
        reflection = reflection_pb2_grpc.ServerReflectionStub(gw.channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        async for answer in reflection.ServerReflectionInfo(iter([request])):
            names = {s.name for s in answer.list_services_response.service}
            assert {"statusgate.v1.StatusService", "statusgate.v1.AdminService"} <= names
            break
