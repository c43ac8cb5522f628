"""FinBox poll answers that the webhook mappings (``mapping.py``) do not cover, and the
one correction polling needs.

- **Provisional progress.** ``progress`` saying ``completed`` would make the session
  COMPLETED at PROCESSING, which is terminal: the enrichment webhook that follows, and
  may say PARTIAL or FAILED, would then be dropped. A session whose only news is
  ``progress`` is therefore IN_PROGRESS at PROCESSING (with its statement counts); its
  verdict comes from ``session_status``, per account, exactly as the enrichment webhook
  derives it (all accounts completed: COMPLETED, some: PARTIAL, none: FAILED).
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

from typing import Any

from pydantic import Field

from statusgate.providers.finbox.mapping import (
    ENRICHMENT_EVENT,
    enrichment_updates,
    entity_updates,
)
from statusgate.providers.finbox.payloads import (
    EnrichmentAccount,
    EnrichmentWebhook,
    EntityWebhook,
    Text,
    _Payload,
    parse,
)
from statusgate.v1.status_pb2 import State, Status


class SessionStatusResponse(_Payload):
    """``GET /session_data/{session_id}/session_status/``, the part we read."""

    accounts: list[EnrichmentAccount] | None = None
    insights_available: bool | None = None


class EntityProgress(_Payload):
    status: Text | None = None
    statement_id: Text | None = None
    source: Text | None = None
    message: Text | None = None


class EntityAnalysisResponse(_Payload):
    """The ``progress[]`` of an entity analysis endpoint (the rest is not read)."""

    progress: list[EntityProgress] | None = None


class WebhookPayloadsResponse(_Payload):
    payloads: list[dict[str, Any]] = Field(default_factory=list)


def provisional(updates: list[Status], session_name: str) -> list[Status]:
    """``progress_update``'s updates with a completed session made non-terminal."""
    for status in updates:
        if status.name == session_name and status.state == State.STATE_COMPLETED:
            status.state = State.STATE_IN_PROGRESS
            status.terminal = False
            status.ready_to_fetch = False
    return updates


def session_status_updates(source_id: str, session_id: str, body: object) -> list[Status]:
    """The accounts' verdicts, then the session's (empty when no account is listed)."""
    answer = parse(SessionStatusResponse, body, "FinBox session_status answer")
    if not answer.accounts:
        return []
    updates = enrichment_updates(
        source_id,
        EnrichmentWebhook(
            event_name=ENRICHMENT_EVENT,
            session_id=session_id,
            insights_available=answer.insights_available,
            accounts=answer.accounts,
        ),
    )
    # The session's own word: the answer it was derived from, not a webhook's name.
    updates[-1].provider_state = "session_status"
    return updates


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
    answer = parse(WebhookPayloadsResponse, body, "FinBox webhook_payloads answer")
    updates: list[Status] = []
    for i, payload in enumerate(reversed(answer.payloads)):
        if payload.get("entity_id") != entity_id:
            continue  # a link may have served more than one entity
        webhook = parse(EntityWebhook, payload, f"FinBox webhook_payloads answer payloads.{i}")
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
