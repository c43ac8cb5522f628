"""Setu AA notifications -> canonical statuses, through the word tables of ``tables``.

Every function here is pure: validated payload models in, ``Status`` updates out, in
the order they should be applied. The webhook adapter (``SetuAdapter``) and the poll
answers (``poll_mapping``) share the consent and data-session builders, so a webhook
and a poll that say the same thing produce the same update. The decisions behind
them are listed in the adapter's module docstring (``statusgate.providers.setu.adapter``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from statusgate.providers.common import (
    MESSAGE_LIMIT,
    Outcome,
    Table,
    build_status,
    child_name,
    invalid,
    mask_account_number,
    status_error,
    subject_name,
    utf8,
)
from statusgate.providers.setu.payloads import (
    ConsentNotification,
    FiDataFailedNotification,
    FiDataReadyNotification,
    Fip,
    SessionNotification,
    SetuError,
    attribute_text,
    consent_detail_attributes,
    date_range,
)
from statusgate.providers.setu.tables import (
    CONSENT_ERRORS,
    CONSENT_STATES,
    FI_DATA_READY_STATES,
    FI_ERRORS,
    FI_STATUSES,
    SESSION_STATES,
)
from statusgate.v1.status_pb2 import ErrorReason, Provider, Stage, State, Status, StatusError

PROVIDER = Provider.PROVIDER_SETU

_R = ErrorReason
_S = State

# Sizes that keep a hostile or broken error from bloating a status.
_CODE_LIMIT = 128


# --- webhooks ---------------------------------------------------------------------------


def normalize_consent(source_id: str, notification: ConsentNotification) -> list[Status]:
    """CONSENT_STATUS_UPDATE -> the consent."""
    label = "Setu CONSENT_STATUS_UPDATE"
    data = notification.data
    word = _word(data.status if data else None)
    outcome = CONSENT_STATES.lookup(word, label, "data.status") if word else None
    error: StatusError | None = None
    code = ""
    reported = _error(notification.error)
    if reported is not None:
        code = reported[0]
        # Unknown code: believe data.status when given; otherwise stay PENDING, a guess
        # the reconciler's poll can still correct (FAILED could not be undone).
        outcome, error = _reported(CONSENT_ERRORS, reported, outcome or Outcome(_S.STATE_PENDING))
    if outcome is None:
        raise invalid(label, "data.status is missing and there is no error")
    attributes = {
        "notification_id": attribute_text(notification.notification_id),
        **consent_detail_attributes(data.detail if data else None),
    }
    return [
        consent_status(
            source_id,
            notification.consent_id,
            outcome.state,
            provider_state=word.strip() if word else code,
            error=error,
            occurred_at=notification.timestamp,
            attributes=attributes,
        )
    ]


def normalize_session(source_id: str, notification: SessionNotification) -> list[Status]:
    """SESSION_STATUS_UPDATE -> each FIP account listed, then the data session."""
    data = notification.data
    range_from, range_to = date_range(data.data_range if data else None)
    return session_statuses(
        source_id,
        notification.data_session_id,
        label="Setu SESSION_STATUS_UPDATE",
        path="data",
        word=_word(data.status if data else None),
        error=_error(notification.error),
        fips=data.fips if data else None,
        occurred_at=notification.timestamp,
        attributes={
            "consent_id": attribute_text(notification.consent_id),
            "format": attribute_text(data.format if data else None),
            "data_range_from": range_from,
            "data_range_to": range_to,
            "notification_id": attribute_text(notification.notification_id),
        },
    )


def normalize_fi_data_ready(source_id: str, notification: FiDataReadyNotification) -> list[Status]:
    """FI_DATA_READY -> the data session when named, else the consent (see the adapter's
    docstring: a consent is never COMPLETED, it only learns that data is ready)."""
    label = "Setu FI_DATA_READY"
    reported = _error(notification.error)
    if reported is not None:  # never trust the type or `success` either: the error decides
        return _fi_failure(source_id, notification, reported)
    word = _word(notification.status)
    path = "status"
    if word is None:
        word = _word(notification.data.status if notification.data else None)
        path = "data.status"
    if word is None:
        raise invalid(label, "status is missing and there is no error")
    outcome = FI_DATA_READY_STATES.lookup(word, label, path)
    if notification.data_session_id is not None:
        # No per-account detail here, so a PARTIAL cannot be known to be final.
        final = None if outcome.state == _S.STATE_PARTIAL else Stage.STAGE_DATA_FETCH
        return [
            build_status(
                subject_name(source_id, "data-sessions", notification.data_session_id),
                PROVIDER,
                outcome.state,
                Stage.STAGE_DATA_FETCH,
                final_stage=final,
                provider_state=word.strip(),
                ready_to_fetch=outcome.ready_to_fetch,
                occurred_at=notification.timestamp,
                attributes={
                    "consent_id": notification.consent_id,
                    "notification_id": attribute_text(notification.notification_id),
                },
            )
        ]
    if notification.consent_id is not None:
        # Data flows only under an approved consent: ACTIVE, with no provider time so it
        # never flips a PAUSED consent (equal rank, not newer) and only adds readiness;
        # it lifts a consent still PENDING (its ACTIVE notification was lost) to ACTIVE.
        return [
            consent_status(
                source_id,
                notification.consent_id,
                _S.STATE_ACTIVE,
                ready_to_fetch=outcome.ready_to_fetch,
            )
        ]
    raise invalid(label, "names neither a dataSessionId nor a consentId")


def normalize_fi_data_failed(
    source_id: str, notification: FiDataFailedNotification
) -> list[Status]:
    """FI_DATA_FAILED -> the data session FAILED when named (and a revoked consent)."""
    return _fi_failure(source_id, notification, _error(notification.error) or ("", ""))


# --- shared builders ----------------------------------------------------------------------


def consent_status(
    source_id: str,
    consent_id: str,
    state: State.ValueType,
    *,
    provider_state: str = "",
    error: StatusError | None = None,
    ready_to_fetch: bool = False,
    occurred_at: datetime | None = None,
    attributes: Mapping[str, str | None] | None = None,
) -> Status:
    """A consent: at stage CONSENT, and ended only by its terminal states (success
    never ends it: data sessions keep running under it)."""
    return build_status(
        subject_name(source_id, "consents", consent_id),
        PROVIDER,
        state,
        Stage.STAGE_CONSENT,
        final_stage=None,
        provider_state=provider_state,
        error=error,
        ready_to_fetch=ready_to_fetch,
        occurred_at=occurred_at,
        attributes=attributes,
    )


def session_statuses(
    source_id: str,
    session_id: str,
    *,
    label: str,
    path: str,
    word: str | None,
    error: tuple[str, str] | None,
    fips: list[Fip] | None,
    occurred_at: datetime | None,
    attributes: Mapping[str, str | None],
) -> list[Status]:
    """Each FIP account, then the data session, as a SESSION_STATUS_UPDATE (whose data
    is at ``path``) or a ``GET /v2/sessions/{id}`` answer describes them."""
    name = subject_name(source_id, "data-sessions", session_id)
    outcome = SESSION_STATES.lookup(word, label, _at(path, "status")) if word else None

    accounts: list[Status] = []
    account_outcomes: list[Outcome] = []
    for i, fip in enumerate(fips or []):
        fip_id = attribute_text(fip.fip_id)
        for j, account in enumerate(fip.accounts or []):
            fi_word = account.fi_status
            fi = FI_STATUSES.lookup(fi_word, label, _at(path, f"fips[{i}].accounts[{j}].FIStatus"))
            account_outcomes.append(fi)
            description = attribute_text(account.description)
            accounts.append(
                build_status(
                    child_name(name, "accounts", account.link_ref_number),
                    PROVIDER,
                    fi.state,
                    Stage.STAGE_DATA_FETCH,
                    final_stage=Stage.STAGE_DATA_FETCH,
                    provider_state=fi_word.strip(),
                    error=fi.error(message=description or ""),
                    ready_to_fetch=fi.ready_to_fetch,
                    # No occurred_at: the notification's time is not when this account
                    # changed, and a newer time alone would make every unchanged account
                    # of every notification a new version. Accounts never need provider
                    # time to move (their changes all raise the rank).
                    attributes={
                        "fip_id": fip_id,
                        "description": description,
                        "masked_account_number": mask_account_number(
                            attribute_text(account.masked_acc_number)
                        ),
                    },
                )
            )

    session_error: StatusError | None = None
    code = ""
    if error is not None:
        code = error[0]
        outcome, session_error = _reported(FI_ERRORS, error, outcome or Outcome(_S.STATE_FAILED))
    if outcome is None:
        raise invalid(label, f"{_at(path, 'status')} is missing and there is no error")

    # One notification arrives each time any FIP answers, so PARTIAL is final only when
    # no listed account is still PENDING; with no accounts listed it cannot be known.
    pending = sum(1 for fi in account_outcomes if fi.state == _S.STATE_IN_PROGRESS)
    final: Stage.ValueType | None = Stage.STAGE_DATA_FETCH
    if outcome.state == _S.STATE_PARTIAL and (pending or not account_outcomes):
        final = None
    total = len(account_outcomes)
    progress = (total - pending, total) if total else None

    session = build_status(
        name,
        PROVIDER,
        outcome.state,
        Stage.STAGE_DATA_FETCH,
        final_stage=final,
        provider_state=word.strip() if word else code,
        error=session_error,
        progress=progress,
        ready_to_fetch=outcome.ready_to_fetch,
        occurred_at=occurred_at,
        attributes=attributes,
    )
    # Accounts first: when the session says "ready", its accounts already do too.
    return [*accounts, session]


def _fi_failure(
    source_id: str,
    notification: FiDataReadyNotification | FiDataFailedNotification,
    reported: tuple[str, str],
) -> list[Status]:
    code = reported[0]
    _, error = _reported(FI_ERRORS, reported, Outcome(_S.STATE_FAILED))
    statuses: list[Status] = []
    if notification.data_session_id is not None:
        statuses.append(
            build_status(
                subject_name(source_id, "data-sessions", notification.data_session_id),
                PROVIDER,
                _S.STATE_FAILED,
                Stage.STAGE_DATA_FETCH,
                final_stage=Stage.STAGE_DATA_FETCH,
                provider_state=code,
                error=error,
                occurred_at=notification.timestamp,
                attributes={
                    "consent_id": notification.consent_id,
                    "notification_id": attribute_text(notification.notification_id),
                },
            )
        )
    if notification.consent_id is not None and code == "ConsentRevoked":
        # The one FI failure that states a fact about the consent itself.
        statuses.append(
            consent_status(
                source_id,
                notification.consent_id,
                _S.STATE_REVOKED,
                provider_state=code,
                error=error,
                occurred_at=notification.timestamp,
            )
        )
    if notification.data_session_id is None and notification.consent_id is None:
        raise invalid(f"Setu {notification.type}", "names neither a dataSessionId nor a consentId")
    # Any other failure naming only the consent is about a fetch we track no subject
    # for: acknowledged, no update.
    return statuses


# --- small helpers ------------------------------------------------------------------------


def _reported(
    table: Table[Outcome], reported: tuple[str, str], unknown: Outcome
) -> tuple[Outcome, StatusError | None]:
    """The outcome and error a reported ``(code, message)`` stands for: the table's, or
    for a code it does not know, ``unknown`` with an UNKNOWN error keeping the code."""
    code, message = reported
    known = table.find(code)
    if known is not None:
        return known, known.error(code, message)
    return unknown, status_error(_R.ERROR_REASON_UNKNOWN, code, message)


def _word(value: str | None) -> str | None:
    """A status word, or None when absent or blank."""
    if value is None or not value.strip():
        return None
    return value


def _error(error: SetuError | None) -> tuple[str, str] | None:
    """(code, message) of a reported error; None when there is none."""
    if error is None or not error.present:
        return None
    code = utf8((error.code or "").strip()[:_CODE_LIMIT])
    return code, utf8((error.message or "")[:MESSAGE_LIMIT])


def _at(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key
