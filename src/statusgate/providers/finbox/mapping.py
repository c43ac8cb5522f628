"""FinBox webhooks -> canonical statuses: the word tables and the pure functions the
webhook adapter and the poller share (the poll answers are in ``poll_mapping``).

Decisions beyond the word tables:

- **Order**: children first, the parent last: statements, then accounts, then the
  session (entity flow: the statement, then the entity). A consumer that sees the
  parent change can rely on its children already being current.
- **provider_state** is the provider's own word: ``account_status``,
  ``statement_status``, ``upload_status``, ``progress``..., and for a session reported
  by a webhook, the ``event_name``.
- **Enrichment with no accounts**: COMPLETED when ``insights_available``, else FAILED.
  When ``insights_available`` is missing (some documents leave it out),
  ``ready_to_fetch`` is "at least one account completed".
- **Legacy entity**: COMPLETED and FAILED both leave the entity open (not terminal):
  it keeps receiving statements, and a failure is one attempt (a wrong net-banking
  password, an unreadable PDF) after which the user tries again. Its statements end
  with their outcome. COMPLETED sets ``ready_to_fetch`` on both: FinBox sends the
  webhook when extraction is done. ``core.apply`` lets the success of a later attempt
  replace such an open failure, although its ranks put FAILED above COMPLETED.
- Statements carry no ``occurred_at``: their only time is ``created_at``, which is not
  the time of the status.
- Unknown status words make the payload invalid (case, ``_`` and spacing aside).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from statusgate.core.names import ResourceName
from statusgate.core.states import FAILURE_STATES
from statusgate.providers.common import (
    ANY_CASE,
    ANY_CASE_AND_SPACING,
    Outcome,
    Table,
    build_status,
    child_name,
    mask_account_number,
    subject_name,
    utf8,
)
from statusgate.providers.finbox.errors import finbox_error
from statusgate.providers.finbox.payloads import (
    EnrichmentAccount,
    EnrichmentWebhook,
    EntityWebhook,
    Statement,
    UploadAccount,
    UploadWebhook,
)
from statusgate.v1.status_pb2 import Provider, Stage, State, Status

FINBOX = Provider.PROVIDER_FINBOX
# Success of a session, account or statement ends its flow once processing is done.
FINAL_STAGE = Stage.STAGE_PROCESSING

_S = State

UPLOAD_EVENTS = Table(
    "event_name",
    {
        "SESSION_REQUIREMENT_COMPLETION_NOTIFICATION": Outcome(_S.STATE_COMPLETED),
        "SESSION_EXPIRY_NOTIFICATION": Outcome(_S.STATE_EXPIRED),
    },
    ANY_CASE,
)
ENRICHMENT_EVENT = "ENRICHMENT_NOTIFICATION"

UPLOAD_ACCOUNT_STATES = Table(
    "value",
    {"partial": Outcome(_S.STATE_PARTIAL), "completed": Outcome(_S.STATE_COMPLETED)},
    ANY_CASE_AND_SPACING,
)
STATEMENT_STATES = Table(
    "value",
    {
        "completed": Outcome(_S.STATE_COMPLETED),
        "failed": Outcome(_S.STATE_FAILED),
        "processing": Outcome(_S.STATE_IN_PROGRESS),
    },
    ANY_CASE_AND_SPACING,
)
ENRICHMENT_ACCOUNT_STATES = Table(
    "value",
    {"completed": Outcome(_S.STATE_COMPLETED), "failed": Outcome(_S.STATE_FAILED)},
    ANY_CASE_AND_SPACING,
)
UPLOAD_STATUS_STATES = Table(
    "value",
    {
        "no uploads": Outcome(_S.STATE_PENDING),
        "no upload": Outcome(_S.STATE_PENDING),
        "in progress": Outcome(_S.STATE_IN_PROGRESS),
        "completed": Outcome(_S.STATE_COMPLETED),
        "expired": Outcome(_S.STATE_EXPIRED),
    },
    ANY_CASE_AND_SPACING,
)
PROGRESS_STATES = Table(
    "value",
    {
        "processing": Outcome(_S.STATE_IN_PROGRESS),
        "completed": Outcome(_S.STATE_COMPLETED),
        "failed": Outcome(_S.STATE_FAILED),
    },
    ANY_CASE_AND_SPACING,
)
# The entity webhook says completed/failed; the entity analysis endpoints, whose
# answers a replay may feed through here, also say processing.
ENTITY_STATES = PROGRESS_STATES


def finbox_status(
    name: ResourceName,
    outcome: Outcome,
    stage: Stage.ValueType,
    provider_state: str,
    *,
    final_stage: Stage.ValueType | None = FINAL_STAGE,
    open_ended: bool = False,
    error_code: str | None = None,
    error_message: str | None = None,
    retryable: bool = False,
    progress: tuple[int, int] | None = None,
    ready_to_fetch: bool = False,
    occurred_at: datetime | None = None,
    attributes: Mapping[str, str | None] | None = None,
) -> Status:
    """A FinBox subject in ``outcome``, with the error its ``error_code`` and
    ``error_message`` describe (``retryable`` as ``finbox_error`` says)."""
    failed = outcome.state in FAILURE_STATES
    return build_status(
        name,
        FINBOX,
        outcome.state,
        stage,
        final_stage=final_stage,
        open_ended=open_ended,
        provider_state=provider_state,
        error=finbox_error(error_code, error_message, failed=failed, retryable=retryable),
        progress=progress,
        ready_to_fetch=ready_to_fetch,
        occurred_at=occurred_at,
        attributes=attributes,
    )


# --- session flow webhooks --------------------------------------------------------------


def upload_webhook_updates(source_id: str, body: UploadWebhook) -> list[Status]:
    """``SESSION_REQUIREMENT_COMPLETION_NOTIFICATION`` / ``SESSION_EXPIRY_NOTIFICATION``."""
    label = "FinBox upload webhook"
    session = subject_name(source_id, "sessions", body.session_id)
    outcome = UPLOAD_EVENTS.lookup(body.event_name, label, "event_name")
    return [
        *upload_children(session, body.accounts, body.statements, label),
        finbox_status(session, outcome, Stage.STAGE_UPLOAD, body.event_name),
    ]


def enrichment_updates(
    source_id: str, body: EnrichmentWebhook, *, provider_state: str | None = None
) -> list[Status]:
    """``ENRICHMENT_NOTIFICATION``: each account, then the session they add up to.
    ``provider_state`` is the session's word when it is not the event's name (the
    ``session_status`` answer says the same without one)."""
    label = "FinBox enrichment webhook"
    session = subject_name(source_id, "sessions", body.session_id)
    accounts = [
        _enrichment_account(session, account, label, f"accounts.{i}")
        for i, account in enumerate(body.accounts or ())
    ]
    completed = sum(a.state == _S.STATE_COMPLETED for a in accounts)
    if not accounts:
        session_state = _S.STATE_COMPLETED if body.insights_available else _S.STATE_FAILED
    elif completed == len(accounts):
        session_state = _S.STATE_COMPLETED
    elif completed:
        session_state = _S.STATE_PARTIAL
    else:
        session_state = _S.STATE_FAILED
    ready = body.insights_available if body.insights_available is not None else completed > 0
    return [
        *accounts,
        finbox_status(
            session,
            Outcome(session_state),
            Stage.STAGE_PROCESSING,
            body.event_name if provider_state is None else provider_state,
            ready_to_fetch=ready,
        ),
    ]


def _enrichment_account(
    session: ResourceName, account: EnrichmentAccount, label: str, path: str
) -> Status:
    outcome = ENRICHMENT_ACCOUNT_STATES.lookup(
        account.account_status, label, f"{path}.account_status"
    )
    return finbox_status(
        child_name(session, "accounts", account.account_id),
        outcome,
        Stage.STAGE_PROCESSING,
        account.account_status,
        error_code=account.error_code,
        error_message=account.error_message,
        ready_to_fetch=outcome.state == _S.STATE_COMPLETED,
        attributes={"bank_name": account.bank_name},
    )


def upload_children(
    session: ResourceName,
    accounts: Iterable[UploadAccount] | None,
    statements: Iterable[Statement] | None,
    label: str,
) -> list[Status]:
    """Statements (those inside accounts, then any listed at the top), then accounts;
    as the upload webhook and the ``session_upload_status`` answer list them."""
    statement_updates: list[Status] = []
    account_updates: list[Status] = []
    for i, account in enumerate(accounts or ()):
        for j, statement in enumerate(account.statements or ()):
            statement_updates.append(
                _upload_statement(
                    session, statement, account.account_id, label, f"accounts.{i}.statements.{j}"
                )
            )
        account_updates.append(_upload_account(session, account, label, f"accounts.{i}"))
    for j, statement in enumerate(statements or ()):
        statement_updates.append(
            _upload_statement(session, statement, None, label, f"statements.{j}")
        )
    return statement_updates + account_updates


def _upload_account(session: ResourceName, account: UploadAccount, label: str, path: str) -> Status:
    outcome = UPLOAD_ACCOUNT_STATES.lookup(account.account_status, label, f"{path}.account_status")
    return finbox_status(
        child_name(session, "accounts", account.account_id),
        outcome,
        Stage.STAGE_UPLOAD,
        account.account_status,
        error_code=account.error_code,
        error_message=account.error_message,
        occurred_at=account.last_updated_at,
        attributes={
            "bank_name": account.bank_name,
            # Masked again even when FinBox masked it: the poll answer does not, and
            # some webhook examples do not either.
            "account_number": mask_account_number(account.account_number),
            "months": ",".join(account.months or ()),
            "missing_data": missing_data_summary(account.missing_data),
        },
    )


def _upload_statement(
    session: ResourceName,
    statement: Statement,
    account_id: str | None,
    label: str,
    path: str,
) -> Status:
    outcome = STATEMENT_STATES.lookup(statement.statement_status, label, f"{path}.statement_status")
    return finbox_status(
        child_name(session, "statements", statement.statement_id),
        outcome,
        Stage.STAGE_UPLOAD,
        statement.statement_status,
        error_code=statement.error_code,
        error_message=statement.error_message,
        attributes={"account_id": account_id or statement.account_id, "source": statement.source},
    )


def missing_data_summary(value: Any) -> str | None:
    """``missing_data`` as one attribute: ``from..to`` for a date range, strings as they
    are, anything else as compact JSON; entries joined by ",". No FinBox document shows
    an element of this list, so every shape is accepted."""
    items = value if isinstance(value, list) else [value]
    parts: list[str] = []
    for item in items:
        if item is None or item == "":
            continue
        if isinstance(item, str):
            parts.append(item)
        elif (
            isinstance(item, dict)
            and isinstance(item.get("from_date"), str)
            and isinstance(item.get("to_date"), str)
        ):
            parts.append(f"{item['from_date']}..{item['to_date']}")
        else:
            try:
                parts.append(json.dumps(item, sort_keys=True, separators=(",", ":")))
            except (TypeError, ValueError, RecursionError):
                continue
    return utf8(",".join(parts)) or None


# --- legacy entity flow -------------------------------------------------------------------


def entity_updates(source_id: str, body: EntityWebhook) -> list[Status]:
    """The legacy webhook: the statement when it names one, then the entity."""
    entity = subject_name(source_id, "entities", body.entity_id)
    outcome = ENTITY_STATES.lookup(body.progress, "FinBox entity webhook", "progress")
    completed = outcome.state == _S.STATE_COMPLETED
    updates: list[Status] = []
    if body.statement_id is not None:
        updates.append(
            finbox_status(
                child_name(entity, "statements", body.statement_id),
                outcome,
                Stage.STAGE_UNSPECIFIED,
                body.progress,
                # The flow has no stages, so success at "no stage" ends a statement.
                final_stage=Stage.STAGE_UNSPECIFIED,
                error_message=body.reason,
                ready_to_fetch=completed,
                occurred_at=body.date_time,
            )
        )
    updates.append(
        finbox_status(
            entity,
            outcome,
            Stage.STAGE_UNSPECIFIED,
            body.progress,
            final_stage=None,
            # An entity outlives any one attempt: a failed upload or login is followed
            # by the user's next one, so not even FAILED ends it.
            open_ended=True,
            error_message=body.reason,
            # No statement: a net-banking login failed, and the user can log in again.
            retryable=body.statement_id is None,
            ready_to_fetch=completed,
            occurred_at=body.date_time,
            attributes={"link_id": body.link_id},
        )
    )
    return updates
