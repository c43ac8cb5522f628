"""FinBox payloads as pydantic models: the webhooks of both flows and the poll answers.

Only the fields the mapping reads are modelled; every other key is ignored, because
FinBox adds keys freely and its documents disagree on which ones exist. Types are
checked strictly (a number where an id belongs is an unusable payload), with two
deliberate exceptions: timestamps that are missing, of the wrong type or unparseable
become None (a bad timestamp must not lose a status), and ``missing_data``, whose
element format no FinBox document shows, is taken as any JSON.

Status words (``account_status``, ``upload_status``...) stay raw strings here: the
mapping owns the tables that give them meaning and reports unknown words itself.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, PlainValidator, ValidationError

from statusgate.core.names import InvalidNameError, make_name
from statusgate.providers.base import InvalidPayloadError
from statusgate.providers.common import parse_provider_time


def _utf8(value: str) -> str:
    """JSON may carry lone surrogates, which protobuf strings refuse: replace them."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return value.encode("utf-8", "replace").decode("utf-8")
    return value


def _provider_id(value: str) -> str:
    """An id that can stand in a resource name (DESIGN.md §2)."""
    try:
        value.encode("utf-8")
        make_name("probe", "sessions", value)
    except (UnicodeEncodeError, InvalidNameError):
        raise ValueError("must be 1-256 characters of valid UTF-8, without '/' or spaces") from None
    return value


def _optional_provider_id(value: str | None) -> str | None:
    """The entity webhook sends ``""`` for "no statement" (a net-banking failure)."""
    if value is None or not value.strip():
        return None
    return _provider_id(value)


def _time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return parse_provider_time(value)
    except OverflowError:  # a zone offset that pushes year 1 or 9999 out of range
        return None


Text = Annotated[str, AfterValidator(_utf8)]
ProviderId = Annotated[str, AfterValidator(_provider_id)]
OptionalProviderId = Annotated[Text | None, AfterValidator(_optional_provider_id)]
Time = Annotated[datetime | None, PlainValidator(_time)]


class _Payload(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


# --- session flow -------------------------------------------------------------------


class Statement(_Payload):
    """One statement of an upload webhook or ``session_upload_status`` answer."""

    statement_id: ProviderId
    statement_status: Text
    error_code: Text | None = None
    error_message: Text | None = None
    source: Text | None = None
    # Only statements listed outside an account say which account they belong to.
    account_id: Text | None = None


class UploadAccount(_Payload):
    """An account of the upload webhook; the older variant has only the first five
    fields, the newer one no error fields but everything else."""

    account_id: ProviderId
    account_status: Text
    bank_name: Text | None = None
    error_code: Text | None = None
    error_message: Text | None = None
    account_number: Text | None = None
    months: list[Text] | None = None
    missing_data: Any = None
    last_updated_at: Time = None
    statements: list[Statement] | None = None


class UploadWebhook(_Payload):
    """``SESSION_REQUIREMENT_COMPLETION_NOTIFICATION`` / ``SESSION_EXPIRY_NOTIFICATION``."""

    event_name: Text
    session_id: ProviderId
    accounts: list[UploadAccount] | None = None
    statements: list[Statement] | None = None


class EnrichmentAccount(_Payload):
    account_id: ProviderId
    account_status: Text
    bank_name: Text | None = None
    error_code: Text | None = None
    error_message: Text | None = None


class EnrichmentWebhook(_Payload):
    """``ENRICHMENT_NOTIFICATION``. Some documents leave out ``insights_available``."""

    event_name: Text
    session_id: ProviderId
    insights_available: bool | None = None
    accounts: list[EnrichmentAccount] | None = None


class UploadStatusResponse(_Payload):
    """``GET /session_data/{session_id}/session_upload_status/``."""

    upload_status: Text
    accounts: list[UploadAccount] | None = None
    statements: list[Statement] | None = None


class StatementProgress(_Payload):
    statement_id: ProviderId
    processing_status: Text | None = None
    identity_status: Text | None = None
    transaction_status: Text | None = None
    fraud_status: Text | None = None
    message: Text | None = None
    source: Text | None = None


class ProgressResponse(_Payload):
    """``GET /session_data/{session_id}/progress/``."""

    session_progress: Text
    progress: list[StatementProgress] | None = None


# --- legacy entity flow -------------------------------------------------------------


class EntityWebhook(_Payload):
    """The legacy webhook, also returned by ``/entity/webhook_payloads/`` with
    ``date_time`` added."""

    entity_id: ProviderId
    progress: Text
    statement_id: OptionalProviderId = None
    link_id: Text | None = None
    reason: Text | None = None
    date_time: Time = None


PayloadT = TypeVar("PayloadT", bound=_Payload)


def parse(model: type[PayloadT], body: object, what: str) -> PayloadT:
    """``body`` as ``model``, or InvalidPayloadError naming every problem."""
    try:
        return model.model_validate(body)
    except ValidationError as error:
        raise InvalidPayloadError.from_validation(what, error) from None
