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

from typing import Annotated, Any

from pydantic import AfterValidator

from statusgate.providers.common import Payload, ProviderId, Text, Time, provider_id


def _optional_provider_id(value: str | None) -> str | None:
    """The entity webhook sends ``""`` for "no statement" (a net-banking failure)."""
    if value is None or not value.strip():
        return None
    return provider_id(value)


OptionalProviderId = Annotated[Text | None, AfterValidator(_optional_provider_id)]


# --- session flow -------------------------------------------------------------------


class Statement(Payload):
    """One statement of an upload webhook or ``session_upload_status`` answer."""

    statement_id: ProviderId
    statement_status: Text
    error_code: Text | None = None
    error_message: Text | None = None
    source: Text | None = None
    # Only statements listed outside an account say which account they belong to.
    account_id: Text | None = None


class EnrichmentAccount(Payload):
    """An account of the enrichment webhook or ``session_status`` answer: what every
    report of an account carries."""

    account_id: ProviderId
    account_status: Text
    bank_name: Text | None = None
    error_code: Text | None = None
    error_message: Text | None = None


class UploadAccount(EnrichmentAccount):
    """An account of the upload webhook; the older variant has only the fields of an
    enrichment account, the newer one no error fields but everything else."""

    account_number: Text | None = None
    months: list[Text] | None = None
    missing_data: Any = None
    last_updated_at: Time = None
    statements: list[Statement] | None = None


class UploadWebhook(Payload):
    """``SESSION_REQUIREMENT_COMPLETION_NOTIFICATION`` / ``SESSION_EXPIRY_NOTIFICATION``."""

    event_name: Text
    session_id: ProviderId
    accounts: list[UploadAccount] | None = None
    statements: list[Statement] | None = None


class EnrichmentWebhook(Payload):
    """``ENRICHMENT_NOTIFICATION``. Some documents leave out ``insights_available``."""

    event_name: Text
    session_id: ProviderId
    insights_available: bool | None = None
    accounts: list[EnrichmentAccount] | None = None


class UploadStatusResponse(Payload):
    """``GET /session_data/{session_id}/session_upload_status/``."""

    upload_status: Text
    accounts: list[UploadAccount] | None = None
    statements: list[Statement] | None = None


class StatementProgress(Payload):
    statement_id: ProviderId
    processing_status: Text | None = None
    identity_status: Text | None = None
    transaction_status: Text | None = None
    fraud_status: Text | None = None
    message: Text | None = None
    source: Text | None = None


class ProgressResponse(Payload):
    """``GET /session_data/{session_id}/progress/``."""

    session_progress: Text
    progress: list[StatementProgress] | None = None


# --- legacy entity flow -------------------------------------------------------------


class EntityWebhook(Payload):
    """The legacy webhook, also returned by ``/entity/webhook_payloads/`` with
    ``date_time`` added."""

    entity_id: ProviderId
    progress: Text
    statement_id: OptionalProviderId = None
    link_id: Text | None = None
    reason: Text | None = None
    date_time: Time = None
