"""The front door, every answer it gives (see README.md), driven over real HTTP."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import grpc

from statusgate.store.base import DeliveryVerdict
from statusgate.v1 import status_pb2 as pb
from tests.conftest import RunningGateway, gateway_settings, start_gateway, stop_gateway
from tests.payloads import finbox_enrichment, finbox_expiry, finbox_upload
from tests.scrape import scrape


async def test_mapped_webhook_becomes_a_status_served_over_grpc(gw: RunningGateway) -> None:
    code, body = await gw.post("finbox", finbox_upload("s1", ("a1", "COMPLETED")))
    assert code == 200
    assert body["delivery_id"]
    names = {e["name"] for e in body["events"]}
    assert names == {"sources/finbox/sessions/s1", "sources/finbox/sessions/s1/accounts/a1"}

    session = await gw.stub.GetStatus(pb.GetStatusRequest(name="sources/finbox/sessions/s1"))
    assert session.state == pb.STATE_COMPLETED
    assert session.stage == pb.STAGE_UPLOAD
    assert not session.terminal
    assert session.provider == pb.PROVIDER_FINBOX
    assert session.version == 1
    account = await gw.stub.GetStatus(
        pb.GetStatusRequest(name="sources/finbox/sessions/s1/accounts/a1")
    )
    assert account.parent == "sources/finbox/sessions/s1"
    assert account.kind == pb.KIND_ACCOUNT
    assert account.attributes["bank_name"] == "HDFC"


async def test_duplicate_delivery_is_acknowledged_and_makes_no_event(gw: RunningGateway) -> None:
    payload = finbox_upload("s1", ("a1", "COMPLETED"))
    first_code, first = await gw.post("finbox", payload)
    second_code, second = await gw.post("finbox", payload)
    assert (first_code, second_code) == (200, 200)
    assert len(first["events"]) == 2
    assert second["events"] == []
    assert second["delivery_id"] != first["delivery_id"]
    history = await gw.stub.ListStatusEvents(
        pb.ListStatusEventsRequest(name="sources/finbox/sessions/s1")
    )
    assert len(history.events) == 1
    # Both deliveries are kept.
    kept = await gw.gateway.store.list_deliveries([DeliveryVerdict.MAPPED], source="finbox")
    assert {d.id for d in kept} == {first["delivery_id"], second["delivery_id"]}


async def test_out_of_order_delivery_never_moves_a_subject_backwards(gw: RunningGateway) -> None:
    code, _ = await gw.post("finbox", finbox_enrichment("s2", ("a1", "completed")))
    assert code == 200
    code, late = await gw.post("finbox", finbox_upload("s2", ("a1", "PARTIAL")))
    assert code == 200
    session = await gw.stub.GetStatus(pb.GetStatusRequest(name="sources/finbox/sessions/s2"))
    assert (session.state, session.stage) == (pb.STATE_COMPLETED, pb.STAGE_PROCESSING)
    assert session.terminal and session.ready_to_fetch
    account = await gw.stub.GetStatus(
        pb.GetStatusRequest(name="sources/finbox/sessions/s2/accounts/a1")
    )
    assert account.stage == pb.STAGE_PROCESSING
    assert late["events"] == []


async def test_terminal_subject_never_changes(gw: RunningGateway) -> None:
    await gw.post("finbox", finbox_expiry("s3"))
    _, body = await gw.post("finbox", finbox_upload("s3", ("a1", "COMPLETED")))
    session = await gw.stub.GetStatus(pb.GetStatusRequest(name="sources/finbox/sessions/s3"))
    assert session.state == pb.STATE_EXPIRED and session.terminal and session.version == 1
    assert "sources/finbox/sessions/s3" not in {e["name"] for e in body["events"]}


async def test_unknown_source_is_404(gw: RunningGateway) -> None:
    code, body = await gw.post("nope", finbox_expiry("s1"))
    assert code == 404
    assert body["error"]["code"] == "unknown_source"


async def test_body_over_the_limit_is_413(gw: RunningGateway) -> None:
    huge = json.dumps({"event_name": "x", "pad": "y" * (1024 * 1024)}).encode()
    code, body = await gw.post("finbox", huge)
    assert code == 413
    assert body["error"]["code"] == "body_too_large"

    # Chunked, without a Content-Length, is refused just the same.
    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(20):
            yield b"x" * 100_000

    async with gw.http.post(gw.url("/webhooks/finbox"), data=chunks()) as response:
        assert response.status == 413


async def test_not_json_is_400_and_kept_as_rejected(gw: RunningGateway) -> None:
    code, body = await gw.post("finbox", b"{not json")
    assert code == 400
    assert body["error"]["code"] == "invalid_payload"
    assert "not JSON" in body["error"]["message"]
    code, body = await gw.post("finbox", [1, 2, 3])
    assert code == 400
    assert "not an object" in body["error"]["message"]
    rejected = await gw.gateway.store.list_deliveries([DeliveryVerdict.REJECTED])
    assert [d.body for d in rejected] == [b"{not json", b"[1, 2, 3]"]


async def test_unknown_shape_is_202_and_kept_as_unmapped(gw: RunningGateway) -> None:
    code, body = await gw.post("finbox", {"event_name": "SOMETHING_NEW", "session_id": "s"})
    assert code == 202
    unmapped = await gw.gateway.store.list_deliveries([DeliveryVerdict.UNMAPPED])
    assert [d.id for d in unmapped] == [body["delivery_id"]]
    assert json.loads(unmapped[0].body)["event_name"] == "SOMETHING_NEW"


async def test_store_unavailable_is_503_never_4xx(gw: RunningGateway) -> None:
    await gw.gateway.store.close()
    code, body = await gw.post("finbox", finbox_expiry("s9"))
    assert code == 503
    assert body["error"]["code"] == "store_unavailable"
    async with gw.http.get(gw.url("/readyz")) as response:
        assert response.status == 503


async def test_health_ready_and_metrics(gw: RunningGateway) -> None:
    async with gw.http.get(gw.url("/healthz")) as response:
        assert response.status == 200
    async with gw.http.get(gw.url("/readyz")) as response:
        assert response.status == 200
    await gw.post("finbox", finbox_expiry("m1"))
    await gw.post("nope", finbox_expiry("m1"))
    # Metrics are on the API listener, not on the public webhook door.
    async with gw.http.get(gw.url("/metrics")) as response:
        assert response.status == 404
    metrics = await scrape(gw.http, gw.api_url("/metrics"))
    labels = {"source": "finbox", "provider": "finbox"}
    assert metrics.value("statusgate_webhooks_total", **labels, verdict="mapped") == 1
    assert metrics.value("statusgate_webhook_ack_seconds_count", **labels) == 1
    assert "nope" not in metrics.label_values("statusgate_webhooks_total", "source")


async def test_concurrent_webhooks_share_commits(gw: RunningGateway) -> None:
    commits_before = gw.gateway.store.commits  # type: ignore[attr-defined]
    codes = await asyncio.gather(*(gw.post("finbox", finbox_expiry(f"c{i}")) for i in range(200)))
    assert all(code == 200 for code, _ in codes)
    sequences = sorted(body["events"][0]["sequence"] for _, body in codes)
    assert sequences == list(range(1, 201))
    listed = await gw.stub.ListStatuses(
        pb.ListStatusesRequest(parent="sources/finbox", page_size=1000)
    )
    assert len(listed.statuses) == 200
    # Group commit: many webhooks per transaction, not one sync each.
    assert gw.gateway.store.commits - commits_before < 100  # type: ignore[attr-defined]


async def test_grpc_read_errors(gw: RunningGateway) -> None:
    for name, code in [
        ("not-a-name", grpc.StatusCode.INVALID_ARGUMENT),
        ("sources/finbox/sessions/unknown", grpc.StatusCode.NOT_FOUND),
        ("sources/other/sessions/x", grpc.StatusCode.NOT_FOUND),
    ]:
        try:
            await gw.stub.GetStatus(pb.GetStatusRequest(name=name))
        except grpc.aio.AioRpcError as error:
            assert error.code() == code, name
        else:
            raise AssertionError(f"{name} did not fail")


async def test_retention_runs_in_the_gateway(tmp_path: Path) -> None:
    # A retention of about 0.1 s, so the test need not wait for days.
    settings = gateway_settings(
        tmp_path, retention={"deliveries_days": 0.1 / 86400, "interval_seconds": 3600}
    )
    gw = await start_gateway(settings)
    try:
        code, _ = await gw.post("finbox", {"event_name": "NEW_KIND"})
        assert code == 202
        await asyncio.sleep(0.3)
        assert await gw.gateway.retention.prune_once() == 1
        assert await gw.gateway.store.list_deliveries([DeliveryVerdict.UNMAPPED]) == []
    finally:
        await stop_gateway(gw)


async def test_not_ready_once_shutdown_begins(gw: RunningGateway) -> None:
    assert await gw.gateway.ready()
    await gw.gateway.stop()
    assert not await gw.gateway.ready()
