"""Pydantic models of the ReBIT messages (FIU callback API and the AA's answers, 2.0.0).

They describe *shapes*: the keys the standard requires, in its spelling, and the type
of every value that names a subject or decides its state. Status words are checked
against the tables of ``tables.py``, each refusal with the standard's error code.

- Required by the standard and read: ``ver``, ``timestamp``, ``txnid``, ``Notifier``
  (``type``, ``id``), ``ConsentStatusNotification.consentStatus``,
  ``FIStatusNotification.sessionId``/``sessionStatus``/``FIStatusResponse``, and in it
  ``fipID``, ``Accounts``, ``linkRefNumber``, ``FIStatus``.
- ``consentHandle`` and ``consentId`` are optional in the standard; the gateway names
  consents by the handle, so the mapping requires it. An empty ``consentId`` (what a
  PENDING consent has) counts as none.
- ``description`` is required by the standard but only feeds an attribute: read
  best-effort, never a reason to lose a status.
- Unknown keys are ignored.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, Field

from statusgate.providers.common import Payload, ProviderId, Text


def _empty_is_none(value: Any) -> Any:
    return None if value == "" else value


OptionalId = Annotated[ProviderId | None, BeforeValidator(_empty_is_none)]


class Notifier(Payload):
    type: Text
    id: Text


class Message(Payload):
    """What every ReBIT message carries."""

    ver: str
    timestamp: str
    txnid: str
    notifier: Notifier = Field(validation_alias="Notifier")


# --- POST /Consent/Notification ---------------------------------------------------------


class ConsentStatusNotification(Payload):
    consent_id: OptionalId = Field(default=None, validation_alias="consentId")
    consent_handle: ProviderId | None = Field(default=None, validation_alias="consentHandle")
    consent_status: str = Field(validation_alias="consentStatus")


class ConsentNotification(Message):
    notification: ConsentStatusNotification = Field(validation_alias="ConsentStatusNotification")


# --- POST /FI/Notification --------------------------------------------------------------


class FiAccount(Payload):
    link_ref_number: ProviderId = Field(validation_alias="linkRefNumber")
    fi_status: str = Field(validation_alias="FIStatus")
    description: Any = None


class FipResponse(Payload):
    fip_id: Text = Field(validation_alias="fipID")
    accounts: list[FiAccount] = Field(validation_alias="Accounts")


class FiStatusNotification(Payload):
    session_id: ProviderId = Field(validation_alias="sessionId")
    session_status: str = Field(validation_alias="sessionStatus")
    responses: list[FipResponse] = Field(validation_alias="FIStatusResponse")


class FiNotification(Message):
    notification: FiStatusNotification = Field(validation_alias="FIStatusNotification")


# --- the answer of POST /Consent/handle ---------------------------------------------------


class ConsentHandleStatus(Payload):
    # The consent id, once the customer approved.
    id: OptionalId = None
    status: str


class ConsentHandleAnswer(Payload):
    txnid: str | None = None
    consent_handle: Any = Field(default=None, validation_alias="ConsentHandle")
    consent_status: ConsentHandleStatus = Field(validation_alias="ConsentStatus")
