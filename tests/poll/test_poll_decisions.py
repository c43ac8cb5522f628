"""What one poll makes of the providers' answers: one change per subject, FinBox's
"completed, so fetch", Setu's DELIVERED, and terminal subjects answered from the store."""

from __future__ import annotations

import asyncio
import collections

from statusgate.v1 import status_pb2 as pb
from tests.conftest import RunningGateway
from tests.poll.conftest import Fakes
from tests.poll.test_poll_statuses import poll

SESSION = "sources/finbox/sessions/s1"


async def events_of(gw: RunningGateway, name: str) -> list[pb.StatusEvent]:
    response = await gw.stub.ListStatusEvents(pb.ListStatusEventsRequest(name=name))
    return list(response.events)


async def test_one_poll_is_one_change_per_subject(pgw: RunningGateway, fakes: Fakes) -> None:
    """Upload COMPLETED, progress completed and session_status's verdicts, learnt by one
    poll, make the session COMPLETED at PROCESSING in one event: never the provisional
    IN_PROGRESS that progress alone would have said."""
    fakes.finbox.uploaded("s1", ("a1", "COMPLETED"))
    fakes.finbox.processed("s1", ("a1", "completed"))
    stream = pgw.stub.WatchStatuses(pb.WatchStatusesRequest())
    assert (await anext(aiter(stream))).caught_up

    [result] = await poll(pgw, SESSION)
    assert not result.HasField("error")
    assert result.upstream_calls == 3  # upload status, progress, session_status
    assert (result.status.state, result.status.stage, result.status.terminal) == (
        pb.STATE_COMPLETED,
        pb.STAGE_PROCESSING,
        True,
    )
    events = await events_of(pgw, SESSION)
    assert [(e.status.state, e.status.stage) for e in events] == [
        (pb.STATE_COMPLETED, pb.STAGE_PROCESSING)
    ]
    assert events[0].previous_state == pb.STATE_UNSPECIFIED
    # The account (upload, then its verdict) and the statement (upload, then progress)
    # are one change each too.
    account, statement = SESSION + "/accounts/a1", SESSION + "/statements/st-a1"
    for name, stage in ((account, pb.STAGE_PROCESSING), (statement, pb.STAGE_PROCESSING)):
        [event] = await events_of(pgw, name)
        assert (event.status.state, event.status.stage) == (pb.STATE_COMPLETED, stage), name
    # The Watch stream saw each subject once.
    seen: collections.Counter[str] = collections.Counter()
    async with asyncio.timeout(20):
        async for message in stream:
            seen.update(e.status.name for e in message.events)
            if SESSION in seen:
                break
    stream.cancel()  # type: ignore[attr-defined]
    assert seen[SESSION] == seen[account] == seen[statement] == 1
    # What the upload answer said about the account outlives the verdict that followed.
    stored = await pgw.stub.GetStatus(pb.GetStatusRequest(name=account))
    assert stored.attributes["bank_name"] == "HDFC" and stored.provider_state == "completed"


async def test_a_later_poll_moves_a_subject_in_one_step(pgw: RunningGateway, fakes: Fakes) -> None:
    """A session stored at UPLOAD whose next poll learns the upload again and the final
    verdict moves straight to the verdict."""
    fakes.finbox.uploaded("s1", ("a1", "COMPLETED"))
    [first] = await poll(pgw, SESSION)
    assert (first.status.state, first.status.stage) == (pb.STATE_COMPLETED, pb.STAGE_UPLOAD)
    fakes.finbox.processed("s1", ("a1", "failed"))
    [second] = await poll(pgw, SESSION)
    assert second.status.state == pb.STATE_FAILED and second.status.terminal
    events = await events_of(pgw, SESSION)
    assert [e.status.state for e in events] == [pb.STATE_COMPLETED, pb.STATE_FAILED]
    assert events[1].previous_state == pb.STATE_COMPLETED


async def test_finbox_progress_completed_means_ready_to_fetch(
    pgw: RunningGateway, fakes: Fakes
) -> None:
    """FinBox: once session_progress is completed, fetch. The state waits for the
    per-account verdict of session_status, which has not answered yet."""
    fakes.finbox.uploaded("s1", ("a1", "COMPLETED"))
    fakes.finbox.processing("s1", "completed")  # session_status still says 400
    waiting = asyncio.ensure_future(
        pgw.stub.WaitStatus(
            pb.WaitStatusRequest(name=SESSION, condition=pb.WaitCondition(ready_to_fetch=True)),
            timeout=60,
        )
    )
    [result] = await poll(pgw, SESSION)
    assert not result.HasField("error")
    status = result.status
    assert (status.state, status.stage) == (pb.STATE_IN_PROGRESS, pb.STAGE_PROCESSING)
    assert status.ready_to_fetch and not status.terminal
    assert (await waiting).ready_to_fetch

    # The verdict, when it comes, settles the state.
    fakes.finbox.processed("s1", ("a1", "completed"))
    [settled] = await poll(pgw, SESSION)
    assert (settled.status.state, settled.status.terminal) == (pb.STATE_COMPLETED, True)
    assert settled.status.ready_to_fetch


async def test_setu_delivered_is_completed_but_not_ready_to_fetch(
    pgw: RunningGateway, fakes: Fakes
) -> None:
    fakes.setu.data_session("ds1", "ACTIVE", ("ref-ready", "READY"), ("ref-done", "DELIVERED"))
    name = "sources/setu/data-sessions/ds1"
    [ready, delivered] = await poll(pgw, name + "/accounts/ref-ready", name + "/accounts/ref-done")
    assert (ready.status.state, ready.status.ready_to_fetch) == (pb.STATE_COMPLETED, True)
    assert delivered.status.state == pb.STATE_COMPLETED and delivered.status.terminal
    assert not delivered.status.ready_to_fetch


async def test_polling_a_terminal_subject_calls_nobody(pgw: RunningGateway, fakes: Fakes) -> None:
    fakes.finbox.uploaded("s1", ("a1", "COMPLETED"))
    fakes.finbox.processed("s1", ("a1", "completed"))
    [first] = await poll(pgw, SESSION)
    assert first.status.terminal
    sent = fakes.finbox.calls.total()
    events = await events_of(pgw, SESSION)

    account = SESSION + "/accounts/a1"
    [again, account_again] = await poll(pgw, SESSION, account)
    assert again.status == first.status and not again.HasField("error")
    assert account_again.status.terminal and not account_again.HasField("error")
    assert again.upstream_calls == account_again.upstream_calls == 0
    assert fakes.finbox.calls.total() == sent
    assert await events_of(pgw, SESSION) == events


async def test_a_terminal_child_is_answered_from_the_store(
    pgw: RunningGateway, fakes: Fakes
) -> None:
    """A failed statement never changes again, even while its session goes on."""
    session = fakes.finbox.uploaded("s1", ("a1", "COMPLETED"))
    session.accounts[0]["statements"][0]["statement_status"] = "failed"
    statement = SESSION + "/statements/st-a1"
    [first] = await poll(pgw, statement)
    assert first.status.state == pb.STATE_FAILED and first.status.terminal
    parent = await pgw.stub.GetStatus(pb.GetStatusRequest(name=SESSION))
    assert not parent.terminal
    sent = fakes.finbox.calls.total()
    [again] = await poll(pgw, statement)
    assert (again.status, again.upstream_calls) == (first.status, 0)
    assert fakes.finbox.calls.total() == sent
