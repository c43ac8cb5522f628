"""The ReBIT poller against the fake AA: ``POST /Consent/handle`` signed with the FIU's
key and authorised by the token service's token (kept until it expires), the AA's
answers and errors as the standard has them, and polls through a real gateway."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from pydantic import SecretStr

from statusgate.core.errors import ApiError, Reason
from statusgate.core.names import parse_name
from statusgate.providers.polling import Poller, PollReport
from statusgate.providers.rebit import RebitSource
from statusgate.providers.rebit.client import RebitClient, RebitPoller
from statusgate.providers.rebit.jws import load_signer
from statusgate.providers.registry import PROVIDERS
from statusgate.rpc.errors import code_of
from statusgate.upstream.http import CallScope, HttpClient
from statusgate.v1 import status_pb2 as pb
from statusgate.web.auth import JwsVerifier, VerifiableRequest
from tests.conftest import start_gateway, stop_gateway
from tests.fakes import rebit
from tests.fakes.harness import rebit_source, set_env
from tests.fakes.rebit import FakeRebitAA
from tests.fakes.server import reply
from tests.providers.rebit_support import SOURCE, ReBIT, rebit_settings

HANDLE = "sources/rb/consents/h1"


@pytest.fixture
async def aa(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeRebitAA]:
    set_env(monkeypatch)
    server = FakeRebitAA()
    await server.start()
    yield server
    await server.close()


def source_on(aa: FakeRebitAA, **options: Any) -> RebitSource:
    api = options.pop("api", {})
    return RebitSource.model_validate({"id": "rb", **rebit_source(aa, **api), **options})


@pytest.fixture
async def poller(aa: FakeRebitAA) -> AsyncIterator[Poller]:
    built = PROVIDERS.build_pollers({"rb": source_on(aa)})["rb"]
    yield built
    await built.close()


async def poll(poller: Poller, name: str = HANDLE) -> PollReport:
    return await poller.poll(poller.target(parse_name(name)), None, CallScope.within(10))


async def failure(poller: Poller, name: str = HANDLE) -> ApiError:
    try:
        answer = await poll(poller, name)
    except ApiError as error:
        return error
    assert answer.error is not None, answer
    return answer.error


# --- the request ----------------------------------------------------------------------------


async def test_the_request_is_signed_authorised_and_in_the_standards_shape(
    aa: FakeRebitAA, poller: Poller
) -> None:
    aa.consent("h1", "READY", "c-1")
    answer = await poll(poller)

    [request] = aa.requests_to("consent_handle")
    body = request.json()
    assert body.keys() == {"ver", "timestamp", "txnid", "ConsentHandle"}
    assert (body["ver"], body["ConsentHandle"]) == ("2.0.0", "h1")
    # The signature covers the exact bytes sent, with the FIU's key and key id.
    JwsVerifier([aa.fiu_key.public_key()]).verify(
        VerifiableRequest(headers=request.headers, body=request.body)
    )
    protected = json.loads(
        base64.urlsafe_b64decode(request.headers["x-jws-signature"].split(".")[0] + "==")
    )
    assert protected == {"alg": "RS256", "kid": "fiu-key-1", "b64": False, "crit": ["b64"]}
    assert request.headers["client_api_key"] in aa.tokens
    assert "x-request-meta" not in request.headers  # the source names no aa_id

    [consent] = answer.updates
    assert (consent.name, consent.state, consent.provider_state) == (
        HANDLE,
        pb.STATE_ACTIVE,
        "READY",
    )
    assert consent.attributes["consent_id"] == "c-1"
    assert not consent.HasField("occurred_at")  # never flips a PAUSED consent back


@pytest.mark.parametrize(
    ("word", "state"),
    [
        ("PENDING", pb.STATE_PENDING),
        ("APPROVED", pb.STATE_ACTIVE),
        ("READY", pb.STATE_ACTIVE),
        ("REJECTED", pb.STATE_REJECTED),
        ("EXPIRED", pb.STATE_EXPIRED),
        ("FAILED", pb.STATE_FAILED),
    ],
)
async def test_every_consent_request_status(
    aa: FakeRebitAA, poller: Poller, word: str, state: pb.State.ValueType
) -> None:
    aa.consent("h1", word)
    [consent] = (await poll(poller)).updates
    assert consent.state == state
    assert "consent_id" not in consent.attributes


async def test_x_request_meta_names_the_aa(monkeypatch: pytest.MonkeyPatch) -> None:
    set_env(monkeypatch)
    aa = FakeRebitAA(recipient_id="finvu-aa")
    await aa.start()
    poller = PROVIDERS.build_pollers({"rb": source_on(aa, aa_id="finvu-aa")})["rb"]
    try:
        aa.consent("h1", "PENDING")
        assert (await poll(poller)).updates[0].state == pb.STATE_PENDING
        [request] = aa.requests_to("consent_handle")
        meta = json.loads(base64.b64decode(request.headers["x-request-meta"]))
        assert meta == {"recipient-id": "finvu-aa"}
    finally:
        await poller.close()
        await aa.close()


# --- the token ------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def clocked_poller(aa: FakeRebitAA, clock: Clock, **api: Any) -> RebitPoller:
    source = source_on(aa, api=api)
    assert source.signing is not None
    http = HttpClient(provider="ReBIT AA (rb)", api=source.api)
    client = RebitClient(
        source,
        http,
        load_signer(source.signing),
        SecretStr(rebit.CLIENT_ID),
        SecretStr(rebit.CLIENT_SECRET),
        clock=clock,
    )
    return RebitPoller("rb", client)


@pytest.mark.parametrize("style", ["sahamati", "oauth2"])
async def test_the_token_is_kept_until_it_expires(aa: FakeRebitAA, style: str) -> None:
    aa.token_lifetime = 600
    aa.consent("h1", "PENDING")
    clock = Clock()
    poller = clocked_poller(aa, clock, token_request=style)
    try:
        for _ in range(3):
            await poll(poller)
        assert aa.calls["token"] == 1
        clock.now += 600 - 61  # still a minute left: kept
        await poll(poller)
        assert aa.calls["token"] == 1
        clock.now += 2  # within a minute of expiry: replaced before it fails
        await poll(poller)
        assert aa.calls["token"] == 2
        tokens = [r.headers["client_api_key"] for r in aa.requests_to("consent_handle")]
        assert len(set(tokens)) == 2 and tokens[-1] != tokens[0]
    finally:
        await poller.close()


async def test_one_token_request_serves_concurrent_polls(aa: FakeRebitAA, poller: Poller) -> None:
    for i in range(10):
        aa.consent(f"h{i}", "PENDING")
    aa.hold("token")
    polls = [asyncio.ensure_future(poll(poller, f"sources/rb/consents/h{i}")) for i in range(10)]
    await asyncio.sleep(0.1)
    aa.release("token")
    await asyncio.gather(*polls)
    assert aa.calls["token"] == 1
    assert aa.calls["consent_handle"] == 10


async def test_a_refused_token_is_dropped_and_the_next_poll_gets_a_new_one(
    aa: FakeRebitAA, poller: Poller
) -> None:
    aa.consent("h1", "PENDING")
    await poll(poller)
    aa.expire_tokens()  # the AA no longer accepts it
    error = await failure(poller)
    assert (code_of(error), error.reason) == (
        grpc.StatusCode.PERMISSION_DENIED,
        Reason.UPSTREAM_AUTH_FAILED,
    )
    assert "Unauthorized" in error.message
    assert (await poll(poller)).updates[0].state == pb.STATE_PENDING
    assert aa.calls["token"] == 2


async def test_the_token_service_refusing_is_reported(aa: FakeRebitAA) -> None:
    poller = PROVIDERS.build_pollers({"rb": source_on(aa)})["rb"]
    try:
        aa.always("token", reply(401, {"errorCode": "Unauthorized", "errorMsg": "bad secret"}))
        error = await failure(poller)
        assert error.reason == Reason.UPSTREAM_AUTH_FAILED
        assert "token service" in error.message and "bad secret" in error.message
        assert aa.calls["consent_handle"] == 0
        aa.always("token", reply(200, {"tokenType": "Bearer"}))
        error = await failure(poller)
        assert error.reason == Reason.UPSTREAM_BAD_RESPONSE
    finally:
        await poller.close()


# --- the AA's answers -----------------------------------------------------------------------


async def test_an_unknown_handle_is_the_aas_invalid_consent_handle(
    aa: FakeRebitAA, poller: Poller
) -> None:
    error = await failure(poller, "sources/rb/consents/nobody")
    assert (code_of(error), error.reason) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        Reason.UPSTREAM_BAD_REQUEST,
    )
    assert "HTTP 400 InvalidConsentHandle" in error.message


async def test_an_answer_for_another_txnid_is_refused(aa: FakeRebitAA, poller: Poller) -> None:
    aa.always(
        "consent_handle",
        reply(
            200,
            {
                "ver": "2.0.0",
                "txnid": "00000000-0000-0000-0000-000000000000",
                "ConsentHandle": "h1",
                "ConsentStatus": {"status": "READY"},
            },
        ),
    )
    error = await failure(poller)
    assert error.reason == Reason.UPSTREAM_ANSWER_INVALID
    assert "txnid is not the request's" in error.message


async def test_the_aa_refuses_a_signature_by_another_key(aa: FakeRebitAA, tmp_path: Path) -> None:
    from tests.fakes.rebit import private_pem, rsa_key

    stranger = tmp_path / "stranger.pem"
    stranger.write_bytes(private_pem(rsa_key("stranger")))
    source = source_on(aa, signing={"private_key_file": str(stranger), "key_id": "x"})
    poller = PROVIDERS.build_pollers({"rb": source})["rb"]
    try:
        aa.consent("h1", "READY")
        error = await failure(poller)
        assert error.reason == Reason.UPSTREAM_BAD_REQUEST
        assert "SignatureDoesNotMatch" in error.message
    finally:
        await poller.close()


async def test_data_sessions_cannot_be_polled(poller: Poller) -> None:
    for name in ("sources/rb/data-sessions/s1", "sources/rb/data-sessions/s1/accounts/l1"):
        with pytest.raises(ApiError) as raised:
            poller.target(parse_name(name))
        assert raised.value.reason == Reason.POLLING_NOT_SUPPORTED


def test_a_source_without_api_settings_names_them() -> None:
    source = RebitSource(id="rb", provider="rebit")
    poller = PROVIDERS.build_pollers({"rb": source})["rb"]
    assert poller.missing_settings() == ["base_url", "client_id_env", "client_secret_env"]


# --- through a gateway ---------------------------------------------------------------------


async def test_a_poll_lifts_a_pending_consent_but_never_unpauses_one(rebit: ReBIT) -> None:
    stub = rebit.gw.stub
    pending, paused = (f"sources/{SOURCE}/consents/{h}" for h in ("h-pending", "h-paused"))
    assert (await rebit.post(rebit.consent("h-pending", "PENDING"))).status == 200
    assert (await rebit.post(rebit.consent("h-paused", "PAUSED", consent_id="c-2"))).status == 200
    rebit.aa.consent("h-pending", "READY", "c-1")
    rebit.aa.consent("h-paused", "READY", "c-2")

    response = await stub.PollStatuses(pb.PollStatusesRequest(names=[pending, paused]))
    by_name = {r.name: r for r in response.results}
    assert not by_name[pending].HasField("error")
    assert by_name[pending].status.state == pb.STATE_ACTIVE
    assert by_name[pending].status.attributes["consent_id"] == "c-1"
    assert by_name[paused].status.state == pb.STATE_PAUSED
    events = await rebit.gw.gateway.store.list_events(pending)
    assert [e.origin for e in events] == [pb.ORIGIN_WEBHOOK, pb.ORIGIN_POLL]


async def test_concurrent_polls_of_a_consent_share_one_call(rebit: ReBIT) -> None:
    name = f"sources/{SOURCE}/consents/h1"
    rebit.aa.consent("h1", "READY", "c-1")
    rebit.aa.hold("consent_handle")
    polls = [
        asyncio.ensure_future(rebit.gw.stub.PollStatuses(pb.PollStatusesRequest(names=[name])))
        for _ in range(20)
    ]
    async with asyncio.timeout(20):
        while rebit.gw.gateway.polling.waiters(name) < 20:
            await asyncio.sleep(0.01)
    rebit.aa.release("consent_handle")
    results = [r.results[0] for r in await asyncio.gather(*polls)]
    assert {r.status.state for r in results} == {pb.STATE_ACTIVE}
    assert rebit.aa.calls["consent_handle"] == 1


async def test_the_reconciler_heals_a_consent_whose_notification_was_lost(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_env(monkeypatch)
    monkeypatch.setenv("TEST_AA_API_KEY", "k")
    aa = FakeRebitAA()
    await aa.start()
    fast = {"quiet_seconds": 0.2, "interval_seconds": 0.1, "max_interval_seconds": 0.4}
    settings = rebit_settings(tmp_path, aa, poll=fast)
    gw = await start_gateway(settings.model_copy(update={"reconciler_tick_seconds": 0.05}))
    rebit = ReBIT(gw, aa)
    try:
        name = f"sources/{SOURCE}/consents/h1"
        sent = rebit.consent("h1", "PENDING")
        answer = await rebit.post(sent, headers={**sent.headers, "aa_api_key": "k"})
        assert answer.status == 200
        # The customer approved; the AA's ACTIVE notification never arrived.
        aa.consent("h1", "APPROVED", "c-9")
        async with asyncio.timeout(30):
            while (await gw.stub.GetStatus(pb.GetStatusRequest(name=name))).state != (
                pb.STATE_ACTIVE
            ):
                await asyncio.sleep(0.05)
        events = await gw.gateway.store.list_events(name)
        assert [e.origin for e in events] == [pb.ORIGIN_WEBHOOK, pb.ORIGIN_RECONCILE]
        assert events[-1].status.attributes["consent_id"] == "c-9"
    finally:
        await stop_gateway(gw)
        await aa.close()
