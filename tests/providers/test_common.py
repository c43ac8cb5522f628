"""The provider toolkit: ids, text, times, word tables, outcomes and ``build_status``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from statusgate.core.names import ResourceName, parse_name
from statusgate.providers.base import InvalidPayloadError
from statusgate.providers.common import (
    ANY_CASE,
    ANY_CASE_AND_SEPARATORS,
    ANY_CASE_AND_SPACING,
    EXACT,
    INT64_MAX,
    Folding,
    Outcome,
    Payload,
    ProviderId,
    Table,
    Text,
    Time,
    build_status,
    capped,
    child_name,
    invalid,
    loose_text,
    mask_account_number,
    parse,
    parse_provider_time,
    provider_id,
    shown,
    subject_name,
    utf8,
)
from statusgate.v1.status_pb2 import ErrorReason, Provider, Stage, State

R = ErrorReason
S = State


class Sample(Payload):
    id: ProviderId
    note: Text | None = None
    at: Time = None


# --- ids ----------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["a", "x" * 256, "a:b.c-d_e", "a\u00e9\u4e2d\U0001f600", "7"])
def test_provider_id_accepts_what_a_name_accepts(value: str) -> None:
    assert provider_id(value) == value
    assert subject_name("src", "sessions", value).path == (("sessions", value),)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("", "without '/' or whitespace"),
        ("x" * 257, "1-256 characters"),
        ("a/b", "without '/'"),
        ("a b", "whitespace"),
        ("s\n", "whitespace"),
        ("tab\there", "whitespace"),
        ("nul\x00", "control characters"),
        ("bell\x07", "control characters"),
        ("del\x7f", "control characters"),
        ("a\ud800", "lone surrogate"),
    ],
)
def test_provider_id_refuses_what_a_name_refuses(value: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        provider_id(value)
    with pytest.raises(InvalidPayloadError, match="cannot name the subject"):
        subject_name("src", "sessions", value)


def test_ids_in_payloads_are_refused_with_their_path() -> None:
    with pytest.raises(InvalidPayloadError) as caught:
        parse(Sample, {"id": "a/b"}, "Sample webhook")
    assert str(caught.value).startswith("invalid Sample webhook: id: Value error, must be 1-256")
    with pytest.raises(InvalidPayloadError, match="id: Input should be a valid string"):
        parse(Sample, {"id": 7}, "Sample webhook")


def test_child_name_refuses_as_an_invalid_payload() -> None:
    parent = subject_name("src", "sessions", "s1")
    assert str(child_name(parent, "accounts", "a1")) == "sources/src/sessions/s1/accounts/a1"
    with pytest.raises(InvalidPayloadError, match="cannot name the subject"):
        child_name(parent, "accounts", "a b")
    with pytest.raises(InvalidPayloadError, match="no child collection"):
        child_name(parent, "payments", "p1")


def test_a_refused_name_quotes_a_long_id_only_in_part() -> None:
    with pytest.raises(InvalidPayloadError) as caught:
        subject_name("src", "sessions", "x" * 100_000)
    assert len(str(caught.value)) < 1100
    assert "..." in str(caught.value)


# --- text ---------------------------------------------------------------------------------


def test_utf8_replaces_lone_surrogates_only() -> None:
    assert utf8("plain \u00e9\U0001f600") == "plain \u00e9\U0001f600"
    assert utf8("a\ud800b\udfff") == "a?b?"
    assert utf8("") == ""


def test_text_fields_are_made_storable() -> None:
    sample = parse(Sample, {"id": "s", "note": "ax\ud800is"}, "Sample")
    assert sample.note == "ax?is"
    sample.model_dump_json()  # would raise on a lone surrogate


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("text", "text"),
        ("", None),
        ("a\ud800", "a?"),
        (7, "7"),
        (-7, "-7"),
        (0, "0"),
        (INT64_MAX, str(INT64_MAX)),
        (INT64_MAX + 1, None),
        (True, None),
        (False, None),
        (1.5, None),
        (None, None),
        ([1], None),
        ({"a": 1}, None),
    ],
)
def test_loose_text_keeps_text_and_integers_only(value: object, expected: str | None) -> None:
    assert loose_text(value) == expected


def test_loose_text_strips_cuts_and_bounds_integers_when_asked() -> None:
    assert loose_text("  padded  ") == "  padded  "
    assert loose_text("  padded  ", strip=True) == "padded"
    assert loose_text("   ", strip=True) is None
    assert loose_text("x" * 300, limit=256) == "x" * 256
    assert loose_text(" " + "y" * 300, limit=10, strip=True) == "y" * 10
    assert loose_text(10**29, max_int=10**30 - 1) == str(10**29)
    assert loose_text(10**30, max_int=10**30 - 1) is None


def test_shown_quotes_and_cuts() -> None:
    assert shown("word") == "'word'"
    assert shown("x" * 41) == repr("x" * 40 + "...")
    assert shown("x" * 40) == repr("x" * 40)
    assert shown(42) == "42"
    assert shown(10**50) == "a number of over 40 digits"
    assert shown("\ud800") == "'\\ud800'"  # the quote itself stays valid UTF-8


def test_capped() -> None:
    assert capped("short", 10) == "short"
    assert capped("x" * 11, 10) == "x" * 7 + "..."
    assert len(capped("x" * 5000, 1024)) == 1024


def test_mask_account_number_keeps_the_last_four() -> None:
    assert mask_account_number("918020047563135") == "XXXXXXXXXXX3135"
    assert mask_account_number("1234") == "1234"
    assert mask_account_number("") is None
    assert mask_account_number(None) is None


# --- times --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2025-11-13 06:48:44", datetime(2025, 11, 13, 6, 48, 44, tzinfo=UTC)),
        (
            "2025-11-13 06:48:43.660968+00:00",
            datetime(2025, 11, 13, 6, 48, 43, 660968, tzinfo=UTC),
        ),
        ("2025-11-13T06:48:43.660968Z", datetime(2025, 11, 13, 6, 48, 43, 660968, tzinfo=UTC)),
        ("2018-08-14T09:00:55.88", datetime(2018, 8, 14, 9, 0, 55, 880000, tzinfo=UTC)),
        ("2025-11-13 12:18:44+05:30", datetime(2025, 11, 13, 6, 48, 44, tzinfo=UTC)),
        (" 2024-01-01T00:00:00z ", datetime(2024, 1, 1, tzinfo=UTC)),
    ],
)
def test_provider_times_become_utc(value: str, expected: datetime) -> None:
    parsed = parse_provider_time(value)
    assert parsed == expected
    assert parsed is not None and parsed.tzinfo is not None
    assert parsed.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "value",
    [
        "yesterday",
        "",
        None,
        1731480524,
        1.5,
        ["2025-11-13 06:48:44"],
        "9999-12-31T23:59:59-14:00",
        "0001-01-01T00:00:00+14:00",
    ],
)
def test_unusable_times_give_none(value: object) -> None:
    assert parse_provider_time(value) is None


def test_time_fields_never_refuse_a_payload() -> None:
    assert parse(Sample, {"id": "s", "at": "nonsense"}, "Sample").at is None
    assert parse(Sample, {"id": "s", "at": 17}, "Sample").at is None
    at = parse(Sample, {"id": "s", "at": "2024-01-01T05:30:00+05:30"}, "Sample").at
    assert at == datetime(2024, 1, 1, tzinfo=UTC)


# --- tables -------------------------------------------------------------------------------

WORDS = Table(
    "colour",
    {"Red": Outcome(S.STATE_COMPLETED), "InProgress": Outcome(S.STATE_IN_PROGRESS)},
    ANY_CASE_AND_SEPARATORS,
)


def test_a_table_is_a_mapping_of_its_documented_words() -> None:
    assert list(WORDS) == ["Red", "InProgress"]
    assert set(WORDS) == {"Red", "InProgress"}
    assert len(WORDS) == 2
    assert WORDS["Red"] == Outcome(S.STATE_COMPLETED)
    assert "red" not in WORDS  # the mapping is exact; folding is for word/find/lookup
    with pytest.raises(KeyError):
        WORDS["red"]


@pytest.mark.parametrize(
    ("folding", "raw", "word"),
    [
        (EXACT, "Red", "Red"),
        (EXACT, "red", None),
        (EXACT, " Red", None),
        (ANY_CASE, " red\n", "Red"),
        (ANY_CASE, "RED", "Red"),
        (ANY_CASE, "In Progress", "in progress"),
        (ANY_CASE, "in_progress", None),
        (ANY_CASE_AND_SPACING, "in_progress", "in progress"),
        (ANY_CASE_AND_SPACING, " IN  PROGRESS ", "in progress"),
        (ANY_CASE_AND_SPACING, "InProgress", None),
        (ANY_CASE_AND_SEPARATORS, "In Progress", "in progress"),
        (ANY_CASE_AND_SEPARATORS, "in-progress", "in progress"),
        (ANY_CASE_AND_SEPARATORS, "INPROGRESS", "in progress"),
        (ANY_CASE_AND_SEPARATORS, "in.progress", None),
    ],
)
def test_foldings(folding: Folding, raw: str, word: str | None) -> None:
    table = Table("word", {"Red": 1, "in progress": 2}, folding)
    assert table.word(raw) == word
    assert table.find(raw) == (None if word is None else table[word])


def test_lookup_refuses_an_unknown_word_with_path_and_accepted_words() -> None:
    assert WORDS.lookup("red", "Paint webhook", "data.colour") == Outcome(S.STATE_COMPLETED)
    with pytest.raises(InvalidPayloadError) as caught:
        WORDS.lookup("Blue", "Paint webhook", "data.items[3].colour")
    assert str(caught.value) == (
        "invalid Paint webhook: data.items[3].colour: unknown colour 'Blue'; "
        "expected one of Red, InProgress (any case, with or without '_', '-' and spaces)"
    )


def test_an_exact_table_adds_no_note_and_a_long_word_is_cut() -> None:
    table = Table("code", {"A": 1, "B": 2})
    assert table.unknown("x" * 100) == f"unknown code {'x' * 40 + '...'!r}; expected one of A, B"


def test_numbered_words() -> None:
    table = Table(
        "payment status",
        {"Created": 1, "Done": 2, "Gone": 3},
        ANY_CASE_AND_SEPARATORS,
        numbers={1: "Created", 2: "Done", 3: "Gone"},
    )
    assert table.word(2) == "Done"
    assert table.word(" 3 ") == "Gone"
    assert table.word("003") == "Gone"
    assert table.word(" done\t") == "Done"
    assert table.word(4) is None
    assert table.word("4") is None
    assert table.word("1234") is None
    assert table.unknown(42) == (
        "unknown payment status 42; expected 1-3 or one of Created, Done, Gone "
        "(any case, with or without '_', '-' and spaces)"
    )
    gaps = Table("n", {"a": 0, "b": 0}, numbers={1: "a", 5: "b"})
    assert gaps.expected() == "1, 5 or one of a, b"


def test_a_table_refuses_ambiguous_or_dangling_entries() -> None:
    with pytest.raises(ValueError, match="fold to the same form"):
        Table("w", {"in_progress": 1, "In Progress": 2}, ANY_CASE_AND_SPACING)
    with pytest.raises(ValueError, match="not in the table"):
        Table("w", {"a": 1}, numbers={1: "b"})


# --- outcomes and statuses ----------------------------------------------------------------


def test_outcome_error_carries_reason_code_message_and_retryable() -> None:
    cancelled = Outcome(S.STATE_PENDING, reason=R.ERROR_REASON_USER_CANCELLED, retryable=True)
    error = cancelled.error("UserCancelled", "closed")
    assert error is not None
    assert (error.reason, error.provider_code, error.message, error.retryable) == (
        R.ERROR_REASON_USER_CANCELLED,
        "UserCancelled",
        "closed",
        True,
    )
    assert Outcome(S.STATE_FAILED).error("code", "message") is None


def test_outcome_at_a_stage() -> None:
    failed = Outcome(S.STATE_FAILED, reason=R.ERROR_REASON_PROVIDER_ERROR)
    at_accounts = failed.at(Stage.STAGE_ACCOUNTS)
    assert at_accounts.stage == Stage.STAGE_ACCOUNTS
    assert (at_accounts.state, at_accounts.reason) == (failed.state, failed.reason)
    assert failed.stage == Stage.STAGE_UNSPECIFIED  # outcomes are values
    with pytest.raises(AttributeError):
        failed.state = S.STATE_COMPLETED  # type: ignore[misc]


SESSION = parse_name("sources/finbox/sessions/s1")
ENTITY = parse_name("sources/finbox/entities/e1")
CONSENT = parse_name("sources/setu/consents/c1")


@pytest.mark.parametrize(
    ("name", "state", "stage", "final_stage", "open_ended", "terminal"),
    [
        (SESSION, S.STATE_COMPLETED, Stage.STAGE_PROCESSING, Stage.STAGE_PROCESSING, False, True),
        (SESSION, S.STATE_COMPLETED, Stage.STAGE_UPLOAD, Stage.STAGE_PROCESSING, False, False),
        (
            SESSION,
            S.STATE_IN_PROGRESS,
            Stage.STAGE_PROCESSING,
            Stage.STAGE_PROCESSING,
            False,
            False,
        ),
        (SESSION, S.STATE_FAILED, Stage.STAGE_UPLOAD, Stage.STAGE_PROCESSING, False, True),
        (ENTITY, S.STATE_COMPLETED, Stage.STAGE_UNSPECIFIED, None, False, False),
        (ENTITY, S.STATE_FAILED, Stage.STAGE_UNSPECIFIED, None, False, True),
        (ENTITY, S.STATE_FAILED, Stage.STAGE_UNSPECIFIED, None, True, False),
        (ENTITY, S.STATE_COMPLETED, Stage.STAGE_UNSPECIFIED, None, True, False),
        (CONSENT, S.STATE_ACTIVE, Stage.STAGE_CONSENT, None, False, False),
        (CONSENT, S.STATE_REVOKED, Stage.STAGE_CONSENT, None, False, True),
    ],
)
def test_build_status_decides_terminality(
    name: ResourceName,
    state: State.ValueType,
    stage: Stage.ValueType,
    final_stage: Stage.ValueType | None,
    open_ended: bool,
    terminal: bool,
) -> None:
    status = build_status(
        name,
        Provider.PROVIDER_FINBOX,
        state,
        stage,
        final_stage=final_stage,
        open_ended=open_ended,
    )
    assert status.terminal is terminal


def test_build_status_makes_text_storable_and_drops_empty_attributes() -> None:
    error = Outcome(S.STATE_FAILED, reason=R.ERROR_REASON_UNKNOWN).error("c\ud800", "m\udfff")
    status = build_status(
        SESSION,
        Provider.PROVIDER_FINBOX,
        S.STATE_FAILED,
        Stage.STAGE_UPLOAD,
        final_stage=Stage.STAGE_PROCESSING,
        provider_state="fa\ud800iled",
        error=error,
        progress=(0, 0),
        occurred_at=datetime(2024, 1, 1, tzinfo=UTC),
        attributes={"kept": "v\ud800", "empty": "", "none": None},
    )
    assert status.provider_state == "fa?iled"
    assert (status.error.provider_code, status.error.message) == ("c?", "m?")
    assert dict(status.attributes) == {"kept": "v?"}
    assert status.HasField("progress") and status.progress.total == 0
    assert status.occurred_at.ToDatetime(tzinfo=UTC) == datetime(2024, 1, 1, tzinfo=UTC)
    assert (status.name, status.kind, status.parent) == (str(SESSION), SESSION.kind, "")
    status.SerializeToString()


# --- payloads -----------------------------------------------------------------------------


def test_parse_names_every_problem_and_ignores_unknown_keys() -> None:
    assert parse(Sample, {"id": "s", "extra": [1]}, "Sample").id == "s"
    with pytest.raises(InvalidPayloadError) as caught:
        parse(Sample, {"note": 3}, "Sample webhook")
    message = str(caught.value)
    assert message.startswith("invalid Sample webhook: ")
    assert "id: Field required" in message and "note: Input should be a valid string" in message
    with pytest.raises(InvalidPayloadError, match="<root>: Input should be a valid dictionary"):
        parse(Sample, ["not", "an", "object"], "Sample webhook")


def test_payloads_are_frozen() -> None:
    sample = parse(Sample, {"id": "s"}, "Sample")
    with pytest.raises(ValidationError):
        sample.id = "t"  # type: ignore[misc]


def test_invalid_is_the_one_refusal_shape() -> None:
    error = invalid("Setu FI_DATA_READY", "status is missing and there is no error")
    assert isinstance(error, InvalidPayloadError)
    assert str(error) == "invalid Setu FI_DATA_READY: status is missing and there is no error"
