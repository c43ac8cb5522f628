"""FinBox payloads -> canonical statuses (DESIGN.md §5, the FinBox table).

Pure functions shared by the webhook adapter and the poller. Decisions the table leaves
open:

- **Order**: children first, the parent last: statements, then accounts, then the
  session (entity flow: the statement, then the entity). A consumer that sees the
  parent change can rely on its children already being current.
- **provider_state** is the provider's own word: ``account_status``,
  ``statement_status``, ``upload_status``, ``progress``..., and for a session reported
  by a webhook, the ``event_name``.
- **Enrichment with no accounts**: COMPLETED when ``insights_available``, else FAILED.
  When ``insights_available`` is missing (some documents leave it out),
  ``ready_to_fetch`` is "at least one account completed".
- **Poll ``progress``**: each statement takes the worst of its four status fields
  (failed > processing > completed; ``processing_status`` wins ties, so it is the
  ``provider_state`` unless another field is worse), so a statement whose transactions
  failed is not reported COMPLETED because its processing step finished. The fields are
  kept as attributes. The session counts finished statements in ``progress``, and a
  completed session is ``ready_to_fetch`` (its enrichment webhook, which says so too,
  is dropped once the session is terminal).
- **Legacy entity**: COMPLETED and FAILED both leave the entity open (not terminal):
  it keeps receiving statements, and a failure is one attempt (a wrong net-banking
  password, an unreadable PDF) after which the user tries again. Its statements end
  with their outcome. COMPLETED sets ``ready_to_fetch`` on both: FinBox sends the
  webhook when extraction is done. ``core.apply`` lets the success of a later attempt
  replace such an open failure, although DESIGN.md §4 ranks FAILED above COMPLETED.
- Statements carry no ``occurred_at``: their only time is ``created_at``, which is not
  the time of the status.
- Unknown status words make the payload invalid (case, ``_`` and spacing aside).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from statusgate.core.names import ResourceName, make_name
from statusgate.core.states import FAILURE_STATES
from statusgate.providers.base import InvalidPayloadError
from statusgate.providers.common import build_status, mask_account_number
from statusgate.providers.finbox.errors import finbox_error
from statusgate.providers.finbox.payloads import (
    EnrichmentWebhook,
    EntityWebhook,
    ProgressResponse,
    Statement,
    StatementProgress,
    UploadAccount,
    UploadStatusResponse,
    UploadWebhook,
    parse,
)
from statusgate.v1.status_pb2 import Provider, Stage, State, Status

FINBOX = Provider.PROVIDER_FINBOX
# Success of a session, account or statement ends its flow once processing is done.
FINAL_STAGE = Stage.STAGE_PROCESSING

UPLOAD_EVENTS: dict[str, State.ValueType] = {
    "SESSION_REQUIREMENT_COMPLETION_NOTIFICATION": State.STATE_COMPLETED,
    "SESSION_EXPIRY_NOTIFICATION": State.STATE_EXPIRED,
}
ENRICHMENT_EVENT = "ENRICHMENT_NOTIFICATION"

# Keyed by ``_word(raw)``: lower case, "_" as a space, spaces collapsed.
UPLOAD_ACCOUNT_STATES: dict[str, State.ValueType] = {
    "partial": State.STATE_PARTIAL,
    "completed": State.STATE_COMPLETED,
}
STATEMENT_STATES: dict[str, State.ValueType] = {
    "completed": State.STATE_COMPLETED,
    "failed": State.STATE_FAILED,
    "processing": State.STATE_IN_PROGRESS,
}
ENRICHMENT_ACCOUNT_STATES: dict[str, State.ValueType] = {
    "completed": State.STATE_COMPLETED,
    "failed": State.STATE_FAILED,
}
UPLOAD_STATUS_STATES: dict[str, State.ValueType] = {
    "no uploads": State.STATE_PENDING,
    "no upload": State.STATE_PENDING,
    "in progress": State.STATE_IN_PROGRESS,
    "completed": State.STATE_COMPLETED,
    "expired": State.STATE_EXPIRED,
}
PROGRESS_STATES: dict[str, State.ValueType] = {
    "processing": State.STATE_IN_PROGRESS,
    "completed": State.STATE_COMPLETED,
    "failed": State.STATE_FAILED,
}
# The entity webhook says completed/failed; the entity analysis endpoints, whose
# answers a replay may feed through here, also say processing.
ENTITY_STATES: dict[str, State.ValueType] = PROGRESS_STATES

_SEVERITY: dict[State.ValueType, int] = {
    State.STATE_COMPLETED: 0,
    State.STATE_IN_PROGRESS: 1,
    State.STATE_FAILED: 2,
}


def _word(raw: str) -> str:
    return " ".join(raw.replace("_", " ").split()).lower()


def _lookup(
    table: Mapping[str, State.ValueType], raw: str, what: str, where: str
) -> State.ValueType:
    state = table.get(_word(raw))
    if state is None:
        expected = ", ".join(sorted(table))
        raise InvalidPayloadError(
            f"invalid {what}: {where}: unknown value {raw[:60]!r}; "
            f"expected one of {expected} (any case)"
        )
    return state


def _failed(state: State.ValueType) -> bool:
    return state in FAILURE_STATES


# --- session flow webhooks --------------------------------------------------------------


def upload_webhook_updates(source_id: str, body: UploadWebhook) -> list[Status]:
    """``SESSION_REQUIREMENT_COMPLETION_NOTIFICATION`` / ``SESSION_EXPIRY_NOTIFICATION``."""
    session = make_name(source_id, "sessions", body.session_id)
    state = UPLOAD_EVENTS[body.event_name.strip().upper()]
    children = _upload_children(session, body.accounts, body.statements, "FinBox upload webhook")
    return [
        *children,
        build_status(
            session,
            FINBOX,
            state,
            Stage.STAGE_UPLOAD,
            final_stage=FINAL_STAGE,
            provider_state=body.event_name,
        ),
    ]


def enrichment_updates(source_id: str, body: EnrichmentWebhook) -> list[Status]:
    """``ENRICHMENT_NOTIFICATION``: each account, then the session they add up to."""
    what = "FinBox enrichment webhook"
    session = make_name(source_id, "sessions", body.session_id)
    accounts: list[Status] = []
    for i, account in enumerate(body.accounts or ()):
        state = _lookup(
            ENRICHMENT_ACCOUNT_STATES, account.account_status, what, f"accounts.{i}.account_status"
        )
        accounts.append(
            build_status(
                session.child("accounts", account.account_id),
                FINBOX,
                state,
                Stage.STAGE_PROCESSING,
                final_stage=FINAL_STAGE,
                provider_state=account.account_status,
                error=finbox_error(
                    account.error_code, account.error_message, failed=_failed(state)
                ),
                ready_to_fetch=state == State.STATE_COMPLETED,
                attributes={"bank_name": account.bank_name},
            )
        )
    completed = sum(a.state == State.STATE_COMPLETED for a in accounts)
    if not accounts:
        session_state = State.STATE_COMPLETED if body.insights_available else State.STATE_FAILED
    elif completed == len(accounts):
        session_state = State.STATE_COMPLETED
    elif completed:
        session_state = State.STATE_PARTIAL
    else:
        session_state = State.STATE_FAILED
    ready = body.insights_available if body.insights_available is not None else completed > 0
    return [
        *accounts,
        build_status(
            session,
            FINBOX,
            session_state,
            Stage.STAGE_PROCESSING,
            final_stage=FINAL_STAGE,
            provider_state=body.event_name,
            ready_to_fetch=ready,
        ),
    ]


def _upload_children(
    session: ResourceName,
    accounts: Iterable[UploadAccount] | None,
    statements: Iterable[Statement] | None,
    what: str,
) -> list[Status]:
    """Statements (those inside accounts, then any listed at the top), then accounts."""
    statement_updates: list[Status] = []
    account_updates: list[Status] = []
    for i, account in enumerate(accounts or ()):
        for j, statement in enumerate(account.statements or ()):
            statement_updates.append(
                _upload_statement(
                    session, statement, account.account_id, what, f"accounts.{i}.statements.{j}"
                )
            )
        account_updates.append(_upload_account(session, account, what, f"accounts.{i}"))
    for j, statement in enumerate(statements or ()):
        statement_updates.append(
            _upload_statement(session, statement, None, what, f"statements.{j}")
        )
    return statement_updates + account_updates


def _upload_account(session: ResourceName, account: UploadAccount, what: str, where: str) -> Status:
    state = _lookup(UPLOAD_ACCOUNT_STATES, account.account_status, what, f"{where}.account_status")
    return build_status(
        session.child("accounts", account.account_id),
        FINBOX,
        state,
        Stage.STAGE_UPLOAD,
        final_stage=FINAL_STAGE,
        provider_state=account.account_status,
        error=finbox_error(account.error_code, account.error_message, failed=_failed(state)),
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
    what: str,
    where: str,
) -> Status:
    state = _lookup(STATEMENT_STATES, statement.statement_status, what, f"{where}.statement_status")
    return build_status(
        session.child("statements", statement.statement_id),
        FINBOX,
        state,
        Stage.STAGE_UPLOAD,
        final_stage=FINAL_STAGE,
        provider_state=statement.statement_status,
        error=finbox_error(statement.error_code, statement.error_message, failed=_failed(state)),
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
    summary = ",".join(parts)
    # JSON strings may hold lone surrogates, which protobuf refuses.
    return summary.encode("utf-8", "replace").decode("utf-8") or None


# --- legacy entity flow -------------------------------------------------------------------


def entity_updates(source_id: str, body: EntityWebhook) -> list[Status]:
    """The legacy webhook: the statement when it names one, then the entity."""
    entity = make_name(source_id, "entities", body.entity_id)
    state = _lookup(ENTITY_STATES, body.progress, "FinBox entity webhook", "progress")
    failed = _failed(state)
    completed = state == State.STATE_COMPLETED
    updates: list[Status] = []
    if body.statement_id is not None:
        updates.append(
            build_status(
                entity.child("statements", body.statement_id),
                FINBOX,
                state,
                # The flow has no stages, so success at "no stage" ends a statement.
                final_stage=Stage.STAGE_UNSPECIFIED,
                provider_state=body.progress,
                error=finbox_error(None, body.reason, failed=failed),
                ready_to_fetch=completed,
                occurred_at=body.date_time,
            )
        )
    entity_status = build_status(
        entity,
        FINBOX,
        state,
        final_stage=None,
        provider_state=body.progress,
        # No statement: a net-banking login failed, and the user can log in again.
        error=finbox_error(None, body.reason, failed=failed, retryable=body.statement_id is None),
        ready_to_fetch=completed,
        occurred_at=body.date_time,
        attributes={"link_id": body.link_id},
    )
    # An entity outlives any one attempt: a failed upload or login is followed by the
    # user's next one, so not even FAILED ends it (see the module docstring).
    entity_status.terminal = False
    updates.append(entity_status)
    return updates


# --- poll answers --------------------------------------------------------------------------


def upload_status_update(source_id: str, session_id: str, body: object) -> list[Status]:
    """``GET /session_data/{session_id}/session_upload_status/``: the accounts and their
    statements as in the upload webhook, then the session at UPLOAD."""
    what = "FinBox session_upload_status answer"
    answer = parse(UploadStatusResponse, body, what)
    session = make_name(source_id, "sessions", session_id)
    state = _lookup(UPLOAD_STATUS_STATES, answer.upload_status, what, "upload_status")
    return [
        *_upload_children(session, answer.accounts, answer.statements, what),
        build_status(
            session,
            FINBOX,
            state,
            Stage.STAGE_UPLOAD,
            final_stage=FINAL_STAGE,
            provider_state=answer.upload_status,
        ),
    ]


def progress_update(source_id: str, session_id: str, body: object) -> list[Status]:
    """``GET /session_data/{session_id}/progress/``: each statement, then the session at
    PROCESSING with ``progress`` = statements finished of statements reported."""
    what = "FinBox progress answer"
    answer = parse(ProgressResponse, body, what)
    session = make_name(source_id, "sessions", session_id)
    state = _lookup(PROGRESS_STATES, answer.session_progress, what, "session_progress")
    statements = [
        status
        for i, entry in enumerate(answer.progress or ())
        if (status := _progress_statement(session, entry, what, f"progress.{i}")) is not None
    ]
    finished = sum(s.state != State.STATE_IN_PROGRESS for s in statements)
    return [
        *statements,
        build_status(
            session,
            FINBOX,
            state,
            Stage.STAGE_PROCESSING,
            final_stage=FINAL_STAGE,
            provider_state=answer.session_progress,
            progress=(finished, len(statements)) if statements else None,
            ready_to_fetch=state == State.STATE_COMPLETED,
        ),
    ]


def _progress_statement(
    session: ResourceName, entry: StatementProgress, what: str, where: str
) -> Status | None:
    """The worst of the statement's status fields; None when it reports none."""
    fields = {
        "processing_status": entry.processing_status,
        "identity_status": entry.identity_status,
        "transaction_status": entry.transaction_status,
        "fraud_status": entry.fraud_status,
    }
    reported = [
        (raw, _lookup(PROGRESS_STATES, raw, what, f"{where}.{name}"))
        for name, raw in fields.items()
        if raw and raw.strip()
    ]
    if not reported:
        return None
    raw, state = max(reported, key=lambda pair: _SEVERITY[pair[1]])
    return build_status(
        session.child("statements", entry.statement_id),
        FINBOX,
        state,
        Stage.STAGE_PROCESSING,
        final_stage=FINAL_STAGE,
        provider_state=raw,
        error=finbox_error(None, entry.message, failed=_failed(state)),
        attributes={**fields, "source": entry.source},
    )
