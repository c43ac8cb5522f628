"""banqware callback bodies (PROVIDERS.md, banqware section) as pydantic models.

Fields that name a subject or decide its state are validated strictly, so a broken
callback is rejected with a message naming the field and what is wrong with it. Fields
that only become attributes are read leniently (a value of the wrong type is dropped):
an odd ``userId`` must not cost a session its status.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Annotated, Any, NamedTuple, TypeVar

from pydantic import AliasChoices, BaseModel, BeforeValidator, ConfigDict, Field, PlainValidator

from statusgate.providers.banqware.mapping import (
    PAYMENT_STATUSES,
    SESSION_STATUSES,
    STAGES,
    payment_status_word,
    session_status_word,
    stage_word,
)

T = TypeVar("T")

_INT64_MAX = 2**63 - 1
# The id rule of core.names (an id becomes one segment of a resource name), matched in
# full so that a trailing newline is refused as well.
_ID_RE = re.compile(r"[^/\s]{1,256}")
# A transactionStatus becomes part of attribute keys, so it must be a plain word.
_TRANSACTION_STATUS_RE = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,31}")


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _shown(value: str | int) -> str:
    """A value quoted in an error message, cut short (messages are logged and returned)."""
    if isinstance(value, int):
        return str(value) if abs(value) < 10**40 else "a number of over 40 digits"
    return repr(value if len(value) <= 40 else value[:40] + "...")


def _one_of(choices: Iterable[str]) -> str:
    return ", ".join(choices)


def _optional(validate: Callable[[object], T]) -> Callable[[object], T | None]:
    def optional(value: object) -> T | None:
        return None if value is None else validate(value)

    return optional


# --- strict: what names a subject or decides its state ----------------------------------


def _identifier(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"must be a string or an integer, not {_json_type(value)}")
    if isinstance(value, int):
        if abs(value) >= 10**256:
            raise ValueError("must be at most 256 characters")
        value = str(value)
    if not _ID_RE.fullmatch(value):
        raise ValueError(f"{_shown(value)} is not 1-256 characters without '/' or whitespace")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"{_shown(value)} is not valid Unicode") from None
    return value


def _account_number(value: object) -> str:
    # Account numbers (IBANs above all) are often printed in groups; the name uses the
    # compact form, which is also the IBAN's electronic form.
    if isinstance(value, str):
        value = "".join(value.split())
    return _identifier(value)


class Word(NamedTuple):
    """A provider's word as it was sent, and its canonical spelling from the tables."""

    raw: str
    name: str


def _word(what: str, known: Callable[[str], str | None], choices: Iterable[str]) -> Any:
    expected = _one_of(choices)

    def validate(value: object) -> Word:
        if not isinstance(value, str):
            raise ValueError(f"must be a string, not {_json_type(value)}")
        name = known(value)
        if name is None:
            raise ValueError(f"unknown {what} {_shown(value)}; expected one of {expected}")
        return Word(value, name)

    return validate


_stage = _word("stage", stage_word, STAGES)
_session_status = _word("status", session_status_word, SESSION_STATUSES)


def _payment_status(value: object) -> Word:
    """As a name or a number; the raw text ("3" or "Completed") is the provider_state."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"must be a name or a number, not {_json_type(value)}")
    name = payment_status_word(value)
    if name is None:
        raise ValueError(
            f"unknown payment status {_shown(value)}; expected 1-7 or one of "
            f"{_one_of(PAYMENT_STATUSES)}"
        )
    return Word(str(value), name)


def _count(value: object) -> int:
    if isinstance(value, str) and value.strip().isdecimal() and len(value.strip()) <= 19:
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"must be a non-negative integer, not {_json_type(value)}")
    if not 0 <= value <= _INT64_MAX:
        raise ValueError(f"{_shown(value)} is not between 0 and 2^63-1")
    return value


def _transaction_status(value: object) -> str:
    if not isinstance(value, str) or not _TRANSACTION_STATUS_RE.fullmatch(value):
        shown = _shown(value) if isinstance(value, str) else _json_type(value)
        raise ValueError(f"must be a word such as booked or pending, not {shown}")
    return value.lower()


def _details(value: object) -> object:
    # PROVIDERS.md shows both `details: [...]` and `details: {"accounts": [...]}`. Errors
    # inside the object form are reported as details.<index>.
    if isinstance(value, dict):
        return value.get("accounts")
    if value is None or isinstance(value, list):
        return value
    raise ValueError(
        f"must be null, a list of accounts or an object with accounts, not {_json_type(value)}"
    )


Identifier = Annotated[str, BeforeValidator(_identifier)]
OptionalIdentifier = Annotated[str | None, BeforeValidator(_optional(_identifier))]
AccountNumber = Annotated[str, BeforeValidator(_account_number)]
# Words are taken as they are, with no further validation of the NamedTuple.
StageName = Annotated[Word, PlainValidator(_stage)]
OptionalStageName = Annotated[Word | None, PlainValidator(_optional(_stage))]
SessionStatusWord = Annotated[Word, PlainValidator(_session_status)]
OptionalSessionStatusWord = Annotated[Word | None, PlainValidator(_optional(_session_status))]
PaymentStatusWord = Annotated[Word, PlainValidator(_payment_status)]
OptionalCount = Annotated[int | None, BeforeValidator(_optional(_count))]
OptionalTransactionStatus = Annotated[str | None, BeforeValidator(_optional(_transaction_status))]


# --- lenient: what only becomes an attribute --------------------------------------------


def _loose_text(value: object) -> str | None:
    if isinstance(value, str):
        # Lone surrogates (from "\ud800" escapes) cannot go into a protobuf string.
        return value.encode("utf-8", "replace").decode("utf-8") or None
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) <= _INT64_MAX:
        return str(value)
    return None


def _loose_texts(value: object) -> tuple[str, ...]:
    items = value if isinstance(value, list) else [value]
    return tuple(text for text in map(_loose_text, items) if text)


def _loose_bool(value: object) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return None


def _loose_object(value: object) -> object:
    return value if isinstance(value, dict) else None


def _loose_objects(value: object) -> list[object]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


LooseText = Annotated[str | None, BeforeValidator(_loose_text)]
LooseTexts = Annotated[tuple[str, ...], BeforeValidator(_loose_texts)]
LooseBool = Annotated[bool | None, BeforeValidator(_loose_bool)]


# --- the callbacks ------------------------------------------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class SecondaryIdentifier(_Model):
    type: LooseText = None
    value: LooseText = None


class Bank(_Model):
    id: LooseText = None
    secondary_identifiers: Annotated[list[SecondaryIdentifier], BeforeValidator(_loose_objects)] = (
        Field(default_factory=list, alias="secondaryIdentifiers")
    )


class Account(_Model):
    """One entry of ``details`` once the Accounts stage finished."""

    account_number: AccountNumber = Field(alias="accountNumber")
    # Not documented inside details; when present it names the account, so that the
    # first-transactions-page callback (which only has accountId) reaches the same subject.
    account_id: OptionalIdentifier = Field(default=None, alias="accountId")
    account_type: LooseText = Field(default=None, alias="accountType")
    account_relation: LooseTexts = Field(default=(), alias="accountRelation")
    manual_account_relation: LooseText = Field(default=None, alias="manualAccountRelation")


class SessionFields(_Model):
    """What every session-related callback carries."""

    session_id: Identifier = Field(alias="sessionId")
    bank: Annotated[Bank | None, BeforeValidator(_loose_object)] = None
    bank_id: LooseText = Field(default=None, alias="bankId")
    details: Annotated[list[Account] | None, BeforeValidator(_details)] = None
    is_sca: LooseBool = Field(default=None, alias="isSca")
    session_external_id: LooseText = Field(default=None, alias="sessionExternalId")
    user_id: LooseText = Field(default=None, alias="userId")


class SessionCallback(SessionFields):
    """Sent on every change of a session's stage or status."""

    stage: StageName
    status: SessionStatusWord


class TransactionsPageCallback(SessionFields):
    """Sent once per account and transaction status when the first page is fetched."""

    stage: OptionalStageName = None
    status: OptionalSessionStatusWord = None
    account_id: Identifier = Field(alias="accountId")
    transactions_count: OptionalCount = Field(default=None, alias="transactionsCount")
    transaction_status: OptionalTransactionStatus = Field(default=None, alias="transactionStatus")
    # The documents spell "earliestAccountDate" but "latestAccountingDate"; both
    # spellings are read for both ends.
    earliest_accounting_date: LooseText = Field(
        default=None,
        validation_alias=AliasChoices("earliestAccountDate", "earliestAccountingDate"),
    )
    earliest_effective_date: LooseText = Field(default=None, alias="earliestEffectiveDate")
    latest_accounting_date: LooseText = Field(
        default=None,
        validation_alias=AliasChoices("latestAccountingDate", "latestAccountDate"),
    )
    latest_effective_date: LooseText = Field(default=None, alias="latestEffectiveDate")


class User(_Model):
    external_id: LooseText = Field(default=None, alias="externalId")


class PaymentCallback(_Model):
    """A PIS payment's status change."""

    payment_id: Identifier = Field(alias="paymentId")
    payment_status: PaymentStatusWord = Field(alias="paymentStatus")
    payment_external_id: LooseText = Field(default=None, alias="paymentExternalId")
    bank: Annotated[Bank | None, BeforeValidator(_loose_object)] = None
    bank_id: LooseText = Field(default=None, alias="bankId")
    user: Annotated[User | None, BeforeValidator(_loose_object)] = None
