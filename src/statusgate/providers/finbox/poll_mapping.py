"""FinBox poll answers -> canonical statuses, through the webhook mappings where an
answer says what a webhook says.

- **session_upload_status** lists accounts and statements as the upload webhook does;
  the session is at UPLOAD, in the state of ``upload_status``.
- **progress**: each statement takes the worst of its four status fields (failed >
  processing > completed; ``processing_status`` wins ties, so it is the
  ``provider_state`` unless another field is worse), so a statement whose transactions
  failed is not reported COMPLETED because its processing step finished. The fields are
  kept as attributes. The session counts finished statements in ``progress``, and a
  completed session is ``ready_to_fetch``.
- **Provisional progress.** When polling, ``progress`` saying ``completed`` would make
  the session COMPLETED at PROCESSING, which is terminal: the enrichment webhook that
  follows, and may say PARTIAL or FAILED, would then be dropped. A session whose only
  news is ``progress`` is therefore IN_PROGRESS at PROCESSING (with its statement
  counts), and ``ready_to_fetch``: FinBox's own advice is to fetch the data once
  ``session_progress`` is completed, so a client need not wait for the verdict to
  start. The verdict comes from ``session_status``, per account, exactly as the
  enrichment webhook derives it (all accounts completed: COMPLETED, some: PARTIAL,
  none: FAILED); one poll merges both answers into one change.
- **session_status** is documented only as "per-account ``account_status``,
  ``error_code``, ``error_message``": its ``accounts[]`` are read like the enrichment
  webhook's. An answer that lists no account gives no verdict (rather than FAILED, which
  would be final), and leaves the session provisional.
- **Entity analysis ``progress[]``** entries become the entity's statements (entries
  without a statement id are net-banking attempts), and the entity's own state is the
  sum of them: any ``processing`` makes it IN_PROGRESS, else any ``completed``
  COMPLETED, else FAILED. Entries whose status is null are not reported yet.
- **Recovered webhook payloads** (``webhook_payloads?link_id=``), newest first from
  FinBox, are applied oldest first, each exactly as the webhook it replaces.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from pydantic import Field

from statusgate.core.names import ResourceName
from statusgate.providers.common import Outcome, Payload, Text, child_name, parse, subject_name
from statusgate.providers.finbox.mapping import (
    ENRICHMENT_EVENT,
    PROGRESS_STATES,
    UPLOAD_STATUS_STATES,
    enrichment_updates,
    entity_updates,
    finbox_status,
    upload_children,
)
from statusgate.providers.finbox.payloads import (
    EnrichmentAccount,
    EnrichmentWebhook,
    EntityWebhook,
    ProgressResponse,
    StatementProgress,
    UploadStatusResponse,
)
from statusgate.v1.status_pb2 import Stage, State, Status

_SEVERITY: dict[State.ValueType, int] = {
    State.STATE_COMPLETED: 0,
    State.STATE_IN_PROGRESS: 1,
    State.STATE_FAILED: 2,
}
# A completed session whose verdict ``session_status`` has still to give.
AWAITING_VERDICT = Outcome(State.STATE_IN_PROGRESS)


class SessionStatusResponse(Payload):
    """``GET /session_data/{session_id}/session_status/``, the part we read."""

    accounts: list[EnrichmentAccount] | None = None
    insights_available: bool | None = None


class EntityProgress(Payload):
    status: Text | None = None
    statement_id: Text | None = None
    source: Text | None = None
    message: Text | None = None


class EntityAnalysisResponse(Payload):
    """The ``progress[]`` of an entity analysis endpoint (the rest is not read)."""

    progress: list[EntityProgress] | None = None


class WebhookPayloadsResponse(Payload):
    payloads: list[dict[str, Any]] = Field(default_factory=list)


class PolledProgress(NamedTuple):
    updates: list[Status]
    # ``progress`` said processing completed: ``session_status`` now has the verdict.
    verdict_due: bool


# --- sessions -----------------------------------------------------------------------------


def upload_status_update(source_id: str, session_id: str, body: object) -> list[Status]:
    """``GET /session_data/{session_id}/session_upload_status/``: the accounts and their
    statements as in the upload webhook, then the session at UPLOAD."""
    label = "FinBox session_upload_status answer"
    answer = parse(UploadStatusResponse, body, label)
    session = subject_name(source_id, "sessions", session_id)
    outcome = UPLOAD_STATUS_STATES.lookup(answer.upload_status, label, "upload_status")
    return [
        *upload_children(session, answer.accounts, answer.statements, label),
        finbox_status(session, outcome, Stage.STAGE_UPLOAD, answer.upload_status),
    ]


def progress_update(
    source_id: str, session_id: str, body: object, *, verdict_pending: bool = False
) -> list[Status]:
    """``GET /session_data/{session_id}/progress/``: each statement, then the session at
    PROCESSING with ``progress`` = statements finished of statements reported.
    ``verdict_pending``: ``session_status`` gives the verdict, so a completed session is
    provisional (see the module docstring)."""
    return _progress(source_id, session_id, body, verdict_pending=verdict_pending).updates


def polled_progress(source_id: str, session_id: str, body: object) -> PolledProgress:
    """``progress_update`` with the verdict pending, saying also whether it is due now."""
    return _progress(source_id, session_id, body, verdict_pending=True)


def _progress(
    source_id: str, session_id: str, body: object, *, verdict_pending: bool
) -> PolledProgress:
    label = "FinBox progress answer"
    answer = parse(ProgressResponse, body, label)
    session = subject_name(source_id, "sessions", session_id)
    outcome = PROGRESS_STATES.lookup(answer.session_progress, label, "session_progress")
    completed = outcome.state == State.STATE_COMPLETED
    statements = [
        status
        for i, entry in enumerate(answer.progress or ())
        if (status := _progress_statement(session, entry, label, f"progress.{i}")) is not None
    ]
    finished = sum(s.state != State.STATE_IN_PROGRESS for s in statements)
    provisional = verdict_pending and completed
    session_status = finbox_status(
        session,
        AWAITING_VERDICT if provisional else outcome,
        Stage.STAGE_PROCESSING,
        answer.session_progress,
        progress=(finished, len(statements)) if statements else None,
        # Completed processing is FinBox's signal to fetch, verdict or not.
        ready_to_fetch=completed,
    )
    return PolledProgress([*statements, session_status], completed)


def _progress_statement(
    session: ResourceName, entry: StatementProgress, label: str, path: str
) -> Status | None:
    """The worst of the statement's status fields; None when it reports none."""
    fields = {
        "processing_status": entry.processing_status,
        "identity_status": entry.identity_status,
        "transaction_status": entry.transaction_status,
        "fraud_status": entry.fraud_status,
    }
    reported = [
        (raw, PROGRESS_STATES.lookup(raw, label, f"{path}.{name}"))
        for name, raw in fields.items()
        if raw and raw.strip()
    ]
    if not reported:
        return None
    raw, outcome = max(reported, key=lambda pair: _SEVERITY[pair[1].state])
    return finbox_status(
        child_name(session, "statements", entry.statement_id),
        outcome,
        Stage.STAGE_PROCESSING,
        raw,
        error_message=entry.message,
        attributes={**fields, "source": entry.source},
    )


def session_status_updates(source_id: str, session_id: str, body: object) -> list[Status]:
    """The accounts' verdicts, then the session's (empty when no account is listed)."""
    answer = parse(SessionStatusResponse, body, "FinBox session_status answer")
    if not answer.accounts:
        return []
    return enrichment_updates(
        source_id,
        EnrichmentWebhook(
            event_name=ENRICHMENT_EVENT,
            session_id=session_id,
            insights_available=answer.insights_available,
            accounts=answer.accounts,
        ),
        # The session's own word: the answer it was derived from, not a webhook's name.
        provider_state="session_status",
    )


# --- entities -----------------------------------------------------------------------------


def entity_progress_updates(source_id: str, entity_id: str, body: object) -> list[Status]:
    answer = parse(EntityAnalysisResponse, body, "FinBox entity analysis answer")
    entries = [e for e in answer.progress or () if e.status and e.status.strip()]
    if not entries:
        return []
    updates: list[Status] = []
    for entry in entries:
        if entry.statement_id:
            statement, _entity = entity_updates(
                source_id,
                _entity_webhook(entity_id, entry.status, entry.statement_id, entry.message),
            )
            updates.append(statement)
    words = {(e.status or "").strip().lower() for e in entries}
    total = "processing" if "processing" in words else "completed"
    if "processing" not in words and "completed" not in words:
        total = "failed"
    [entity] = entity_updates(source_id, _entity_webhook(entity_id, total, None, None))
    return [*updates, entity]


def webhook_payload_updates(source_id: str, entity_id: str, body: object) -> list[Status]:
    label = "FinBox webhook_payloads answer"
    answer = parse(WebhookPayloadsResponse, body, label)
    updates: list[Status] = []
    for i, payload in enumerate(reversed(answer.payloads)):
        if payload.get("entity_id") != entity_id:
            continue  # a link may have served more than one entity
        webhook = parse(EntityWebhook, payload, f"{label} payloads.{i}")
        updates.extend(entity_updates(source_id, webhook))
    return updates


def _entity_webhook(
    entity_id: str, progress: str | None, statement_id: str | None, reason: str | None
) -> EntityWebhook:
    # Validated like a webhook, so a statement id that cannot be named is reported.
    body = {
        "entity_id": entity_id,
        "progress": progress or "",
        "statement_id": statement_id,
        "reason": reason,
    }
    return parse(EntityWebhook, body, "FinBox entity analysis answer")
