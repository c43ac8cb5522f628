"""The reconciler: lost webhooks are healed by polling alone, on a schedule with backoff."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from statusgate.poll.reconciler import Reconciler
from statusgate.v1 import status_pb2 as pb
from tests.conftest import RunningGateway, start_gateway, stop_gateway
from tests.fakes.finbox import FinboxSession
from tests.payloads import finbox_upload
from tests.poll.conftest import Fakes, poll_settings

SESSION = "sources/finbox/sessions/s1"
FAST = {"quiet_seconds": 0.2, "interval_seconds": 0.1, "max_interval_seconds": 0.4}


async def test_a_lost_webhook_is_recovered_by_the_reconciler_alone(
    tmp_path: Path, fakes: Fakes
) -> None:
    gw = await start_gateway(
        poll_settings(tmp_path, fakes, poll=FAST, reconciler_tick_seconds=0.05)
    )
    try:
        code, answer = await gw.post("finbox", finbox_upload("s1", ("a1", "COMPLETED")))
        assert code == 200
        after = max(e["sequence"] for e in answer["events"])
        stream = gw.stub.WatchStatuses(
            pb.WatchStatusesRequest(
                after_sequence=after, filter=pb.StatusFilter(name_prefixes=[SESSION])
            )
        )
        # FinBox processed the session and sent the enrichment webhook, which was lost.
        fakes.finbox.uploaded("s1", ("a1", "COMPLETED"))
        fakes.finbox.processed("s1", ("a1", "completed"))

        events: list[pb.StatusEvent] = []
        async with asyncio.timeout(30):
            async for message in stream:
                events.extend(message.events)
                if any(e.status.name == SESSION and e.status.terminal for e in events):
                    break
        stream.cancel()  # type: ignore[attr-defined]
        assert all(e.origin == pb.ORIGIN_RECONCILE for e in events)
        session = await gw.stub.GetStatus(pb.GetStatusRequest(name=SESSION))
        assert (session.state, session.stage, session.ready_to_fetch) == (
            pb.STATE_COMPLETED,
            pb.STAGE_PROCESSING,
            True,
        )
        account = await gw.stub.GetStatus(pb.GetStatusRequest(name=SESSION + "/accounts/a1"))
        assert account.state == pb.STATE_COMPLETED and account.terminal
    finally:
        await stop_gateway(gw)


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC) + timedelta(minutes=1)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


async def started(tmp_path: Path, fakes: Fakes) -> tuple[RunningGateway, Reconciler, Clock]:
    """A gateway whose own reconciler is idle, and one driven tick by tick."""
    schedule = {"quiet_seconds": 10, "interval_seconds": 10, "max_interval_seconds": 40}
    gw = await start_gateway(
        poll_settings(tmp_path, fakes, poll=schedule, reconciler_tick_seconds=3600)
    )
    clock = Clock()
    reconciler = Reconciler(
        gw.gateway.store,
        gw.gateway.polling,
        gw.gateway.settings.sources,
        tick_seconds=3600,
        owner="test",
        clock=clock,
    )
    return gw, reconciler, clock


async def test_backoff_doubles_and_a_change_starts_it_over(tmp_path: Path, fakes: Fakes) -> None:
    gw, reconciler, clock = await started(tmp_path, fakes)
    try:
        fakes.finbox.sessions["s1"] = FinboxSession(upload_status="IN PROGRESS")
        await gw.stub.PollStatuses(pb.PollStatusesRequest(names=[SESSION]), timeout=10)
        calls = fakes.finbox.calls["upload_status"]

        polled = [await reconciler.run_once()]  # due: never reconciled
        for wait in (0, 11.5, 0, 11.5, 11.5, 23, 46, 46):
            clock.advance(wait)
            polled.append(await reconciler.run_once())
        # Intervals 10, 20, 40 (capped), 40: each poll found nothing new.
        assert polled == [1, 0, 1, 0, 0, 1, 0, 1, 1]
        assert fakes.finbox.calls["upload_status"] == calls + sum(polled)

        # A webhook changes the subject: due again as soon as it is quiet, backoff reset.
        await gw.post("finbox", finbox_upload("s1", ("a1", "PARTIAL")))
        clock.advance(11)
        assert await reconciler.run_once() >= 1
    finally:
        await stop_gateway(gw)


async def test_unpollable_and_unconfigured_subjects_are_left_alone(
    tmp_path: Path, fakes: Fakes
) -> None:
    gw, reconciler, clock = await started(tmp_path, fakes)
    try:
        payment = {"paymentId": "p1", "paymentStatus": "InProgress"}
        assert (await gw.post("banqware", payment))[0] == 200
        assert (await gw.post("bare", finbox_upload("s9", ("a1", "COMPLETED"))))[0] == 200

        assert await reconciler.run_once() == 1  # the payment, once; "bare" is skipped
        clock.advance(3600)
        assert await reconciler.run_once() == 0  # no status endpoint: not asked again
        assert fakes.banqware.calls.total() == 0
    finally:
        await stop_gateway(gw)
