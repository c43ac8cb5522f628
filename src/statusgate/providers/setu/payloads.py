"""Pydantic models of the Setu Account Aggregator payloads (PROVIDERS.md, Setu section).

They describe *shapes* only: which keys exist, under which spellings, and the type of
every value that decides a subject's name or state. The status words themselves are
checked against the tables of ``mapping.py``, so an unknown word is reported with the
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

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AliasChoices, BaseModel, ConfigDict, Field

# The id rule of core.names (1-256 characters, no '/' or whitespace), plus valid UTF-8:
# a lone surrogate (legal in JSON, "\ud800") could not be stored in a protobuf string.
_ID_RE = re.compile(r"^[^/\s]{1,256}$")


def _provider_id(value: str) -> str:
    if not _ID_RE.match(value):
        raise ValueError("must be 1-256 characters without '/' or whitespace")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode (it contains a lone surrogate)") from None
    return value


# An id that becomes part of a resource name.
ProviderId = Annotated[str, AfterValidator(_provider_id)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class SetuError(_Model):
    """``error``: null on success, ``{"code", "message"}`` otherwise."""

    code: str | None = None
    message: str | None = None

    @property
    def present(self) -> bool:
        """An error object with neither a code nor a message says nothing."""
        return bool(self.code or self.message)


class FipAccount(_Model):
    """One entry of ``fips[].accounts[]`` (webhook and ``GET /v2/sessions/{id}``)."""

    link_ref_number: ProviderId = Field(validation_alias="linkRefNumber")
    fi_status: str = Field(validation_alias=AliasChoices("FIStatus", "FIstatus", "fiStatus"))
    description: Any = None
    masked_acc_number: Any = Field(default=None, validation_alias="maskedAccNumber")


class Fip(_Model):
    """One entry of ``fips[]``."""

    fip_id: Any = Field(default=None, validation_alias=AliasChoices("fipID", "fipId"))
    accounts: list[FipAccount] | None = Field(
        default=None, validation_alias=AliasChoices("accounts", "Accounts")
    )


class _Notification(_Model):
    timestamp: Any = Field(default=None, validation_alias=AliasChoices("timestamp", "timeStamp"))
    notification_id: Any = Field(default=None, validation_alias="notificationId")
    error: SetuError | None = None


# --- CONSENT_STATUS_UPDATE -------------------------------------------------------------


class ConsentData(_Model):
    status: str | None = None
    detail: Any = Field(default=None, validation_alias=AliasChoices("detail", "Detail"))


class ConsentNotification(_Notification):
    type: Literal["CONSENT_STATUS_UPDATE"]
    consent_id: ProviderId = Field(validation_alias="consentId")
    # null on error payloads.
    data: ConsentData | None = None


# --- SESSION_STATUS_UPDATE -------------------------------------------------------------


class SessionData(_Model):
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


class FiDataReadyData(_Model):
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


class ConsentPollBody(_Model):
    """``GET /v2/consents/{id}``."""

    status: str
    detail: Any = Field(default=None, validation_alias=AliasChoices("detail", "Detail"))
    accounts_linked: Any = Field(default=None, validation_alias="accountsLinked")


class SessionPollBody(_Model):
    """``GET /v2/sessions/{id}``."""

    status: str
    consent_id: Any = Field(default=None, validation_alias="consentId")
    format: Any = None
    data_range: Any = Field(default=None, validation_alias=AliasChoices("dataRange", "DataRange"))
    fips: list[Fip] | None = None
