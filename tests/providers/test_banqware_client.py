"""The banqware client and poller against the fake banqware API, mTLS included."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from statusgate.core.errors import ApiError, Reason
from statusgate.core.names import parse_name
from statusgate.providers.banqware import BanqwareSource
from statusgate.providers.polling import Poller, PollReport
from statusgate.providers.registry import PROVIDERS
from statusgate.rpc.errors import code_of
from statusgate.upstream.http import CallScope
from statusgate.v1 import status_pb2 as pb
from tests.fakes import banqware
from tests.fakes.banqware import FakeBanqware
from tests.fakes.harness import banqware_api, set_env
from tests.fakes.server import reply
from tests.fakes.tls import make_pki

SESSION = "sources/bq/sessions/b1"


@pytest.fixture
async def fake(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeBanqware]:
    set_env(monkeypatch)
    server = FakeBanqware()
    await server.start()
    yield server
    await server.close()


def make_poller(fake: FakeBanqware, **api: object) -> Poller:
    source = BanqwareSource(id="bq", provider="banqware", api=banqware_api(fake, **api))
    return PROVIDERS.build_pollers({"bq": source})["bq"]


@pytest.fixture
async def poller(fake: FakeBanqware) -> AsyncIterator[Poller]:
    built = make_poller(fake)
    yield built
    await built.close()


async def poll(poller: Poller, name: str) -> PollReport:
    return await poller.poll(poller.target(parse_name(name)), None, CallScope.within(10))


async def test_status_and_details(fake: FakeBanqware, poller: Poller) -> None:
    fake.session("b1", "Accounts", "Finished", "PL61109010140000071219812874", count="1/1")
    answer = await poll(poller, SESSION)
    assert answer.error is None
    session, account = answer.updates
    assert (session.name, session.state, session.stage) == (
        SESSION,
        pb.STATE_COMPLETED,
        pb.STAGE_ACCOUNTS,
    )
    assert (session.progress.done, session.progress.total) == (1, 1)
    assert account.name == SESSION + "/accounts/PL61109010140000071219812874"
    [request] = fake.requests_to("status")
    assert request.query == {"sessionId": "b1"}
    assert request.headers["x-api-key"] == banqware.API_KEY


async def test_progress_from_a_count(fake: FakeBanqware, poller: Poller) -> None:
    fake.session("b1", "Transactions", "InProgress", count="2/3")
    session = (await poll(poller, SESSION)).updates[0]
    assert (session.state, session.stage) == (pb.STATE_IN_PROGRESS, pb.STAGE_TRANSACTIONS)
    assert (session.progress.done, session.progress.total) == (2, 3)


async def test_the_session_parameter_is_configurable(fake: FakeBanqware) -> None:
    poller = make_poller(fake, session_id_param="id")
    try:
        with pytest.raises(ApiError):  # the fake only knows sessionId
            await poll(poller, SESSION)
    finally:
        await poller.close()
    assert fake.requests_to("status")[0].query == {"id": "b1"}


@pytest.mark.parametrize(
    ("body", "code", "reason"),
    [
        (
            {"success": False, "message": "session belongs to another client"},
            grpc.StatusCode.FAILED_PRECONDITION,
            Reason.UPSTREAM_REJECTED,
        ),
        (
            {"errorCode": 404, "errorMessage": "Session not found"},
            grpc.StatusCode.NOT_FOUND,
            Reason.UPSTREAM_NOT_FOUND,
        ),
    ],
)
async def test_error_envelopes_sent_with_200(
    fake: FakeBanqware,
    poller: Poller,
    body: dict[str, object],
    code: grpc.StatusCode,
    reason: str,
) -> None:
    fake.session("b1", "Accounts", "InProgress")
    fake.always("status", reply(200, body))
    with pytest.raises(ApiError) as raised:
        await poll(poller, SESSION)
    assert (code_of(raised.value), raised.value.reason) == (code, reason)


async def test_payments_cannot_be_polled(poller: Poller) -> None:
    with pytest.raises(ApiError) as raised:
        poller.target(parse_name("sources/bq/payments/p1"))
    assert code_of(raised.value) == grpc.StatusCode.UNIMPLEMENTED
    assert raised.value.reason == Reason.POLLING_NOT_SUPPORTED


async def test_mutual_tls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    set_env(monkeypatch)
    pki = make_pki(tmp_path)
    fake = FakeBanqware(ssl_context=pki.server_context())
    await fake.start()
    fake.session("b1", "Accounts", "InProgress")
    with_cert = make_poller(
        fake, client_cert_file=pki.client_cert, client_key_file=pki.client_key, ca_file=pki.ca
    )
    without_cert = make_poller(fake, ca_file=pki.ca, retries=0)
    try:
        answer = await poll(with_cert, SESSION)
        assert answer.error is None and answer.updates[0].state == pb.STATE_IN_PROGRESS
        with pytest.raises(ApiError) as raised:
            await poll(without_cert, SESSION)
        assert code_of(raised.value) == grpc.StatusCode.UNAVAILABLE
    finally:
        await with_cert.close()
        await without_cert.close()
        await fake.close()
