"""banqware adapter: the enum tables exhaustively, ordering with core.apply, and fuzzing.

The golden fixtures in tests/fixtures/banqware show each payload variant in full; these
tests cover what is better written as a table or a property.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from statusgate.core.apply import apply
from statusgate.core.names import parse_name
from statusgate.providers.banqware import BanqwareAdapter, BanqwareSource
from statusgate.providers.base import InvalidPayloadError, UnknownShapeError
from statusgate.providers.finbox import FinboxSource
from statusgate.providers.registry import PROVIDERS
from statusgate.v1.status_pb2 import ErrorReason, Stage, State, Status

ADAPTER = BanqwareAdapter()
SOURCE = BanqwareSource(id="bq", provider="banqware")
FIXTURES = PROVIDERS.spec("banqware").fixtures

S = State
E = ErrorReason

# paymentStatus: number, name -> state, error reason; all are terminal but
# Created and InProgress.
PAYMENTS: list[tuple[int, str, State.ValueType, ErrorReason.ValueType]] = [
    (1, "Created", S.STATE_PENDING, E.ERROR_REASON_UNSPECIFIED),
    (2, "InProgress", S.STATE_IN_PROGRESS, E.ERROR_REASON_UNSPECIFIED),
    (3, "Completed", S.STATE_COMPLETED, E.ERROR_REASON_UNSPECIFIED),
    (4, "Rejected", S.STATE_REJECTED, E.ERROR_REASON_UNSPECIFIED),
    (5, "NotSupported", S.STATE_FAILED, E.ERROR_REASON_UNSUPPORTED),
    (6, "Cancelled", S.STATE_CANCELLED, E.ERROR_REASON_UNSPECIFIED),
    (7, "Expired", S.STATE_EXPIRED, E.ERROR_REASON_UNSPECIFIED),
]
PAYMENT_VALUES = [
    pytest.param(value, number, name, state, reason, id=f"{name}-{value!r}")
    for number, name, state, reason in PAYMENTS
    for value in (number, str(number), name, name.upper(), name.lower())
]

SESSION_STATUSES: list[tuple[str, State.ValueType, ErrorReason.ValueType]] = [
    ("Initiated", S.STATE_PENDING, E.ERROR_REASON_UNSPECIFIED),
    ("InProgress", S.STATE_IN_PROGRESS, E.ERROR_REASON_UNSPECIFIED),
    ("Finished", S.STATE_COMPLETED, E.ERROR_REASON_UNSPECIFIED),
    ("Failed", S.STATE_FAILED, E.ERROR_REASON_PROVIDER_ERROR),
    ("AuthorizationFailed", S.STATE_FAILED, E.ERROR_REASON_AUTHORIZATION_FAILED),
    ("AuthenticationRequired", S.STATE_FAILED, E.ERROR_REASON_AUTHORIZATION_FAILED),
]
STAGES: list[tuple[str, Stage.ValueType]] = [
    ("Authentication", Stage.STAGE_AUTHENTICATION),
    ("Accounts", Stage.STAGE_ACCOUNTS),
    ("AccountBalances", Stage.STAGE_ACCOUNT_BALANCES),
    ("Transactions", Stage.STAGE_TRANSACTIONS),
    ("TransactionDetails", Stage.STAGE_TRANSACTION_DETAILS),
]


def normalize(payload: dict[str, Any], source: BanqwareSource = SOURCE) -> list[Status]:
    return ADAPTER.normalize(source, payload)


def session(stage: str, status: str, **extra: Any) -> dict[str, Any]:
    return {"sessionId": "s1", "stage": stage, "status": status, **extra}


def page(transaction_status: str, count: int, **dates: str) -> dict[str, Any]:
    return {
        "sessionId": "s1",
        "accountId": "a1",
        "transactionStatus": transaction_status,
        "transactionsCount": count,
        **dates,
    }


def invalid_message(payload: dict[str, Any]) -> str:
    with pytest.raises(InvalidPayloadError) as caught:
        normalize(payload)
    return str(caught.value)


def apply_all(updates: list[Status]) -> Status | None:
    current: Status | None = None
    for update in updates:
        current = apply(current, update) or current
    return current


# --- the tables -----------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "number", "name", "state", "reason"), PAYMENT_VALUES)
def test_payment_status_by_name_or_number(
    value: int | str,
    number: int,
    name: str,
    state: State.ValueType,
    reason: ErrorReason.ValueType,
) -> None:
    [status] = normalize({"paymentId": "p1", "paymentStatus": value})
    assert status.name == "sources/bq/payments/p1"
    assert status.parent == ""
    assert status.stage == Stage.STAGE_PAYMENT
    assert status.state == state
    assert status.terminal == (number >= 3)
    assert status.provider_state == str(value)
    assert status.error.reason == reason
    assert status.error.provider_code == (name if reason else "")
    assert not status.ready_to_fetch


@pytest.mark.parametrize("bad", [0, 8, 42, -3, "42", "Settled", "", 3.0, True, None, [3], {}])
def test_payment_status_outside_the_enum_is_invalid(bad: object) -> None:
    message = invalid_message({"paymentId": "p1", "paymentStatus": bad})
    assert message.startswith("invalid banqware payment callback: paymentStatus: ")


@pytest.mark.parametrize(("stage_word", "stage"), STAGES)
@pytest.mark.parametrize(("status_word", "state", "reason"), SESSION_STATUSES)
def test_session_stage_and_status(
    stage_word: str,
    stage: Stage.ValueType,
    status_word: str,
    state: State.ValueType,
    reason: ErrorReason.ValueType,
) -> None:
    [status] = normalize(session(stage_word, status_word))
    assert (status.name, status.stage, status.state) == ("sources/bq/sessions/s1", stage, state)
    assert status.error.reason == reason
    assert status.provider_state == status_word
    # Default final stage Transactions: failures end a session anywhere, success at or
    # past Transactions; anything past Transactions means Transactions finished.
    past_final = stage == Stage.STAGE_TRANSACTION_DETAILS
    finished_final = stage == Stage.STAGE_TRANSACTIONS and state == S.STATE_COMPLETED
    assert status.terminal == (
        state == S.STATE_FAILED
        or (state == S.STATE_COMPLETED and stage >= Stage.STAGE_TRANSACTIONS)
    )
    assert status.ready_to_fetch == (past_final or finished_final)


@pytest.mark.parametrize("word", ["finished", "FINISHED", "Finished", "in_progress", "In Progress"])
def test_session_words_ignore_case_and_separators(word: str) -> None:
    [status] = normalize(session("accounts", word))
    assert status.state in (S.STATE_COMPLETED, S.STATE_IN_PROGRESS)
    assert status.provider_state == word


@pytest.mark.parametrize("word", ["fin", "Finishedd", "Paused", "3", ""])
def test_unknown_session_status_words_are_invalid(word: str) -> None:
    message = invalid_message(session("Accounts", word))
    assert message.startswith("invalid banqware session callback: status: ")
    assert "unknown status" in message


@pytest.mark.parametrize(("final_stage", "stage"), STAGES)
def test_final_stage_is_configurable(final_stage: str, stage: Stage.ValueType) -> None:
    source = BanqwareSource(id="bq", provider="banqware", final_stage=final_stage)  # type: ignore[arg-type]
    for stage_word, other in STAGES:
        [status] = normalize(session(stage_word, "Finished"), source)
        assert status.terminal == (other >= stage), (final_stage, stage_word)
        assert status.ready_to_fetch == (other >= stage), (final_stage, stage_word)


# --- accounts ----------------------------------------------------------------------------------


def test_accounts_listed_when_accounts_finished() -> None:
    details = [
        {"accountNumber": "PL61 1090 1014 0000 0712 1981 2874", "accountRelation": "Owner"},
        {"accountNumber": "12345678", "accountRelation": ["Owner", 7, None, {"x": 1}]},
    ]
    sess, first, second = normalize(session("Accounts", "Finished", details=details))
    assert (sess.progress.done, sess.progress.total) == (2, 2)
    assert first.name == "sources/bq/sessions/s1/accounts/PL61109010140000071219812874"
    assert first.parent == sess.name
    assert (first.state, first.stage, first.terminal) == (
        S.STATE_COMPLETED,
        Stage.STAGE_ACCOUNTS,
        False,
    )
    assert first.attributes["account_number"] == "XXXXXXXXXXXXXXXXXXXXXXXX2874"
    assert first.attributes["account_relation"] == "Owner"
    assert second.attributes["account_number"] == "XXXX5678"
    # Non-scalar relations are dropped, numbers kept as text.
    assert second.attributes["account_relation"] == "Owner,7"
    assert "2874" not in "".join(first.attributes.values()).replace("XXXX2874", "")


def test_listed_accounts_on_a_failed_later_stage_stay_at_accounts() -> None:
    details = [{"accountNumber": "12345678"}]
    sess, account = normalize(session("Transactions", "Failed", details=details))
    assert sess.state == S.STATE_FAILED
    assert (account.state, account.stage, account.terminal) == (
        S.STATE_COMPLETED,
        Stage.STAGE_ACCOUNTS,
        False,
    )


@pytest.mark.parametrize(
    ("details", "where"),
    [
        ("accounts", "details: "),
        (7, "details: "),
        ([{"accountNumber": None}], "details.0.accountNumber: "),
        ([{"accountNumber": "  "}], "details.0.accountNumber: "),
        ([{"accountNumber": "1/2"}], "details.0.accountNumber: "),
        ([{"accountNumber": "1"}, "2"], "details.1: "),
        ({"accounts": "x"}, "details: "),
    ],
)
def test_unusable_details_are_invalid_and_say_where(details: object, where: str) -> None:
    assert where in invalid_message(session("Accounts", "Finished", details=details))


@pytest.mark.parametrize("details", [None, [], {}, {"accounts": None}, {"accounts": []}])
def test_details_without_accounts_give_the_session_only(details: object) -> None:
    [status] = normalize(session("Accounts", "Finished", details=details))
    assert not status.HasField("progress")


def test_booked_and_pending_pages_accumulate_on_one_account() -> None:
    booked = normalize(page("booked", 120, earliestAccountDate="2023-01-01"))
    pending = normalize(page("pending", 4, earliestAccountDate="2024-06-30"))
    assert [s.name for s in booked] == ["sources/bq/sessions/s1/accounts/a1"]
    for first, second in ((booked, pending), (pending, booked)):
        account = apply_all([*first, *second])
        assert account is not None
        assert account.state == S.STATE_IN_PROGRESS
        assert account.stage == Stage.STAGE_TRANSACTIONS
        assert dict(account.attributes) == {
            "transactions_count_booked": "120",
            "earliest_accounting_date_booked": "2023-01-01",
            "transactions_count_pending": "4",
            "earliest_accounting_date_pending": "2024-06-30",
        }
        assert account.progress.done == 120


def test_page_reaches_an_account_named_by_account_id_in_details() -> None:
    listed = normalize(
        session("Accounts", "Finished", details=[{"accountId": "a1", "accountNumber": "12345678"}])
    )
    updates = [*listed, *normalize(page("booked", 9))]
    account = apply_all([u for u in updates if u.name.endswith("/accounts/a1")])
    assert account is not None
    assert (account.stage, account.state) == (Stage.STAGE_TRANSACTIONS, S.STATE_IN_PROGRESS)
    assert account.attributes["account_number"] == "XXXX5678"
    assert account.attributes["transactions_count_booked"] == "9"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("transactionsCount", -1),
        ("transactionsCount", 2**63),
        ("transactionsCount", "many"),
        ("transactionsCount", 1.5),
        ("transactionStatus", "booked transactions"),
        ("transactionStatus", 5),
        ("accountId", None),
        ("sessionId", None),
    ],
)
def test_unusable_page_fields_are_invalid(field: str, value: object) -> None:
    message = invalid_message({**page("booked", 1), field: value})
    assert message.startswith(f"invalid banqware first-transactions-page: {field}: ")


# --- ordering with core.apply ------------------------------------------------------------------


def test_stages_past_the_final_one_change_nothing_after_it_finished() -> None:
    finished = normalize(session("Transactions", "Finished"))
    later = normalize(session("TransactionDetails", "InProgress"))
    current = apply_all(finished)
    assert current is not None and current.terminal and current.ready_to_fetch
    assert apply(current, later[0]) is None


def test_a_later_stage_still_ends_a_session_whose_final_callback_was_lost() -> None:
    updates = [
        *normalize(session("Transactions", "InProgress")),
        *normalize(session("TransactionDetails", "InProgress")),
        *normalize(session("TransactionDetails", "Finished")),
    ]
    current = apply_all(updates)
    assert current is not None
    assert (current.state, current.terminal, current.ready_to_fetch) == (
        S.STATE_COMPLETED,
        True,
        True,
    )


# --- shapes, ids and lenient attributes -----------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"sessionId": "s1"},
        {"stage": "Accounts", "status": "Finished"},
        {"paymentId": "p1"},
        {"paymentStatus": 3},
        {"accountId": "a1", "sessionId": "s1"},
        {"transactionsCount": 3, "sessionId": "s1"},
    ],
)
def test_unknown_shapes(payload: dict[str, Any]) -> None:
    with pytest.raises(UnknownShapeError):
        normalize(payload)


@pytest.mark.parametrize(
    "session_id",
    [None, True, 1.5, [], {}, "", "a b", "a/b", "s1\n", "x" * 257, 10**300, "\ud800"],
)
def test_unusable_session_ids_are_invalid(session_id: object) -> None:
    message = invalid_message(session("Accounts", "Finished", sessionId=session_id))
    assert message.startswith("invalid banqware session callback: sessionId: ")
    assert len(message) < 300


def test_numeric_ids_become_their_text() -> None:
    [status] = normalize({"paymentId": 991, "paymentStatus": 1})
    assert status.name == "sources/bq/payments/991"


def test_odd_attribute_values_are_dropped_not_fatal() -> None:
    [status] = normalize(
        session(
            "Accounts",
            "InProgress",
            bank="ING",
            bankId={"id": 1},
            isSca="perhaps",
            userId=["u"],
            sessionExternalId="ext-\ud800",
            extra={"anything": [1, 2]},
        )
    )
    assert dict(status.attributes) == {"session_external_id": "ext-?"}
    [status] = normalize(session("Accounts", "InProgress", isSca="TRUE", userId=42))
    assert dict(status.attributes) == {"is_sca": "true", "user_id": "42"}


def test_bank_secondary_identifiers_are_joined() -> None:
    bank = {
        "id": "ING",
        "secondaryIdentifiers": [
            {"type": "BIC", "value": "INGBPLPW"},
            {"type": "NationalId", "value": 1050},
            {"type": "Empty"},
            "junk",
        ],
    }
    [status] = normalize(session("Accounts", "InProgress", bank=bank))
    assert status.attributes["bank_id"] == "ING"
    assert status.attributes["bank_secondary_identifiers"] == "BIC=INGBPLPW,NationalId=1050"


def test_payment_attributes() -> None:
    [status] = normalize(
        {
            "paymentId": "p1",
            "paymentStatus": "Completed",
            "paymentExternalId": "inv-1",
            "bankId": "MBANK",
            "user": {"externalId": "c-9"},
        }
    )
    assert dict(status.attributes) == {
        "payment_external_id": "inv-1",
        "user_external_id": "c-9",
        "bank_id": "MBANK",
    }


def test_another_providers_source_is_a_wiring_error() -> None:
    with pytest.raises(TypeError):
        ADAPTER.normalize(FinboxSource(id="f", provider="finbox"), session("Accounts", "Finished"))


# --- fuzzing ---------------------------------------------------------------------------------

KEYS = [
    "sessionId", "stage", "status", "details", "accounts", "accountNumber", "accountId",
    "accountRelation", "bank", "bankId", "id", "secondaryIdentifiers", "isSca", "userId",
    "sessionExternalId", "transactionsCount", "transactionStatus", "earliestAccountDate",
    "paymentId", "paymentStatus", "paymentExternalId", "user", "externalId",
]  # fmt: skip
TEXT = st.text(st.characters(exclude_categories=()), max_size=20) | st.sampled_from(
    ["Accounts", "finished", "3", "booked", "", "x" * 300, "a/b", "s1\n", "\ud800"]
)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.sampled_from([2**63, -(2**63) - 1, 10**400])
    | st.floats(allow_nan=False)
    | TEXT
)
KEY = st.sampled_from(KEYS) | st.text(max_size=6)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEY, inner, max_size=5),
    max_leaves=25,
)
SAMPLES = [json.loads(p.read_text())["payload"] for p in sorted(FIXTURES.glob("*.json"))]


def check_contract(payload: dict[str, Any]) -> None:
    try:
        statuses = normalize(payload)
    except (UnknownShapeError, InvalidPayloadError):
        return
    for status in statuses:
        status.SerializeToString()
        assert str(parse_name(status.name)) == status.name


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    sample=st.sampled_from(SAMPLES),
    changes=st.dictionaries(KEY, JSON, max_size=4),
    drop=st.sets(st.sampled_from(KEYS), max_size=3),
)
def test_mutated_callbacks_only_raise_the_two_errors(
    sample: dict[str, Any], changes: dict[str, Any], drop: set[str]
) -> None:
    payload = {k: v for k, v in sample.items() if k not in drop}
    check_contract({**payload, **changes})


@settings(max_examples=300, deadline=None)
@given(payload=st.dictionaries(KEY, JSON, max_size=8))
def test_arbitrary_objects_only_raise_the_two_errors(payload: dict[str, Any]) -> None:
    check_contract(payload)
