"""Setu AA adapter: tables, poll helpers, interplay with the apply rules, and fuzzing.

The golden fixtures (tests/fixtures/setu) pin every documented payload variant; these
tests cover what fixtures cannot: sequences of updates through ``core.apply``, the pure
poll helpers, precise error messages, and the "only our two errors, ever" contract.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from google.protobuf.json_format import MessageToDict
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from statusgate.core.apply import apply
from statusgate.core.names import parse_name
from statusgate.providers.base import InvalidPayloadError, UnknownShapeError
from statusgate.providers.registry import PROVIDERS
from statusgate.providers.setu import SetuAdapter, SetuSource
from statusgate.providers.setu.poll_mapping import consent_poll_update, data_session_poll_update
from statusgate.providers.setu.tables import (
    CONSENT_ERRORS,
    CONSENT_STATES,
    FI_ERRORS,
    FI_STATUSES,
    SESSION_STATES,
)
from statusgate.v1.status_pb2 import ErrorReason, Kind, Stage, State, Status

FIXTURES = PROVIDERS.spec("setu").fixtures
SOURCE = SetuSource(id="aa-main", provider="setu")
ADAPTER = SetuAdapter()
CID = "consent-1"
DSID = "session-1"
CONSENT = f"sources/aa-main/consents/{CID}"
SESSION = f"sources/aa-main/data-sessions/{DSID}"


def normalize(payload: dict[str, Any]) -> list[Status]:
    return ADAPTER.normalize(SOURCE, payload)


def consent_update(
    status: str | None, at: str, error: dict[str, str] | None = None
) -> dict[str, Any]:
    return {
        "type": "CONSENT_STATUS_UPDATE",
        "timestamp": at,
        "consentId": CID,
        "success": True,
        "data": {"status": status, "detail": {}} if status else None,
        "error": error,
    }


def session_update(status: str, at: str, accounts: dict[str, str]) -> dict[str, Any]:
    return {
        "type": "SESSION_STATUS_UPDATE",
        "timestamp": at,
        "consentId": CID,
        "dataSessionId": DSID,
        "success": True,
        "data": {
            "status": status,
            "format": "json",
            "fips": [
                {
                    "fipID": "FIP-1",
                    "accounts": [
                        {"linkRefNumber": link, "FIStatus": word, "description": ""}
                        for link, word in accounts.items()
                    ],
                }
            ],
        },
        "error": None,
    }


def replay(*payloads: dict[str, Any]) -> dict[str, Status]:
    """Apply every update of every payload in order; the resulting snapshots by name."""
    current: dict[str, Status] = {}
    for payload in payloads:
        for update in normalize(payload):
            new = apply(current.get(update.name), update)
            if new is not None:
                current[update.name] = new
    return current


# --- tables -------------------------------------------------------------------------------


def test_tables_cover_the_documented_vocabularies() -> None:
    assert set(CONSENT_STATES) == {
        "PENDING",
        "INITIATED",
        "ACTIVE",
        "PAUSED",
        "REVOKED",
        "EXPIRED",
        "REJECTED",
        "FAILED",
    }
    assert set(CONSENT_ERRORS) == {
        "UserCancelled",
        "UserRejected",
        "NoFIPAccountsDiscovered",
        "FIPDenied",
        "ConsentObjectCreationFailure",
    }
    assert set(SESSION_STATES) == {"PENDING", "ACTIVE", "PARTIAL", "COMPLETED", "EXPIRED", "FAILED"}
    assert set(FI_STATUSES) == {"READY", "DENIED", "PENDING", "DELIVERED", "TIMEOUT", "FAILED"}
    assert set(FI_ERRORS) == {
        "InvalidConsentUse",
        "InvalidConsentStatus",
        "SessionExpired",
        "ConsentRevoked",
        "UpstreamServerDown",
        "DataFetchFailure",
    }


@pytest.mark.parametrize(
    ("code", "reason", "retryable"),
    [
        ("InvalidConsentUse", ErrorReason.ERROR_REASON_CONSENT_INVALID, False),
        ("InvalidConsentStatus", ErrorReason.ERROR_REASON_CONSENT_INVALID, False),
        ("ConsentRevoked", ErrorReason.ERROR_REASON_CONSENT_INVALID, False),
        ("SessionExpired", ErrorReason.ERROR_REASON_EXPIRED, True),
        ("UpstreamServerDown", ErrorReason.ERROR_REASON_PROVIDER_ERROR, True),
        ("DataFetchFailure", ErrorReason.ERROR_REASON_PROVIDER_ERROR, True),
        ("NeverHeardOfIt", ErrorReason.ERROR_REASON_UNKNOWN, False),
    ],
)
def test_fi_data_failed_code_table(
    code: str, reason: ErrorReason.ValueType, retryable: bool
) -> None:
    payload = {
        "type": "FI_DATA_FAILED",
        "timestamp": "2024-03-06T14:02:41.197Z",
        "consentId": CID,
        "dataSessionId": DSID,
        "success": True,
        "data": None,
        "error": {"code": code, "message": "m"},
    }
    session = normalize(payload)[0]
    assert session.name == SESSION
    assert session.state == State.STATE_FAILED
    assert session.terminal
    assert session.error.reason == reason
    assert session.error.provider_code == code
    assert session.error.retryable is retryable


def test_status_words_are_case_insensitive_and_provider_state_is_raw() -> None:
    (status,) = normalize(consent_update("active", "2024-01-01T00:00:00.000Z"))
    assert status.state == State.STATE_ACTIVE
    assert status.provider_state == "active"


def test_error_on_fi_data_ready_is_a_failure() -> None:
    payload = {
        "type": "FI_DATA_READY",
        "consentId": CID,
        "dataSessionId": DSID,
        "success": True,
        "status": "COMPLETED",
        "error": {"code": "SessionExpired", "message": "expired"},
    }
    (session,) = normalize(payload)
    assert session.state == State.STATE_FAILED
    assert session.error.reason == ErrorReason.ERROR_REASON_EXPIRED


def test_fi_data_failed_without_error_is_still_failed() -> None:
    payload = {"type": "FI_DATA_FAILED", "dataSessionId": DSID, "success": True, "data": None}
    (session,) = normalize(payload)
    assert session.state == State.STATE_FAILED
    assert session.error.reason == ErrorReason.ERROR_REASON_UNKNOWN
    assert session.error.provider_code == ""


# --- precise errors -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (
            {**consent_update("BOGUS", "2024-01-01T00:00:00Z")},
            "CONSENT_STATUS_UPDATE: data.status: unknown consent status 'BOGUS'",
        ),
        (
            {**consent_update("ACTIVE", "2024-01-01T00:00:00Z"), "consentId": None},
            "consentId: Input should be a valid string",
        ),
        (
            {**consent_update("ACTIVE", "2024-01-01T00:00:00Z"), "consentId": "a b"},
            "consentId: Value error, must be 1-256 characters without '/' or whitespace",
        ),
        (
            {**consent_update("ACTIVE", "2024-01-01T00:00:00Z"), "data": "ACTIVE"},
            "data: Input should be a valid dictionary",
        ),
        (
            {**consent_update("ACTIVE", "2024-01-01T00:00:00Z"), "error": "oops"},
            "error: Input should be a valid dictionary",
        ),
        (
            session_update("ACTIVE", "2024-01-01T00:00:00Z", {"l1": "READY", "l2": "MAYBE"}),
            "data.fips[0].accounts[1].FIStatus: unknown FIStatus 'MAYBE'",
        ),
        (
            {
                **session_update("ACTIVE", "2024-01-01T00:00:00Z", {}),
                "data": {"status": "ACTIVE", "fips": [{"accounts": [{"FIStatus": "READY"}]}]},
            },
            "data.fips.0.accounts.0.linkRefNumber: Field required",
        ),
    ],
)
def test_invalid_payload_messages_say_what_and_where(
    payload: dict[str, Any], expected: str
) -> None:
    with pytest.raises(InvalidPayloadError) as caught:
        normalize(payload)
    assert expected in str(caught.value)


@pytest.mark.parametrize("payload", [{}, {"type": None}, {"type": 7}, {"type": ["x"]}, {"a": 1}])
def test_no_or_unknown_type_is_unknown_shape(payload: dict[str, Any]) -> None:
    with pytest.raises(UnknownShapeError):
        normalize(payload)


# --- sequences through the apply rules ---------------------------------------------------------


def test_consent_goes_active_paused_active_by_provider_time() -> None:
    current = replay(
        consent_update("ACTIVE", "2024-01-01T10:00:00.000Z"),
        consent_update("PAUSED", "2024-01-02T10:00:00.000Z"),
    )
    assert current[CONSENT].state == State.STATE_PAUSED
    current = replay(
        consent_update("ACTIVE", "2024-01-01T10:00:00.000Z"),
        consent_update("PAUSED", "2024-01-02T10:00:00.000Z"),
        consent_update("ACTIVE", "2024-01-03T10:00:00.000Z"),
        # A late duplicate of the pause changes nothing.
        consent_update("PAUSED", "2024-01-02T10:00:00.000Z"),
    )
    assert current[CONSENT].state == State.STATE_ACTIVE
    assert current[CONSENT].version == 3
    assert not current[CONSENT].terminal


def test_user_cancelled_keeps_the_consent_open_for_a_retry() -> None:
    cancelled = {"code": "UserCancelled", "message": "cancel_not_want_to_share"}
    current = replay(
        consent_update("PENDING", "2024-01-01T10:00:00.000Z"),
        consent_update(None, "2024-01-01T10:05:00.000Z", cancelled),
    )
    assert current[CONSENT].state == State.STATE_PENDING
    assert current[CONSENT].error.reason == ErrorReason.ERROR_REASON_USER_CANCELLED
    assert not current[CONSENT].terminal
    current = replay(
        consent_update(None, "2024-01-01T10:05:00.000Z", cancelled),
        consent_update("ACTIVE", "2024-01-01T10:09:00.000Z"),
    )
    assert current[CONSENT].state == State.STATE_ACTIVE
    assert not current[CONSENT].HasField("error")


def test_unknown_consent_error_never_closes_the_consent() -> None:
    current = replay(
        consent_update(None, "2024-01-01T10:00:00.000Z", {"code": "NewCode", "message": "?"}),
        consent_update("ACTIVE", "2024-01-01T10:01:00.000Z"),
    )
    assert current[CONSENT].state == State.STATE_ACTIVE


def test_partial_with_pending_accounts_can_still_complete() -> None:
    current = replay(
        session_update("PARTIAL", "2024-01-01T10:00:00.000Z", {"l1": "READY", "l2": "PENDING"}),
        session_update("COMPLETED", "2024-01-01T10:01:00.000Z", {"l1": "READY", "l2": "READY"}),
    )
    session = current[SESSION]
    assert session.state == State.STATE_COMPLETED
    assert session.terminal
    assert (session.progress.done, session.progress.total) == (2, 2)
    assert current[f"{SESSION}/accounts/l2"].state == State.STATE_COMPLETED
    assert current[f"{SESSION}/accounts/l2"].ready_to_fetch


def test_partial_with_every_fip_answered_is_final() -> None:
    current = replay(
        session_update("PARTIAL", "2024-01-01T10:00:00.000Z", {"l1": "READY", "l2": "DENIED"}),
        session_update("COMPLETED", "2024-01-01T10:01:00.000Z", {"l1": "READY", "l2": "READY"}),
    )
    session = current[SESSION]
    assert session.state == State.STATE_PARTIAL
    assert session.terminal
    assert session.ready_to_fetch
    assert current[f"{SESSION}/accounts/l2"].state == State.STATE_REJECTED


def test_unchanged_accounts_do_not_make_new_versions() -> None:
    current = replay(
        session_update("ACTIVE", "2024-01-01T10:00:00.000Z", {"l1": "PENDING", "l2": "PENDING"}),
        session_update("ACTIVE", "2024-01-01T10:01:00.000Z", {"l1": "READY", "l2": "PENDING"}),
        session_update("ACTIVE", "2024-01-01T10:02:00.000Z", {"l1": "READY", "l2": "PENDING"}),
    )
    assert current[f"{SESSION}/accounts/l1"].version == 2
    assert current[f"{SESSION}/accounts/l2"].version == 1


def test_fi_data_ready_for_a_consent_adds_readiness_without_flipping_it() -> None:
    ready = {"type": "FI_DATA_READY", "consentId": CID, "status": "COMPLETED", "fiData": []}
    current = replay(
        consent_update("ACTIVE", "2024-01-01T10:00:00.000Z"),
        consent_update("PAUSED", "2024-01-02T10:00:00.000Z"),
        ready,
    )
    assert current[CONSENT].state == State.STATE_PAUSED
    assert current[CONSENT].ready_to_fetch
    # A consent whose ACTIVE notification was lost is lifted out of PENDING.
    current = replay(consent_update("PENDING", "2024-01-01T09:00:00.000Z"), ready)
    assert current[CONSENT].state == State.STATE_ACTIVE
    assert current[CONSENT].ready_to_fetch
    # A revoked consent stays revoked.
    current = replay(consent_update("REVOKED", "2024-01-03T10:00:00.000Z"), ready)
    assert current[CONSENT].state == State.STATE_REVOKED


# --- poll helpers ------------------------------------------------------------------------------


def test_consent_poll_update() -> None:
    body = {
        "id": CID,
        "status": "ACTIVE",
        "url": "https://fiu-sandbox.setu.co/consents/webview/x",
        "detail": {
            "consentStart": "2024-01-01T00:00:00Z",
            "fiTypes": ["DEPOSIT"],
            "dataRange": {"from": "2023-01-01T00:00:00Z", "to": "2023-12-31T00:00:00Z"},
        },
        "accountsLinked": [
            {"maskedAccNumber": "XXXXXXXX6053", "fipId": "setu-fip", "linkRefNumber": "l1"},
            {"maskedAccNumber": "XXXXXXXX1234", "fipId": "other-fip", "linkRefNumber": "l2"},
        ],
        "traceId": "1-abc",
    }
    observed = datetime(2024, 1, 5, 12, 0, tzinfo=UTC)
    (status,) = consent_poll_update("aa-main", CID, body, observed_at=observed)
    assert MessageToDict(status) == {
        "name": CONSENT,
        "source": "aa-main",
        "provider": "PROVIDER_SETU",
        "kind": "KIND_CONSENT",
        "state": "STATE_ACTIVE",
        "stage": "STAGE_CONSENT",
        "providerState": "ACTIVE",
        "occurredAt": "2024-01-05T12:00:00Z",
        "attributes": {
            "fi_types": "DEPOSIT",
            "data_range_from": "2023-01-01T00:00:00Z",
            "data_range_to": "2023-12-31T00:00:00Z",
            "accounts_linked": "2",
            "fip_ids": "other-fip,setu-fip",
        },
    }
    (without_time,) = consent_poll_update("aa-main", CID, {"status": "PAUSED"})
    assert without_time.state == State.STATE_PAUSED
    assert not without_time.HasField("occurred_at")


def test_polled_pause_is_applied_when_observed_later() -> None:
    current = replay(consent_update("ACTIVE", "2024-01-01T10:00:00.000Z"))[CONSENT]
    (poll,) = consent_poll_update(
        "aa-main", CID, {"status": "PAUSED"}, observed_at=datetime(2024, 1, 2, tzinfo=UTC)
    )
    new = apply(current, poll)
    assert new is not None and new.state == State.STATE_PAUSED


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"status": "NOPE"}, "GET /v2/consents/{id}: status: unknown consent status 'NOPE'"),
        ({"detail": {}}, "status: Field required"),
        ({"status": " "}, "status is empty"),
        (["not", "an", "object"], "<root>: Input should be a valid dictionary"),
    ],
)
def test_consent_poll_update_invalid(body: Any, expected: str) -> None:
    with pytest.raises(InvalidPayloadError) as caught:
        consent_poll_update("aa-main", CID, body)
    assert expected in str(caught.value)


def test_data_session_poll_update() -> None:
    body = {
        "id": DSID,
        "consentId": CID,
        "status": "PARTIAL",
        "format": "json",
        "dataRange": {"from": "2023-01-01T00:00:00Z", "to": "2023-12-31T00:00:00Z"},
        "fips": [
            {
                "fipID": "setu-fip",
                "accounts": [
                    {"linkRefNumber": "l1", "maskedAccNumber": "XXXXXXXX6053", "FIstatus": "READY"},
                    {
                        "linkRefNumber": "l2",
                        "maskedAccNumber": "XXXXXXXX1234",
                        "FIstatus": "TIMEOUT",
                    },
                ],
            }
        ],
    }
    statuses = data_session_poll_update("aa-main", DSID, body)
    assert [MessageToDict(s) for s in statuses] == [
        {
            "name": f"{SESSION}/accounts/l1",
            "source": "aa-main",
            "provider": "PROVIDER_SETU",
            "kind": "KIND_ACCOUNT",
            "parent": SESSION,
            "state": "STATE_COMPLETED",
            "terminal": True,
            "stage": "STAGE_DATA_FETCH",
            "providerState": "READY",
            "readyToFetch": True,
            "attributes": {"fip_id": "setu-fip", "masked_account_number": "XXXXXXXX6053"},
        },
        {
            "name": f"{SESSION}/accounts/l2",
            "source": "aa-main",
            "provider": "PROVIDER_SETU",
            "kind": "KIND_ACCOUNT",
            "parent": SESSION,
            "state": "STATE_FAILED",
            "terminal": True,
            "stage": "STAGE_DATA_FETCH",
            "providerState": "TIMEOUT",
            "error": {"reason": "ERROR_REASON_TIMEOUT", "retryable": True},
            "attributes": {"fip_id": "setu-fip", "masked_account_number": "XXXXXXXX1234"},
        },
        {
            "name": SESSION,
            "source": "aa-main",
            "provider": "PROVIDER_SETU",
            "kind": "KIND_DATA_SESSION",
            "state": "STATE_PARTIAL",
            "terminal": True,
            "stage": "STAGE_DATA_FETCH",
            "providerState": "PARTIAL",
            "progress": {"done": "2", "total": "2"},
            "readyToFetch": True,
            "attributes": {
                "consent_id": CID,
                "format": "json",
                "data_range_from": "2023-01-01T00:00:00Z",
                "data_range_to": "2023-12-31T00:00:00Z",
            },
        },
    ]


def test_data_session_poll_masks_full_account_numbers() -> None:
    body = {
        "status": "ACTIVE",
        "fips": [
            {
                "fipId": "f",
                "accounts": [
                    {
                        "linkRefNumber": "l1",
                        "maskedAccNumber": "123456789012",
                        "FIstatus": "PENDING",
                    }
                ],
            }
        ],
    }
    account, session = data_session_poll_update("aa-main", DSID, body)
    assert account.attributes["masked_account_number"] == "XXXXXXXX9012"
    assert session.state == State.STATE_IN_PROGRESS
    assert not session.terminal


def test_data_session_poll_update_invalid() -> None:
    with pytest.raises(InvalidPayloadError, match="FIStatus: unknown FIStatus 'LATER'"):
        data_session_poll_update(
            "aa-main",
            DSID,
            {
                "status": "ACTIVE",
                "fips": [{"accounts": [{"linkRefNumber": "l", "FIstatus": "LATER"}]}],
            },
        )
    with pytest.raises(InvalidPayloadError):
        data_session_poll_update("aa-main", "bad id", {"status": "ACTIVE"})


# --- hostile input ------------------------------------------------------------------------------


def test_huge_and_odd_strings_are_capped_or_refused() -> None:
    huge = "x" * 200_000
    payload = session_update("ACTIVE", "2024-01-01T00:00:00Z", {"l1": "DENIED"})
    payload["data"]["fips"][0]["accounts"][0]["description"] = huge + "\ud800"
    payload["data"]["fips"][0]["fipID"] = "fip-\ud800"
    payload["consentId"] = {"not": "a string"}
    account, session = normalize(payload)
    assert len(account.attributes["description"]) == 256
    assert len(account.error.message) == 256
    assert account.attributes["fip_id"] == "fip-?"
    assert "consent_id" not in session.attributes
    account.SerializeToString()

    error = {"code": "C" * 10_000, "message": "m" * 10_000}
    (consent,) = normalize(consent_update(None, "2024-01-01T00:00:00Z", error))
    assert len(consent.error.provider_code) == 128
    assert len(consent.error.message) == 1024

    for bad_id in ["x" * 257, "a\ud800", "", "a/b", "tab\there"]:
        with pytest.raises(InvalidPayloadError):
            normalize({**consent_update("ACTIVE", "2024-01-01T00:00:00Z"), "consentId": bad_id})


@pytest.mark.parametrize(
    "timestamp", ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00", "yesterday", 17, None]
)
def test_unusable_timestamps_keep_the_status(timestamp: Any) -> None:
    (status,) = normalize({**consent_update("ACTIVE", "x"), "timestamp": timestamp})
    assert status.state == State.STATE_ACTIVE
    assert not status.HasField("occurred_at")


def _fixture_payloads() -> list[dict[str, Any]]:
    payloads = []
    for path in sorted(FIXTURES.glob("*.json")):
        payload = json.loads(path.read_text())["payload"]
        if isinstance(payload, dict):
            payloads.append(payload)
    return payloads


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True)
    | st.text(max_size=20)
    | st.sampled_from(["", "ACTIVE", "PARTIAL", "READY", "UserCancelled", "x" * 300, "a/b"]),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
KEYS = st.sampled_from(
    [
        "type",
        "timestamp",
        "consentId",
        "dataSessionId",
        "success",
        "data",
        "error",
        "notificationId",
        "status",
        "detail",
        "Detail",
        "fips",
        "accounts",
        "Accounts",
        "FIStatus",
        "FIstatus",
        "fipID",
        "fipId",
        "linkRefNumber",
        "description",
        "code",
        "message",
        "dataRange",
        "DataRange",
        "format",
        "fiData",
    ]
)


def _check(payload: dict[str, Any]) -> None:
    try:
        statuses = normalize(payload)
    except (UnknownShapeError, InvalidPayloadError):
        return
    for status in statuses:
        assert isinstance(status, Status)
        status.SerializeToString()
        name = parse_name(status.name)
        assert name.source == SOURCE.id
        assert status.kind in (Kind.KIND_CONSENT, Kind.KIND_DATA_SESSION, Kind.KIND_ACCOUNT)
        assert status.stage in (Stage.STAGE_CONSENT, Stage.STAGE_DATA_FETCH)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += _paths(child, (*prefix, index))
    return found


@st.composite
def mutated_fixture(draw: st.DrawFn) -> dict[str, Any]:
    payload: dict[str, Any] = copy.deepcopy(draw(st.sampled_from(_fixture_payloads())))
    for _ in range(draw(st.integers(1, 4))):
        path = draw(st.sampled_from(_paths(payload)))
        if not path:
            continue
        parent: Any = payload
        for part in path[:-1]:
            parent = parent[part]
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "replace":
            parent[path[-1]] = draw(JSON)
        elif action == "delete":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(KEYS)] = draw(JSON)
    return payload


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_fixture())
def test_mutated_fixtures_raise_only_adapter_errors(payload: dict[str, Any]) -> None:
    _check(payload)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(
        ["CONSENT_STATUS_UPDATE", "SESSION_STATUS_UPDATE", "FI_DATA_READY", "FI_DATA_FAILED"]
    ),
    st.dictionaries(KEYS, JSON, max_size=8),
)
def test_arbitrary_objects_raise_only_adapter_errors(kind: str, body: dict[str, Any]) -> None:
    _check({**body, "type": kind})
    _check(body)
