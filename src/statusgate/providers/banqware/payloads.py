"""banqware callback bodies as pydantic models.

Fields that name a subject or decide its state are validated strictly, so a broken
callback is rejected with a message naming the field and what is wrong with it. Fields
that only become attributes are read leniently (a value of the wrong type is dropped):
an odd ``userId`` must not cost a session its status.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any, NamedTuple, TypeVar

from pydantic import AliasChoices, BeforeValidator, Field, PlainValidator
from pydantic_core import PydanticCustomError

from statusgate.providers.banqware.mapping import PAYMENT_STATUSES, SESSION_STATUSES, STAGES
from statusgate.providers.common import (
    INT64_MAX,
    Payload,
    Table,
    loose_text,
    provider_id,
    shown,
)

T = TypeVar("T")

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
    return provider_id(value)


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


def _known(table: Table[Any], value: str | int) -> Word:
    name = table.word(value)
    if name is None:
        # Not a ValueError, whose message pydantic prefixes: refused as Table.lookup does.
        raise PydanticCustomError("unknown_word", "{problem}", {"problem": table.unknown(value)})
    return Word(str(value), name)


def _word(table: Table[Any]) -> Callable[[object], Word]:
    def validate(value: object) -> Word:
        if not isinstance(value, str):
            raise ValueError(f"must be a string, not {_json_type(value)}")
        return _known(table, value)

    return validate


_stage = _word(STAGES)
_session_status = _word(SESSION_STATUSES)


def _payment_status(value: object) -> Word:
    """As a name or a number; the raw text ("3" or "Completed") is the provider_state."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"must be a name or a number, not {_json_type(value)}")
    return _known(PAYMENT_STATUSES, value)


def _count(value: object) -> int:
    if isinstance(value, str) and value.strip().isdecimal() and len(value.strip()) <= 19:
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"must be a non-negative integer, not {_json_type(value)}")
    if not 0 <= value <= INT64_MAX:
        raise ValueError(f"{shown(value)} is not between 0 and 2^63-1")
    return value


def _transaction_status(value: object) -> str:
    if not isinstance(value, str) or not _TRANSACTION_STATUS_RE.fullmatch(value):
        described = shown(value) if isinstance(value, str) else _json_type(value)
        raise ValueError(f"must be a word such as booked or pending, not {described}")
    return value.lower()


def _details(value: object) -> object:
    # banqware documents both `details: [...]` and `details: {"accounts": [...]}`. Errors
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


def _loose_texts(value: object) -> tuple[str, ...]:
    items = value if isinstance(value, list) else [value]
    return tuple(text for text in map(loose_text, items) if text)


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


LooseText = Annotated[str | None, BeforeValidator(loose_text)]
LooseTexts = Annotated[tuple[str, ...], BeforeValidator(_loose_texts)]
LooseBool = Annotated[bool | None, BeforeValidator(_loose_bool)]


# --- the callbacks ------------------------------------------------------------------------


class SecondaryIdentifier(Payload):
    type: LooseText = None
    value: LooseText = None


class Bank(Payload):
    id: LooseText = None
    secondary_identifiers: Annotated[list[SecondaryIdentifier], BeforeValidator(_loose_objects)] = (
        Field(default_factory=list, alias="secondaryIdentifiers")
    )


class Account(Payload):
    """One entry of ``details`` once the Accounts stage finished."""

    account_number: AccountNumber = Field(alias="accountNumber")
    # Not documented inside details; when present it names the account, so that the
    # first-transactions-page callback (which only has accountId) reaches the same subject.
    account_id: OptionalIdentifier = Field(default=None, alias="accountId")
    account_type: LooseText = Field(default=None, alias="accountType")
    account_relation: LooseTexts = Field(default=(), alias="accountRelation")
    manual_account_relation: LooseText = Field(default=None, alias="manualAccountRelation")


class SessionFields(Payload):
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


class User(Payload):
    external_id: LooseText = Field(default=None, alias="externalId")


class PaymentCallback(Payload):
    """A PIS payment's status change."""

    payment_id: Identifier = Field(alias="paymentId")
    payment_status: PaymentStatusWord = Field(alias="paymentStatus")
    payment_external_id: LooseText = Field(default=None, alias="paymentExternalId")
    bank: Annotated[Bank | None, BeforeValidator(_loose_object)] = None
    bank_id: LooseText = Field(default=None, alias="bankId")
    user: Annotated[User | None, BeforeValidator(_loose_object)] = None
