"""Pydantic models of the Setu Account Aggregator payloads.

They describe *shapes* only: which keys exist, under which spellings, and the type of
every value that decides a subject's name or state. The status words themselves are
checked against the tables of ``tables.py``, so an unknown word is reported with the
vocabulary it should have come from.

Typing policy:

- Values that name a subject (``consentId``, ``dataSessionId``, ``linkRefNumber``) or
  decide its state (status words, ``FIStatus``, ``error.code``) must have the right
  type; a wrong one makes the payload invalid, with the path of the offending value.
- Values that only feed attributes (``detail``, ``format``, ``dataRange``, ``fipID``,
  ``description``, ``notificationId``...) are read best-effort: a value of an
  unexpected type is ignored rather than losing the status it travels with.
- ``success`` is not modelled at all: Setu sends ``success: true`` on error payloads, so
  only the ``error`` object decides.
- Unknown keys are ignored (both API versions add keys freely).

Both API versions' spellings are accepted through ``AliasChoices``: ``Detail``/``detail``,
``Accounts``/``accounts``, ``FIStatus``/``FIstatus``, ``fipID``/``fipId``,
``DataRange``/``dataRange``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import AliasChoices, Field

from statusgate.providers.common import Payload, ProviderId, Time, loose_text

# Sizes that keep a hostile or broken payload from bloating a status.
TEXT_LIMIT = 256
_LIST_LIMIT = 50


class SetuError(Payload):
    """``error``: null on success, ``{"code", "message"}`` otherwise."""

    code: str | None = None
    message: str | None = None

    @property
    def present(self) -> bool:
        """An error object with neither a code nor a message says nothing."""
        return bool(self.code or self.message)


class FipAccount(Payload):
    """One entry of ``fips[].accounts[]`` (webhook and ``GET /v2/sessions/{id}``)."""

    link_ref_number: ProviderId = Field(validation_alias="linkRefNumber")
    fi_status: str = Field(validation_alias=AliasChoices("FIStatus", "FIstatus", "fiStatus"))
    description: Any = None
    masked_acc_number: Any = Field(default=None, validation_alias="maskedAccNumber")


class Fip(Payload):
    """One entry of ``fips[]``."""

    fip_id: Any = Field(default=None, validation_alias=AliasChoices("fipID", "fipId"))
    accounts: list[FipAccount] | None = Field(
        default=None, validation_alias=AliasChoices("accounts", "Accounts")
    )


class _Notification(Payload):
    # A missing or unusable time gives None and never loses the status.
    timestamp: Time = Field(default=None, validation_alias=AliasChoices("timestamp", "timeStamp"))
    notification_id: Any = Field(default=None, validation_alias="notificationId")
    error: SetuError | None = None


# --- CONSENT_STATUS_UPDATE -------------------------------------------------------------


class ConsentData(Payload):
    status: str | None = None
    detail: Any = Field(default=None, validation_alias=AliasChoices("detail", "Detail"))


class ConsentNotification(_Notification):
    type: Literal["CONSENT_STATUS_UPDATE"]
    consent_id: ProviderId = Field(validation_alias="consentId")
    # null on error payloads.
    data: ConsentData | None = None


# --- SESSION_STATUS_UPDATE -------------------------------------------------------------


class SessionData(Payload):
    status: str | None = None
    format: Any = None
    data_range: Any = Field(default=None, validation_alias=AliasChoices("dataRange", "DataRange"))
    fips: list[Fip] | None = None


class SessionNotification(_Notification):
    type: Literal["SESSION_STATUS_UPDATE"]
    data_session_id: ProviderId = Field(validation_alias="dataSessionId")
    # Only an attribute of the data session: the link is not part of its name.
    consent_id: Any = Field(default=None, validation_alias="consentId")
    data: SessionData | None = None


# --- FI_DATA_READY / FI_DATA_FAILED (auto-fetch) ------------------------------------------


class FiDataReadyData(Payload):
    status: str | None = None


class FiDataReadyNotification(_Notification):
    type: Literal["FI_DATA_READY"]
    consent_id: ProviderId | None = Field(default=None, validation_alias="consentId")
    data_session_id: ProviderId | None = Field(default=None, validation_alias="dataSessionId")
    # PENDING / PARTIAL / COMPLETED; documented at the top level, accepted under data too.
    status: str | None = None
    data: FiDataReadyData | None = None


class FiDataFailedNotification(_Notification):
    type: Literal["FI_DATA_FAILED"]
    consent_id: ProviderId | None = Field(default=None, validation_alias="consentId")
    data_session_id: ProviderId | None = Field(default=None, validation_alias="dataSessionId")


# --- polled bodies ------------------------------------------------------------------------


class ConsentPollBody(Payload):
    """``GET /v2/consents/{id}``."""

    status: str
    detail: Any = Field(default=None, validation_alias=AliasChoices("detail", "Detail"))
    accounts_linked: Any = Field(default=None, validation_alias="accountsLinked")


class SessionPollBody(Payload):
    """``GET /v2/sessions/{id}``."""

    status: str
    consent_id: Any = Field(default=None, validation_alias="consentId")
    format: Any = None
    data_range: Any = Field(default=None, validation_alias=AliasChoices("dataRange", "DataRange"))
    fips: list[Fip] | None = None


# --- values that only feed attributes, read best-effort --------------------------------


def consent_detail_attributes(detail: Any, accounts_linked: Any = None) -> dict[str, str | None]:
    """A few small facts from a consent's ``detail`` (v1 ``Detail``) and linked accounts."""
    d: Mapping[str, Any] = detail if isinstance(detail, dict) else {}
    range_from, range_to = date_range(_first(d, "dataRange", "DataRange", "FIDataRange"))
    attributes = {
        "consent_handle": attribute_text(d.get("consentHandle")),
        "fi_types": _join(_first(d, "fiTypes", "FITypes")),
        "data_range_from": range_from,
        "data_range_to": range_to,
    }
    accounts = accounts_linked if accounts_linked is not None else _first(d, "accounts", "Accounts")
    if isinstance(accounts, list):
        attributes["accounts_linked"] = str(len(accounts))
        fip_ids = {
            attribute_text(_first(account, "fipId", "fipID"))
            for account in accounts[:_LIST_LIMIT]
            if isinstance(account, dict)
        }
        attributes["fip_ids"] = _join(sorted(fip for fip in fip_ids if fip))
    return attributes


def date_range(value: Any) -> tuple[str | None, str | None]:
    """``from`` and ``to`` of a ``dataRange`` object, best effort."""
    if not isinstance(value, dict):
        return None, None
    return attribute_text(value.get("from")), attribute_text(value.get("to"))


def attribute_text(value: Any) -> str | None:
    """An attribute value: strings (trimmed) and small integers only, cleaned and capped."""
    return loose_text(value, limit=TEXT_LIMIT, strip=True, max_int=10**30 - 1)


def _join(values: Any) -> str | None:
    if not isinstance(values, list):
        return None
    texts = [text for text in (attribute_text(v) for v in values[:_LIST_LIMIT]) if text]
    return ",".join(texts)[:TEXT_LIMIT] or None


def _first(mapping: Mapping[str, Any], *keys: str) -> Any:
    for key in keys:
        value = mapping.get(key)
        if value is not None:
            return value
    return None
