"""The FinBox client and poller against the fake FinBox API."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest

from statusgate.core.errors import ApiError, Reason
from statusgate.core.names import parse_name
from statusgate.providers.finbox import FinboxSource
from statusgate.providers.polling import Poller, UnconfiguredPoller
from statusgate.providers.registry import PROVIDERS
from statusgate.rpc.errors import code_of
from statusgate.upstream.http import CallScope
from statusgate.v1 import status_pb2 as pb
from tests.fakes import finbox
from tests.fakes.finbox import FakeFinbox
from tests.fakes.harness import finbox_api, set_env

SESSION = "sources/fb/sessions/s1"


@pytest.fixture
async def fake(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeFinbox]:
    set_env(monkeypatch)
    server = FakeFinbox()
    await server.start()
    yield server
    await server.close()


@pytest.fixture
async def poller(fake: FakeFinbox) -> AsyncIterator[Poller]:
    source = FinboxSource(id="fb", provider="finbox", api=finbox_api(fake))
    built = PROVIDERS.build_pollers({"fb": source})["fb"]
    yield built
    await built.close()


async def poll(poller: Poller, name: str, current: pb.Status | None = None) -> dict[str, pb.Status]:
    target = poller.target(parse_name(name))
    answer = await poller.poll(target, current, CallScope.within(10))
    assert answer.error is None, answer.error
    return {status.name: status for status in answer.updates}


async def test_upload_only_while_processing_was_not_requested(
    fake: FakeFinbox, poller: Poller
) -> None:
    fake.uploaded("s1", ("a1", "COMPLETED"))
    updates = await poll(poller, SESSION)

    session = updates[SESSION]
    assert (session.state, session.stage, session.terminal) == (
        pb.STATE_COMPLETED,
        pb.STAGE_UPLOAD,
        False,
    )
    account = updates[SESSION + "/accounts/a1"]
    assert account.attributes["account_number"] == "XXXXXXXXXX3135"  # masked
    assert SESSION + "/statements/st-a1" in updates
    assert fake.calls["session_status"] == 0
    [request] = fake.requests_to("upload_status")
    assert request.headers["x-api-key"] == finbox.API_KEY
    assert request.headers["server-hash"] == finbox.SERVER_HASH


async def test_processing_counts_statements(fake: FakeFinbox, poller: Poller) -> None:
    fake.uploaded("s1", ("a1", "COMPLETED"), ("a2", "PARTIAL"))
    fake.processing("s1")
    session = (await poll(poller, SESSION))[SESSION]
    assert (session.state, session.stage) == (pb.STATE_IN_PROGRESS, pb.STAGE_PROCESSING)
    assert (session.progress.done, session.progress.total) == (0, 2)


async def test_progress_completed_alone_is_not_terminal(fake: FakeFinbox, poller: Poller) -> None:
    """The race: progress "completed" before session_status has the verdicts must not
    make the session terminal, or the enrichment webhook's PARTIAL would be dropped.
    It is ready to fetch all the same: FinBox says to fetch once progress is completed."""
    fake.uploaded("s1", ("a1", "COMPLETED"))
    fake.processing("s1", "completed")  # session_status still answers 400
    session = (await poll(poller, SESSION))[SESSION]
    assert (session.state, session.stage) == (pb.STATE_IN_PROGRESS, pb.STAGE_PROCESSING)
    assert not session.terminal and session.ready_to_fetch
    assert session.provider_state == "completed"
    assert fake.calls["session_status"] == 1


async def test_session_status_gives_the_verdict(fake: FakeFinbox, poller: Poller) -> None:
    fake.uploaded("s1", ("a1", "COMPLETED"), ("a2", "COMPLETED"))
    fake.processed("s1", ("a1", "completed"), ("a2", "failed"))
    updates = await poll(poller, SESSION)

    session = updates[SESSION]
    assert (session.state, session.stage) == (pb.STATE_PARTIAL, pb.STAGE_PROCESSING)
    assert session.terminal and session.ready_to_fetch
    failed = updates[SESSION + "/accounts/a2"]
    assert failed.state == pb.STATE_FAILED
    assert failed.error.reason == pb.ERROR_REASON_DATA_INCONSISTENT


async def test_an_account_is_polled_through_its_session(poller: Poller) -> None:
    target = poller.target(parse_name(SESSION + "/accounts/a1"))
    assert str(target) == SESSION
    with pytest.raises(ApiError) as raised:
        poller.target(parse_name("sources/fb/consents/c1"))
    assert code_of(raised.value) == grpc.StatusCode.UNIMPLEMENTED


async def test_ids_are_one_path_segment(fake: FakeFinbox, poller: Poller) -> None:
    fake.uploaded("s:1?x=%", ("a1", "COMPLETED"))
    updates = await poll(poller, "sources/fb/sessions/s:1?x=%")
    assert updates["sources/fb/sessions/s:1?x=%"].state == pb.STATE_COMPLETED


async def test_entity_from_analysis_and_recovered_payloads(
    fake: FakeFinbox, poller: Poller
) -> None:
    fake.entity_progress["e1"] = [
        {"status": "completed", "statement_id": "st1", "source": "pdf", "message": ""},
        {"status": None, "statement_id": "st2", "source": "pdf", "message": None},
    ]
    fake.payloads["link-1"] = [
        {
            "entity_id": "e1",
            "statement_id": "st1",
            "link_id": "link-1",
            "progress": "completed",
            "reason": "",
            "date_time": "2025-11-13 06:48:44",
        },
        {
            "entity_id": "e1",
            "statement_id": "",
            "link_id": "link-1",
            "progress": "failed",
            "reason": "wrong password",
            "date_time": "2025-11-13 06:40:00",
        },
    ]
    current = pb.Status(name="sources/fb/entities/e1", attributes={"link_id": "link-1"})
    answer = await poller.poll(parse_name("sources/fb/entities/e1"), current, CallScope.within(10))
    assert answer.error is None
    names = [status.name for status in answer.updates]
    # Recovered history first, oldest first; then the analysis.
    assert names[0] == "sources/fb/entities/e1"
    assert answer.updates[0].state == pb.STATE_FAILED
    assert answer.updates[-1].name == "sources/fb/entities/e1"
    assert answer.updates[-1].state == pb.STATE_COMPLETED
    assert "sources/fb/entities/e1/statements/st1" in names
    assert "sources/fb/entities/e1/statements/st2" not in names  # not reported yet
    [request] = fake.requests_to("webhook_payloads")
    assert request.query == {"link_id": "link-1"}


async def test_without_credentials_polling_names_the_settings(fake: FakeFinbox) -> None:
    source = FinboxSource(id="fb", provider="finbox", api={"base_url": fake.url})
    poller = PROVIDERS.build_pollers({"fb": source})["fb"]
    assert isinstance(poller, UnconfiguredPoller)
    with pytest.raises(ApiError) as raised:
        await poller.poll(parse_name(SESSION), None, CallScope.within(1))
    assert code_of(raised.value) == grpc.StatusCode.FAILED_PRECONDITION
    assert raised.value.reason == Reason.POLLING_NOT_CONFIGURED
    assert "sources.fb.api.api_key_env" in raised.value.message
    assert "sources.fb.api.server_hash_env" in raised.value.message


async def test_a_named_but_unset_credential_stops_start_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOT_SET_ANYWHERE", raising=False)
    source = FinboxSource(
        id="fb",
        provider="finbox",
        api={"api_key_env": "NOT_SET_ANYWHERE", "server_hash_env": "NOT_SET_ANYWHERE"},
    )
    with pytest.raises(ValueError, match="names is not set"):
        PROVIDERS.build_pollers({"fb": source})
