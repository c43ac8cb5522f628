"""The Setu client and poller against the fake Setu API: consents, data sessions and
the bearer token (one login shared by concurrent callers, refreshed once on 401)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest

from statusgate.core.errors import ApiError, Reason
from statusgate.core.names import parse_name
from statusgate.providers.polling import Poller, PollReport
from statusgate.providers.registry import PROVIDERS
from statusgate.providers.setu import SetuSource
from statusgate.rpc.errors import code_of
from statusgate.upstream.http import CallScope
from statusgate.v1 import status_pb2 as pb
from tests.fakes import setu
from tests.fakes.harness import set_env, setu_api
from tests.fakes.setu import FakeSetu


@pytest.fixture
async def fake(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeSetu]:
    set_env(monkeypatch)
    server = FakeSetu()
    await server.start()
    yield server
    await server.close()


def make_poller(fake: FakeSetu, **api: object) -> Poller:
    source = SetuSource(id="st", provider="setu", api=setu_api(fake, **api))
    return PROVIDERS.build_pollers({"st": source})["st"]


@pytest.fixture
async def poller(fake: FakeSetu) -> AsyncIterator[Poller]:
    built = make_poller(fake)
    yield built
    await built.close()


async def poll(poller: Poller, name: str, current: pb.Status | None = None) -> PollReport:
    target = poller.target(parse_name(name))
    return await poller.poll(target, current, CallScope.within(10))


async def test_consent_and_its_listed_data_sessions(fake: FakeSetu, poller: Poller) -> None:
    fake.consent("c1", "ACTIVE", ("ds1", "COMPLETED"))
    answer = await poll(poller, "sources/st/consents/c1")
    assert answer.error is None
    by_name = {s.name: s for s in answer.updates}
    consent = by_name["sources/st/consents/c1"]
    assert (consent.state, consent.stage) == (pb.STATE_ACTIVE, pb.STAGE_CONSENT)
    assert consent.HasField("occurred_at")  # a new state: stamped when it was seen
    assert consent.attributes["consent_handle"] == "handle-c1"
    listed = by_name["sources/st/data-sessions/ds1"]
    assert listed.state == pb.STATE_COMPLETED and listed.ready_to_fetch
    assert listed.attributes["consent_id"] == "c1"
    [request] = fake.requests_to("consent")
    assert request.headers["x-product-instance-id"] == setu.PRODUCT_INSTANCE_ID
    assert request.headers["authorization"].startswith("Bearer token-")


async def test_an_unchanged_consent_carries_no_new_time(fake: FakeSetu, poller: Poller) -> None:
    """Otherwise every poll of an ACTIVE consent would be a new event (newer time)."""
    fake.consent("c1", "ACTIVE")
    current = pb.Status(name="sources/st/consents/c1", state=pb.STATE_ACTIVE)
    [consent] = (await poll(poller, "sources/st/consents/c1", current)).updates
    assert not consent.HasField("occurred_at")
    fake.consent("c1", "PAUSED")
    [paused] = (await poll(poller, "sources/st/consents/c1", current)).updates
    assert paused.state == pb.STATE_PAUSED and paused.HasField("occurred_at")


async def test_a_fip_account_is_polled_through_its_data_session(
    fake: FakeSetu, poller: Poller
) -> None:
    fake.data_session("ds1", "PARTIAL", ("ref-1", "READY"), ("ref-2", "DENIED"))
    answer = await poll(poller, "sources/st/data-sessions/ds1/accounts/ref-1")
    by_name = {s.name: s for s in answer.updates}
    assert by_name["sources/st/data-sessions/ds1/accounts/ref-1"].ready_to_fetch
    assert by_name["sources/st/data-sessions/ds1/accounts/ref-2"].state == pb.STATE_REJECTED
    session = by_name["sources/st/data-sessions/ds1"]
    assert session.state == pb.STATE_PARTIAL and session.terminal  # nothing pending
    with pytest.raises(ApiError) as raised:
        poller.target(parse_name("sources/st/sessions/s1"))
    assert code_of(raised.value) == grpc.StatusCode.UNIMPLEMENTED


async def test_one_login_for_concurrent_callers_and_one_refresh_on_401(
    fake: FakeSetu, poller: Poller
) -> None:
    for i in range(20):
        fake.data_session(f"ds{i}", "ACTIVE")
    names = [f"sources/st/data-sessions/ds{i}" for i in range(20)]

    answers = await asyncio.gather(*(poll(poller, name) for name in names))
    assert all(a.error is None for a in answers)
    assert fake.calls["login"] == 1

    fake.expire_tokens()
    answers = await asyncio.gather(*(poll(poller, name) for name in names))
    assert all(a.error is None for a in answers)
    assert fake.calls["login"] == 2  # one refresh, shared by the 20 callers that met a 401
    assert fake.calls["data_session"] == 20 + 20 * 2


async def test_refused_client_credentials(fake: FakeSetu, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_SETU_CLIENT_SECRET", "wrong")
    fake.consent("c1", "ACTIVE")
    poller = make_poller(fake)
    try:
        with pytest.raises(ApiError) as raised:
            await poll(poller, "sources/st/consents/c1")
    finally:
        await poller.close()
    assert code_of(raised.value) == grpc.StatusCode.PERMISSION_DENIED
    assert raised.value.reason == Reason.UPSTREAM_AUTH_FAILED
    assert "Setu login" in raised.value.message
    assert "wrong" not in raised.value.message  # never a secret


async def test_listing_failures_do_not_fail_the_consent(fake: FakeSetu, poller: Poller) -> None:
    from tests.fakes.server import reply

    fake.consent("c1", "PENDING")
    fake.always("consent_sessions", reply(404, setu.envelope(404, "NotFound", "none")))
    answer = await poll(poller, "sources/st/consents/c1")
    assert answer.error is None
    assert [s.name for s in answer.updates] == ["sources/st/consents/c1"]
