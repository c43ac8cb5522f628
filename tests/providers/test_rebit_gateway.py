"""A ReBIT AA through a real front door: signed notifications in, the standard's signed
answers out, statuses over gRPC; every refusal in the standard's vocabulary, and the
delivery kept before any 200."""

from __future__ import annotations

import asyncio
import copy
import json
import uuid
from pathlib import Path
from typing import Any

import grpc
import pytest

from statusgate.providers.rebit import SPEC
from statusgate.providers.rebit.notifications import FipAccount, fi_notification, signed
from statusgate.store.base import DeliveryVerdict
from statusgate.v1 import status_pb2 as pb
from tests.fakes.rebit import rsa_key
from tests.providers.rebit_support import AA_API_KEY, AA_ID, SOURCE, Answer, ReBIT, minutes_ago
from tests.providers.test_fixtures import load
from tests.web.test_auth import b64url

HANDLE = "39e108fe-9243-11e8-b9f2-0256d88baae8"
CONSENT = f"sources/{SOURCE}/consents/{HANDLE}"


async def status(rebit: ReBIT, name: str) -> pb.Status:
    return await rebit.gw.stub.GetStatus(pb.GetStatusRequest(name=name))


async def kept(rebit: ReBIT, verdict: DeliveryVerdict) -> list[Any]:
    return await rebit.gw.gateway.store.list_deliveries([verdict], source=SOURCE)


def assert_refused(answer: Answer, status: int, code: str, txnid: str = "") -> None:
    assert answer.status == status, answer.body
    assert answer.body["errorCode"] == code, answer.body
    assert set(answer.body) == {"ver", "timestamp", "txnid", "errorCode", "errorMsg"}
    assert answer.body["txnid"] == txnid
    assert answer.body["ver"] == "2.0.0"


# --- the happy paths ---------------------------------------------------------------------


@pytest.mark.parametrize("unencoded", [True, False], ids=["rfc7797", "b64"])
async def test_a_consent_notification_is_answered_ok_signed_and_applied(
    rebit: ReBIT, unencoded: bool
) -> None:
    sent = rebit.notification(
        rebit.consent(HANDLE, "ACTIVE", consent_id="c-1").message, unencoded=unencoded
    )
    answer = await rebit.post(sent)

    assert answer.status == 200
    assert answer.body.keys() == {"ver", "timestamp", "txnid", "response"}
    assert answer.body["response"] == "OK"
    assert answer.body["txnid"] == sent.message["txnid"]
    assert answer.body["ver"] == "2.0.0"
    assert answer.body["timestamp"].endswith("Z")
    rebit.verify_answer(answer)
    consent = await status(rebit, CONSENT)
    assert (consent.provider, consent.state, consent.attributes["consent_id"]) == (
        pb.PROVIDER_REBIT,
        pb.STATE_ACTIVE,
        "c-1",
    )
    [delivery] = await kept(rebit, DeliveryVerdict.MAPPED)
    assert delivery.body == sent.body
    assert delivery.idempotency_key == sent.message["txnid"]
    assert delivery.headers["x-jws-signature"] == sent.headers["x-jws-signature"]
    assert "aa_api_key" not in delivery.headers  # a credential is never kept


async def test_a_signature_under_the_previous_key_passes(rebit: ReBIT) -> None:
    message = rebit.consent(HANDLE, "PENDING").message
    old = signed(message, rsa_key("aa-old"), api_key=AA_API_KEY)
    assert (await rebit.post(old)).status == 200


async def test_the_consent_goes_active_paused_active_by_time(rebit: ReBIT) -> None:
    for minutes, word in ((3, "ACTIVE"), (2, "PAUSED"), (1, "ACTIVE")):
        sent = rebit.consent(HANDLE, word, consent_id="c-1", timestamp=minutes_ago(minutes))
        assert (await rebit.post(sent)).status == 200
    events = await rebit.gw.gateway.store.list_events(CONSENT)
    assert [e.status.state for e in events] == [pb.STATE_ACTIVE, pb.STATE_PAUSED, pb.STATE_ACTIVE]


async def test_an_fi_notification_updates_the_session_and_its_accounts(rebit: ReBIT) -> None:
    message = fi_notification(
        "s-1",
        "ACTIVE",
        [FipAccount("FIP-1", "L-1", "READY"), FipAccount("FIP-2", "L-2", "PENDING")],
        aa_id=AA_ID,
    )
    answer = await rebit.post(rebit.notification(message))
    assert answer.status == 200 and answer.body["response"] == "OK"
    session = await status(rebit, f"sources/{SOURCE}/data-sessions/s-1")
    assert (session.state, session.ready_to_fetch, session.progress.done) == (
        pb.STATE_IN_PROGRESS,
        True,
        1,
    )
    account = await status(rebit, f"sources/{SOURCE}/data-sessions/s-1/accounts/L-1")
    assert (account.state, account.attributes["fip_id"]) == (pb.STATE_COMPLETED, "FIP-1")


# --- every fixture through the front door -------------------------------------------------

FIXTURES = sorted(SPEC.fixtures.glob("*.json"))


@pytest.mark.parametrize("path", FIXTURES, ids=[p.stem for p in FIXTURES])
async def test_every_fixture_gets_the_standards_answer(rebit: ReBIT, path: Path) -> None:
    fixture = load(path)
    options = fixture.get("source", {})
    if options and options != {"aa_id": AA_ID}:
        pytest.skip(f"needs source options {options} (the contract test covers it)")
    message = copy.deepcopy(fixture["payload"])
    if "timestamp" in message and fixture.get("expect_code") != "InvalidRequest":
        message["timestamp"] = minutes_ago(0).isoformat()  # fresh, or the clock refuses it
    notifier = message.get("Notifier")
    if not options and isinstance(notifier, dict) and notifier.get("type") == "AA":
        notifier["id"] = AA_ID  # the AA this source is
    body = json.dumps(message).encode()
    answer = await rebit.post_body(fixture["path"], body)

    rebit.verify_answer(answer)
    txnid = message.get("txnid") if isinstance(message.get("txnid"), str) else ""
    assert answer.body["txnid"] == txnid
    code = fixture.get("expect_code")
    if code is None:  # mapped, or kept unmapped: the AA hears it arrived
        assert (answer.status, answer.body.get("response")) == (200, "OK"), answer.body
        return
    assert_refused(answer, 404 if code == "NoSuchVersion" else 400, code, txnid)
    [rejected] = await kept(rebit, DeliveryVerdict.REJECTED)
    assert rejected.body == body
    assert f"kept as delivery {rejected.id}" in answer.body["errorMsg"]


# --- refusals -------------------------------------------------------------------------------


async def test_a_notification_on_the_other_path_is_invalid_uri(rebit: ReBIT) -> None:
    sent = rebit.consent(HANDLE, "ACTIVE")
    answer = await rebit.post(sent, path="FI/Notification")
    assert_refused(answer, 400, "InvalidURI", sent.message["txnid"])
    rebit.verify_answer(answer)
    assert len(await kept(rebit, DeliveryVerdict.REJECTED)) == 1


@pytest.mark.parametrize("path", ["", "Consent", "Consent/Notification/x", "Account/Notification"])
async def test_other_sub_paths_are_404_in_the_standards_shape(rebit: ReBIT, path: str) -> None:
    answer = await rebit.post(rebit.consent(HANDLE, "ACTIVE"), path=path)
    assert_refused(answer, 404, "InvalidURI")  # refused before the body is read: no txnid
    rebit.verify_answer(answer)
    assert await kept(rebit, DeliveryVerdict.REJECTED) == []


async def test_a_bad_signature_is_signature_does_not_match_and_not_stored(rebit: ReBIT) -> None:
    sent = rebit.consent(HANDLE, "ACTIVE")
    txnid = sent.message["txnid"]
    tampered = sent.body.replace(b"ACTIVE", b"REVOKED")
    header = b64url(json.dumps({"alg": "HS256"}).encode())
    for headers, body, echoed in (
        # The signature is checked over the body: its txnid is echoed.
        (sent.headers, tampered, txnid),
        # No signature, or one of a refused algorithm, is refused before the body is
        # read (the front door never reads the body of a request it can refuse without
        # it), so there is no txnid to echo.
        ({k: v for k, v in sent.headers.items() if k != "x-jws-signature"}, sent.body, ""),
        ({**sent.headers, "x-jws-signature": f"{header}..{b64url(b'mac')}"}, sent.body, ""),
        ({**sent.headers, "x-jws-signature": b64url(b'{"alg":"none"}') + ".."}, sent.body, ""),
    ):
        answer = await rebit.post(sent, headers=headers, body=body)
        assert_refused(answer, 400, "SignatureDoesNotMatch", echoed)
        rebit.verify_answer(answer)
    assert await rebit.gw.gateway.store.list_deliveries([], source=SOURCE) == []


async def test_a_missing_or_wrong_aa_api_key_is_unauthorized(rebit: ReBIT) -> None:
    sent = rebit.consent(HANDLE, "ACTIVE")
    for headers in (
        {k: v for k, v in sent.headers.items() if k != "aa_api_key"},
        {**sent.headers, "aa_api_key": "guess"},
    ):
        answer = await rebit.post(sent, headers=headers)
        # Decided on the headers alone, before the body is read: no txnid to echo.
        assert_refused(answer, 401, "Unauthorized")
        rebit.verify_answer(answer)
    assert await rebit.gw.gateway.store.list_deliveries([], source=SOURCE) == []


@pytest.mark.parametrize("minutes", [16, -16])
async def test_a_timestamp_out_of_the_window_is_refused_and_kept(
    rebit: ReBIT, minutes: float
) -> None:
    sent = rebit.consent(HANDLE, "ACTIVE", timestamp=minutes_ago(minutes))
    answer = await rebit.post(sent)
    assert_refused(answer, 400, "InvalidRequest", sent.message["txnid"])
    assert "timestamp" in answer.body["errorMsg"]
    [rejected] = await kept(rebit, DeliveryVerdict.REJECTED)
    assert rejected.body == sent.body
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await status(rebit, CONSENT)
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND


async def test_a_timestamp_inside_the_window_is_taken(rebit: ReBIT) -> None:
    for minutes in (14, -14):
        sent = rebit.consent(HANDLE, "PENDING", timestamp=minutes_ago(minutes))
        assert (await rebit.post(sent)).status == 200


async def test_an_unsupported_version_is_no_such_version(rebit: ReBIT) -> None:
    message = {**rebit.consent(HANDLE, "ACTIVE").message, "ver": "1.1.2"}
    answer = await rebit.post(rebit.notification(message))
    assert_refused(answer, 404, "NoSuchVersion", message["txnid"])
    assert len(await kept(rebit, DeliveryVerdict.REJECTED)) == 1


async def test_a_body_that_is_not_json_is_invalid_request_and_kept(rebit: ReBIT) -> None:
    body = b"not json"
    answer = await rebit.post_body("Consent/Notification", body)
    assert_refused(answer, 400, "InvalidRequest")
    [rejected] = await kept(rebit, DeliveryVerdict.REJECTED)
    assert rejected.body == body


async def test_a_body_over_the_limit_is_invalid_request_413(rebit: ReBIT) -> None:
    answer = await rebit.post_body("Consent/Notification", b"{" + b" " * 1024 * 1024 + b"}")
    assert (answer.status, answer.body["errorCode"]) == (413, "InvalidRequest")
    rebit.verify_answer(answer)


# --- txnid: duplicates and conflicts ---------------------------------------------------------


async def test_the_same_txnid_and_body_again_is_a_duplicate(rebit: ReBIT) -> None:
    sent = rebit.consent(HANDLE, "ACTIVE", consent_id="c-1")
    first = await rebit.post(sent)
    # The same content again, re-serialised and re-signed by the AA.
    again = rebit.notification(json.loads(json.dumps(sent.message, indent=2)))
    second = await rebit.post(again)

    assert (first.status, second.status) == (200, 200)
    assert second.body["txnid"] == sent.message["txnid"]
    assert len(await rebit.gw.gateway.store.list_events(CONSENT)) == 1
    first_kept, copy_kept = await kept(rebit, DeliveryVerdict.MAPPED)
    assert first_kept.body == sent.body
    assert copy_kept.detail.startswith(f"a copy of delivery {first_kept.id}")


async def test_a_copy_is_taken_even_once_its_timestamp_is_stale(rebit: ReBIT) -> None:
    # The first copy arrived 20 minutes ago, on time.
    sent = rebit.consent(HANDLE, "ACTIVE", timestamp=minutes_ago(20.5))
    source = rebit.gw.gateway.settings.sources[SOURCE]
    first = await rebit.gw.gateway.parts.ingest.webhook(
        source,
        sent.body,
        sent.headers,
        delivery_id="first",
        received_at=minutes_ago(20),
        path=sent.path,
    )
    assert first.normalized.verdict is DeliveryVerdict.MAPPED
    # The AA retries the very same notification now: it only needs to hear it arrived.
    answer = await rebit.post(sent)
    assert (answer.status, answer.body["response"]) == (200, "OK")
    # A new notification that old is refused.
    late = rebit.consent(HANDLE, "REVOKED", timestamp=minutes_ago(20.5))
    assert_refused(await rebit.post(late), 400, "InvalidRequest", late.message["txnid"])


async def test_the_same_txnid_with_another_body_is_an_idempotency_error(rebit: ReBIT) -> None:
    sent = rebit.consent(HANDLE, "ACTIVE", consent_id="c-1")
    assert (await rebit.post(sent)).status == 200
    other = rebit.consent(HANDLE, "REVOKED", consent_id="c-1", txnid=sent.message["txnid"])
    answer = await rebit.post(other)

    assert_refused(answer, 409, "IdempotencyError", sent.message["txnid"])
    rebit.verify_answer(answer)
    assert (await status(rebit, CONSENT)).state == pb.STATE_ACTIVE
    [conflict] = await kept(rebit, DeliveryVerdict.REJECTED)
    assert conflict.body == other.body and "first used by delivery" in conflict.detail


async def test_a_refused_delivery_does_not_claim_its_txnid(rebit: ReBIT) -> None:
    txnid = str(uuid.uuid4())
    wrong = rebit.consent(HANDLE, "APPROVED", txnid=txnid)
    assert_refused(await rebit.post(wrong), 400, "InvalidConsentStatus", txnid)
    fixed = rebit.consent(HANDLE, "ACTIVE", txnid=txnid)
    assert (await rebit.post(fixed)).status == 200
    assert (await status(rebit, CONSENT)).state == pb.STATE_ACTIVE


async def test_copies_arriving_together_make_one_event(rebit: ReBIT) -> None:
    sent = rebit.consent(HANDLE, "ACTIVE")
    answers = await asyncio.gather(*(rebit.post(sent) for _ in range(5)))
    assert {a.status for a in answers} == {200}
    assert len(await rebit.gw.gateway.store.list_events(CONSENT)) == 1
    delivered = await kept(rebit, DeliveryVerdict.MAPPED)
    assert sum(1 for d in delivered if d.detail.startswith("a copy of")) == 4


# --- replay -------------------------------------------------------------------------------


async def test_a_replay_judges_the_body_alone(rebit: ReBIT) -> None:
    sent = rebit.consent(HANDLE, "ACTIVE", timestamp=minutes_ago(30))
    assert (await rebit.post(sent)).status == 400
    [stale] = await kept(rebit, DeliveryVerdict.REJECTED)
    source = rebit.gw.gateway.settings.sources[SOURCE]
    replayed = await rebit.gw.gateway.parts.ingest.replay(source, stale)
    assert replayed.normalized.verdict is DeliveryVerdict.MAPPED
    assert (await status(rebit, CONSENT)).state == pb.STATE_ACTIVE
