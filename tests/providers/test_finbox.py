"""FinBox adapter: the error-code table, the poll mappings, shape detection, and a fuzz
of the "never raises anything else" contract. Webhook variants are golden fixtures in
tests/fixtures/finbox (run by test_fixtures.py)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from google.protobuf.json_format import MessageToDict
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from statusgate.core.names import parse_name
from statusgate.providers.base import InvalidPayloadError, UnknownShapeError
from statusgate.providers.finbox import FinboxAdapter, FinboxSource
from statusgate.providers.finbox.errors import finbox_error
from statusgate.providers.finbox.mapping import missing_data_summary
from statusgate.providers.finbox.poll_mapping import progress_update, upload_status_update
from statusgate.providers.registry import PROVIDERS
from statusgate.v1.status_pb2 import ErrorReason, State, Status

FIXTURES = PROVIDERS.spec("finbox").fixtures
SOURCE = FinboxSource(id="finbox", provider="finbox")
ADAPTER = FinboxAdapter()
R = ErrorReason


def dicts(statuses: list[Status]) -> list[dict[str, Any]]:
    return [MessageToDict(s) for s in statuses]


# --- error codes --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "reason", "retryable"),
    [
        ("MISSING_TRANSACTIONS", R.ERROR_REASON_DATA_INCOMPLETE, False),
        ("INCOMPLETE_MONTHS", R.ERROR_REASON_DATA_INCOMPLETE, False),
        ("INCOMPLETE_MONTHS_UPLOAD", R.ERROR_REASON_DATA_INCOMPLETE, False),
        ("INCOMPLETE_DATES_UPLOAD", R.ERROR_REASON_DATA_INCOMPLETE, False),
        ("OUT_OF_DATE_RANGE", R.ERROR_REASON_DATA_INCOMPLETE, False),
        ("STATEMENT_NO_TRANSACTIONS", R.ERROR_REASON_DATA_INCOMPLETE, False),
        ("NO_TRANSACTIONS_FROM_AA", R.ERROR_REASON_DATA_INCOMPLETE, False),
        ("BALANCE_MISMATCH", R.ERROR_REASON_DATA_INCONSISTENT, False),
        ("NULL_ACCOUNT_NUMBER", R.ERROR_REASON_ACCOUNT_UNIDENTIFIED, False),
        ("BANK_NAME_UNDETECTED", R.ERROR_REASON_ACCOUNT_UNIDENTIFIED, False),
        ("BANK_NAME_MISMATCH", R.ERROR_REASON_ACCOUNT_UNIDENTIFIED, False),
        ("UNPARSABLE", R.ERROR_REASON_DOCUMENT_UNREADABLE, False),
        ("PDF_IS_IMAGE", R.ERROR_REASON_DOCUMENT_UNREADABLE, False),
        ("EXTRACTION_FAILED", R.ERROR_REASON_DOCUMENT_UNREADABLE, True),
        ("STATEMENT_UNSUPPORTED_FORMAT", R.ERROR_REASON_DOCUMENT_UNREADABLE, False),
        ("STATEMENT_TOO_MANY_PAGES", R.ERROR_REASON_DOCUMENT_UNREADABLE, False),
        ("PASSWORD_INCORRECT", R.ERROR_REASON_CREDENTIALS_INVALID, True),
        ("STATEMENT_DUPLICATE", R.ERROR_REASON_DUPLICATE, False),
        ("SOMETHING_FINBOX_ADDED_LATER", R.ERROR_REASON_UNKNOWN, False),
    ],
)
def test_error_codes(code: str, reason: ErrorReason.ValueType, retryable: bool) -> None:
    error = finbox_error(code, "text", failed=True)
    assert error is not None
    assert (error.reason, error.provider_code, error.message, error.retryable) == (
        reason,
        code,
        "text",
        retryable,
    )


def test_error_code_case_and_spaces_do_not_matter_but_the_raw_code_is_kept() -> None:
    error = finbox_error(" password_incorrect ", None, failed=True)
    assert error is not None
    assert error.reason == R.ERROR_REASON_CREDENTIALS_INVALID
    assert error.provider_code == "password_incorrect"


@pytest.mark.parametrize("code", [None, "", "  "])
def test_empty_and_null_codes_mean_no_error(code: str | None) -> None:
    assert finbox_error(code, None, failed=False) is None
    assert finbox_error(code, "", failed=True) is None
    # A success that carries a message but no code is still no error.
    assert finbox_error(code, "all good", failed=False) is None


def test_a_failure_with_only_a_message_is_unknown_with_the_message() -> None:
    error = finbox_error("", "went wrong", failed=True, retryable=True)
    assert error is not None
    assert MessageToDict(error) == {
        "reason": "ERROR_REASON_UNKNOWN",
        "message": "went wrong",
        "retryable": True,
    }


def test_missing_data_summary() -> None:
    assert missing_data_summary(None) is None
    assert missing_data_summary([]) is None
    assert missing_data_summary("2025-01") == "2025-01"
    assert (
        missing_data_summary(
            [{"from_date": "01/01/2025", "to_date": "31/01/2025"}, "2025-03", None, {"month": 4}]
        )
        == '01/01/2025..31/01/2025,2025-03,{"month":4}'
    )


# --- poll: session_upload_status -------------------------------------------------------

SESSION = "sources/finbox/sessions/s-1"


def upload_session(state: str, provider_state: str, *, terminal: bool = False) -> dict[str, Any]:
    expected: dict[str, Any] = {
        "name": SESSION,
        "source": "finbox",
        "provider": "PROVIDER_FINBOX",
        "kind": "KIND_SESSION",
        "state": state,
        "stage": "STAGE_UPLOAD",
        "providerState": provider_state,
    }
    if terminal:
        expected["terminal"] = True
    return expected


@pytest.mark.parametrize(
    ("word", "state", "terminal"),
    [
        ("NO UPLOADS", "STATE_PENDING", False),
        ("NO_UPLOAD", "STATE_PENDING", False),
        ("IN PROGRESS", "STATE_IN_PROGRESS", False),
        ("IN_PROGRESS", "STATE_IN_PROGRESS", False),
        ("COMPLETED", "STATE_COMPLETED", False),
        ("EXPIRED", "STATE_EXPIRED", True),
        ("no uploads", "STATE_PENDING", False),
    ],
)
def test_upload_status_words(word: str, state: str, terminal: bool) -> None:
    body = {"upload_status": word, "session_expiry_timestamp": "2025-11-13 07:48:44"}
    assert dicts(upload_status_update("finbox", "s-1", body)) == [
        upload_session(state, word, terminal=terminal)
    ]


def test_upload_status_accounts_are_masked_and_statements_mapped() -> None:
    body = {
        "upload_status": "COMPLETED",
        "session_expiry_timestamp": "2025-11-13 07:48:44",
        "session_date_range": {"from_date": "01/05/2025", "to_date": "31/10/2025"},
        "accounts": [
            {
                "account_id": "acc-1",
                "account_number": "918020047563135",
                "bank_name": "axis",
                "last_updated_at": "2025-11-13 06:48:43.660968+00:00",
                "account_status": "COMPLETED",
                "months": ["2025-09", "2025-10"],
                "missing_data": [],
                "statements": [
                    {
                        "statement_id": "st-1",
                        "statement_status": "failed",
                        "error_code": "BANK_NAME_MISMATCH",
                        "error_message": "Bank in statement is not axis",
                        "source": "pdf",
                    }
                ],
            }
        ],
    }
    assert dicts(upload_status_update("finbox", "s-1", body)) == [
        {
            "name": f"{SESSION}/statements/st-1",
            "source": "finbox",
            "provider": "PROVIDER_FINBOX",
            "kind": "KIND_STATEMENT",
            "parent": SESSION,
            "state": "STATE_FAILED",
            "terminal": True,
            "stage": "STAGE_UPLOAD",
            "providerState": "failed",
            "error": {
                "reason": "ERROR_REASON_ACCOUNT_UNIDENTIFIED",
                "providerCode": "BANK_NAME_MISMATCH",
                "message": "Bank in statement is not axis",
            },
            "attributes": {"account_id": "acc-1", "source": "pdf"},
        },
        {
            "name": f"{SESSION}/accounts/acc-1",
            "source": "finbox",
            "provider": "PROVIDER_FINBOX",
            "kind": "KIND_ACCOUNT",
            "parent": SESSION,
            "state": "STATE_COMPLETED",
            "stage": "STAGE_UPLOAD",
            "providerState": "COMPLETED",
            "occurredAt": "2025-11-13T06:48:43.660968Z",
            "attributes": {
                "bank_name": "axis",
                "account_number": "XXXXXXXXXXX3135",
                "months": "2025-09,2025-10",
            },
        },
        upload_session("STATE_COMPLETED", "COMPLETED"),
    ]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"upload_status": "UPLOADING"}, "upload_status: unknown value 'UPLOADING'"),
        ({"upload_status": None}, "upload_status"),
        ({}, "upload_status: Field required"),
        ([], "Input should be a valid dictionary"),
        (
            {"upload_status": "COMPLETED", "accounts": [{"account_id": 7, "account_status": "x"}]},
            "accounts.0.account_id",
        ),
    ],
)
def test_upload_status_invalid_answers(body: object, message: str) -> None:
    with pytest.raises(InvalidPayloadError, match="session_upload_status") as caught:
        upload_status_update("finbox", "s-1", body)
    assert message in str(caught.value)


# --- poll: progress ---------------------------------------------------------------------


def processing_session(
    state: str, provider_state: str, progress: tuple[int, int] | None, **extra: Any
) -> dict[str, Any]:
    expected: dict[str, Any] = {
        "name": SESSION,
        "source": "finbox",
        "provider": "PROVIDER_FINBOX",
        "kind": "KIND_SESSION",
        "state": state,
        "stage": "STAGE_PROCESSING",
        "providerState": provider_state,
        **extra,
    }
    if progress is not None:
        expected["progress"] = {"done": str(progress[0]), "total": str(progress[1])}
    return expected


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("processing", processing_session("STATE_IN_PROGRESS", "processing", None)),
        (
            "completed",
            processing_session(
                "STATE_COMPLETED", "completed", None, terminal=True, readyToFetch=True
            ),
        ),
        ("failed", processing_session("STATE_FAILED", "failed", None, terminal=True)),
        ("PROCESSING", processing_session("STATE_IN_PROGRESS", "PROCESSING", None)),
    ],
)
def test_progress_session_words(word: str, expected: dict[str, Any]) -> None:
    assert dicts(progress_update("finbox", "s-1", {"session_progress": word})) == [expected]


def test_progress_statements_take_the_worst_status_field() -> None:
    body = {
        "session_progress": "processing",
        "progress": [
            {
                "statement_id": "st-done",
                "identity_status": "completed",
                "transaction_status": "completed",
                "processing_status": "completed",
                "fraud_status": "completed",
                "message": None,
                "source": "pdf",
            },
            {
                "statement_id": "st-busy",
                "identity_status": "completed",
                "transaction_status": "processing",
                "processing_status": "completed",
                "fraud_status": None,
                "message": None,
                "source": "aa",
            },
            {
                "statement_id": "st-bad",
                "identity_status": "completed",
                "transaction_status": "failed",
                "processing_status": "processing",
                "fraud_status": "processing",
                "message": "Transactions could not be extracted",
                "source": "pdf",
            },
            # Nothing known yet: no update for this statement.
            {"statement_id": "st-unknown", "processing_status": None, "source": "pdf"},
        ],
    }
    common = {
        "source": "finbox",
        "provider": "PROVIDER_FINBOX",
        "kind": "KIND_STATEMENT",
        "parent": SESSION,
        "stage": "STAGE_PROCESSING",
    }
    assert dicts(progress_update("finbox", "s-1", body)) == [
        {
            **common,
            "name": f"{SESSION}/statements/st-done",
            "state": "STATE_COMPLETED",
            "terminal": True,
            "providerState": "completed",
            "attributes": {
                "processing_status": "completed",
                "identity_status": "completed",
                "transaction_status": "completed",
                "fraud_status": "completed",
                "source": "pdf",
            },
        },
        {
            **common,
            "name": f"{SESSION}/statements/st-busy",
            "state": "STATE_IN_PROGRESS",
            "providerState": "processing",
            "attributes": {
                "processing_status": "completed",
                "identity_status": "completed",
                "transaction_status": "processing",
                "source": "aa",
            },
        },
        {
            **common,
            "name": f"{SESSION}/statements/st-bad",
            "state": "STATE_FAILED",
            "terminal": True,
            "providerState": "failed",
            "error": {
                "reason": "ERROR_REASON_UNKNOWN",
                "message": "Transactions could not be extracted",
            },
            "attributes": {
                "processing_status": "processing",
                "identity_status": "completed",
                "transaction_status": "failed",
                "fraud_status": "processing",
                "source": "pdf",
            },
        },
        processing_session("STATE_IN_PROGRESS", "processing", (2, 3)),
    ]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"session_progress": "queued"}, "session_progress: unknown value 'queued'"),
        (
            {
                "session_progress": "processing",
                "progress": [{"statement_id": "st", "fraud_status": "flagged"}],
            },
            "progress.0.fraud_status: unknown value 'flagged'",
        ),
        ({"session_progress": "processing", "progress": [{}]}, "progress.0.statement_id"),
        ({"error": {"code": "PROCESSING_NOT_REQUESTED"}}, "session_progress: Field required"),
    ],
)
def test_progress_invalid_answers(body: object, message: str) -> None:
    with pytest.raises(InvalidPayloadError, match="progress answer") as caught:
        progress_update("finbox", "s-1", body)
    assert message in str(caught.value)


# --- shape detection and validation ----------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"event_name": None, "session_id": "s"},
        {"event_name": 3, "session_id": "s"},
        {"event_name": ["ENRICHMENT_NOTIFICATION"], "session_id": "s"},
        {"event_name": "", "session_id": "s"},
        {"session_id": "s", "accounts": []},
        {"entity_id": "e"},
        {"progress": "completed"},
        {"upload_status": "COMPLETED"},
    ],
)
def test_unknown_shapes(payload: dict[str, Any]) -> None:
    with pytest.raises(UnknownShapeError):
        ADAPTER.normalize(SOURCE, payload)


def test_event_name_case_is_not_significant() -> None:
    statuses = ADAPTER.normalize(
        SOURCE, {"event_name": " session_expiry_notification", "session_id": "s"}
    )
    assert [(s.name, s.state, s.terminal) for s in statuses] == [
        ("sources/finbox/sessions/s", State.STATE_EXPIRED, True)
    ]


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (
            {"event_name": "ENRICHMENT_NOTIFICATION", "session_id": None},
            "invalid FinBox enrichment webhook: session_id: Input should be a valid string",
        ),
        (
            {"event_name": "ENRICHMENT_NOTIFICATION", "session_id": "has space"},
            "session_id: Value error, must be 1-256 characters",
        ),
        (
            {"event_name": "ENRICHMENT_NOTIFICATION", "session_id": "x" * 257},
            "session_id: Value error, must be 1-256 characters",
        ),
        (
            {"event_name": "ENRICHMENT_NOTIFICATION", "session_id": "s", "accounts": {}},
            "accounts: Input should be a valid list",
        ),
        (
            {
                "event_name": "ENRICHMENT_NOTIFICATION",
                "session_id": "s",
                "accounts": [{"account_id": "a", "account_status": "partial"}],
            },
            "accounts.0.account_status: unknown value 'partial'; expected one of completed, failed",
        ),
        (
            {
                "event_name": "SESSION_REQUIREMENT_COMPLETION_NOTIFICATION",
                "session_id": "s",
                "accounts": [
                    {
                        "account_id": "a",
                        "account_status": "PARTIAL",
                        "statements": [{"statement_id": "st", "statement_status": "queued"}],
                    }
                ],
            },
            "accounts.0.statements.0.statement_status: unknown value 'queued'",
        ),
        (
            {
                "event_name": "SESSION_REQUIREMENT_COMPLETION_NOTIFICATION",
                "session_id": "s",
                "accounts": [{"account_id": "a", "account_status": "PARTIAL", "months": [2025]}],
            },
            "accounts.0.months.0: Input should be a valid string",
        ),
        (
            {"entity_id": "e", "progress": None},
            "invalid FinBox entity webhook: progress: Input should be a valid string",
        ),
        (
            {"entity_id": "e", "progress": "done"},
            "progress: unknown value 'done'",
        ),
        (
            {"entity_id": "e", "progress": "failed", "statement_id": "a/b"},
            "statement_id: Value error",
        ),
    ],
)
def test_invalid_payloads_say_what_is_wrong(payload: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidPayloadError) as caught:
        ADAPTER.normalize(SOURCE, payload)
    assert message in str(caught.value)


def test_bad_timestamps_lose_only_the_time() -> None:
    for value in [
        "yesterday",
        1731480524,
        None,
        "0001-01-01T00:00:00+01:00",
        "9999-12-31T23:59:59-01:00",
    ]:
        payload = {
            "event_name": "SESSION_REQUIREMENT_COMPLETION_NOTIFICATION",
            "session_id": "s",
            "accounts": [
                {"account_id": "a", "account_status": "PARTIAL", "last_updated_at": value}
            ],
        }
        account = ADAPTER.normalize(SOURCE, payload)[0]
        assert account.state == State.STATE_PARTIAL
        assert not account.HasField("occurred_at")


def test_time_with_an_offset_is_converted_to_utc() -> None:
    payload = {
        "event_name": "SESSION_REQUIREMENT_COMPLETION_NOTIFICATION",
        "session_id": "s",
        "accounts": [
            {
                "account_id": "a",
                "account_status": "PARTIAL",
                "last_updated_at": "2025-11-13 12:18:44+05:30",
            }
        ],
    }
    account = ADAPTER.normalize(SOURCE, payload)[0]
    assert MessageToDict(account)["occurredAt"] == "2025-11-13T06:48:44Z"


def test_lone_surrogates_in_text_are_replaced_and_refused_in_ids() -> None:
    payload = {
        "event_name": "SESSION_REQUIREMENT_COMPLETION_NOTIFICATION",
        "session_id": "s",
        "accounts": [
            {
                "account_id": "a",
                "account_status": "PARTIAL",
                "bank_name": "ax\ud800is",
                "missing_data": ["\udfff"],
            }
        ],
    }
    account = ADAPTER.normalize(SOURCE, payload)[0]
    assert account.attributes["bank_name"] == "ax?is"
    assert account.attributes["missing_data"] == "?"
    payload["session_id"] = "s\ud800"
    with pytest.raises(InvalidPayloadError, match="session_id"):
        ADAPTER.normalize(SOURCE, payload)


def test_entity_is_never_terminal_and_its_statements_are() -> None:
    for progress in ("completed", "failed"):
        statement, entity = ADAPTER.normalize(
            SOURCE, {"entity_id": "e", "statement_id": "st", "progress": progress, "reason": ""}
        )
        assert statement.terminal
        assert not entity.terminal


# --- properties over every fixture -------------------------------------------------------


FIXTURE_PAYLOADS: list[dict[str, Any]] = [
    json.loads(p.read_text())["payload"] for p in sorted(FIXTURES.glob("*.json"))
]


@pytest.mark.parametrize("payload", FIXTURE_PAYLOADS)
def test_children_come_before_their_parent(payload: dict[str, Any]) -> None:
    try:
        statuses = ADAPTER.normalize(SOURCE, payload)
    except (UnknownShapeError, InvalidPayloadError):
        return
    names = [s.name for s in statuses]
    for i, status in enumerate(statuses):
        if status.parent:
            assert names.index(status.parent) > i, f"{status.name} comes after its parent"
    # The top-level subject comes last, and only once.
    assert statuses[-1].parent == ""
    assert sum(not s.parent for s in statuses) == 1


# Any code point, lone surrogates included: json.loads accepts "\ud800".
TEXT = st.text(st.characters(exclude_categories=()))
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)
KEYS = st.sampled_from(
    [
        "event_name",
        "session_id",
        "accounts",
        "statements",
        "account_id",
        "account_status",
        "statement_id",
        "statement_status",
        "error_code",
        "error_message",
        "months",
        "missing_data",
        "last_updated_at",
        "insights_available",
        "entity_id",
        "progress",
        "link_id",
        "reason",
        "date_time",
        "account_number",
        "bank_name",
    ]
)
# Values the mapping gives meaning to, so mutations also reach the success paths.
WORDS = st.sampled_from(
    [
        "completed",
        "COMPLETED",
        "failed",
        "processing",
        "PARTIAL",
        "",
        "PASSWORD_INCORRECT",
        "2025-11-13 06:48:44",
        "2025-11-13T06:48:43.660968Z",
        "0001-01-01T00:00:00+01:00",
        "id-1",
    ]
)
VALUES = WORDS | JSON
EVENT_NAMES = st.sampled_from(
    [
        "SESSION_REQUIREMENT_COMPLETION_NOTIFICATION",
        "SESSION_EXPIRY_NOTIFICATION",
        "ENRICHMENT_NOTIFICATION",
    ]
)


def assert_contract(payload: dict[str, Any]) -> None:
    try:
        statuses = ADAPTER.normalize(SOURCE, payload)
    except (UnknownShapeError, InvalidPayloadError):
        return
    for status in statuses:
        parse_name(status.name)
        status.SerializeToString()


def mutate(value: Any, data: st.DataObject) -> Any:
    """Replace, drop or add something somewhere in ``value``."""
    if isinstance(value, dict) and value and data.draw(st.booleans()):
        key = data.draw(st.sampled_from(sorted(value)))
        action = data.draw(st.sampled_from(["replace", "drop", "descend"]))
        if action == "replace":
            value[key] = data.draw(VALUES)
        elif action == "drop":
            del value[key]
        else:
            value[key] = mutate(value[key], data)
        return value
    if isinstance(value, list) and value and data.draw(st.booleans()):
        i = data.draw(st.integers(0, len(value) - 1))
        value[i] = mutate(value[i], data)
        return value
    if isinstance(value, dict):
        value[data.draw(KEYS)] = data.draw(VALUES)
        return value
    return data.draw(VALUES)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(KEYS | st.text(max_size=8), VALUES, max_size=8), EVENT_NAMES)
def test_fuzz_random_objects(payload: dict[str, Any], event_name: str) -> None:
    assert_contract(payload)
    assert_contract({**payload, "event_name": event_name})


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_fuzz_mutated_fixtures(data: st.DataObject) -> None:
    payload = copy.deepcopy(data.draw(st.sampled_from(FIXTURE_PAYLOADS)))
    for _ in range(data.draw(st.integers(1, 4))):
        payload = mutate(payload, data)
    if isinstance(payload, dict):
        assert_contract(payload)


POLL_ANSWERS: list[dict[str, Any]] = [
    {
        "upload_status": "COMPLETED",
        "accounts": [
            {
                "account_id": "a",
                "account_number": "918020047563135",
                "account_status": "PARTIAL",
                "last_updated_at": "2025-11-13 06:48:44",
                "statements": [{"statement_id": "st", "statement_status": "failed"}],
            }
        ],
    },
    {
        "session_progress": "processing",
        "progress": [
            {"statement_id": "st", "processing_status": "completed", "fraud_status": "failed"}
        ],
    },
]


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_fuzz_poll_answers(data: st.DataObject) -> None:
    body = copy.deepcopy(data.draw(st.sampled_from(POLL_ANSWERS)))
    for _ in range(data.draw(st.integers(1, 4))):
        body = mutate(body, data)
    for update in (upload_status_update, progress_update):
        try:
            statuses = update("finbox", "s-1", body)
        except InvalidPayloadError:
            continue
        for status in statuses:
            status.SerializeToString()


def test_huge_and_odd_strings() -> None:
    huge = "9" * 1_000_000
    payload = {
        "event_name": "SESSION_REQUIREMENT_COMPLETION_NOTIFICATION",
        "session_id": "s",
        "accounts": [
            {
                "account_id": "a\u00e9\u4e2d\U0001f600",
                "account_status": "PARTIAL",
                "account_number": huge,
                "bank_name": "\x00",
                "months": [huge],
            }
        ],
    }
    account, session = ADAPTER.normalize(SOURCE, payload)
    assert account.attributes["account_number"] == "X" * (len(huge) - 4) + "9999"
    assert session.name == "sources/finbox/sessions/s"
    with pytest.raises(InvalidPayloadError):
        ADAPTER.normalize(SOURCE, {**payload, "session_id": huge})
