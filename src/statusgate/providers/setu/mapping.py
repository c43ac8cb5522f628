"""Setu AA values -> canonical statuses: the tables of DESIGN.md §5 and pure functions.

Every function here is pure: validated payload models (or raw polled bodies) in,
``Status`` updates out, in the order they should be applied. The webhook adapter
(``SetuAdapter``) and the poller share them, so a webhook and a poll that say the same
thing produce the same update. The decisions behind these tables are listed in the
package docstring (``statusgate.providers.setu``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from statusgate.core.names import InvalidNameError, ResourceName, make_name
from statusgate.providers.base import InvalidPayloadError
from statusgate.providers.common import (
    build_status,
    mask_account_number,
    parse_provider_time,
    status_error,
)
from statusgate.providers.setu.payloads import (
    ConsentNotification,
    ConsentPollBody,
    FiDataFailedNotification,
    FiDataReadyNotification,
    Fip,
    SessionNotification,
    SessionPollBody,
    SetuError,
)
from statusgate.v1.status_pb2 import ErrorReason, Provider, Stage, State, Status, StatusError

PROVIDER = Provider.PROVIDER_SETU

_R = ErrorReason
_S = State


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one provider word means canonically."""

    state: State.ValueType
    reason: ErrorReason.ValueType = ErrorReason.ERROR_REASON_UNSPECIFIED
    retryable: bool = False
    ready_to_fetch: bool = False


# --- the tables ------------------------------------------------------------------------
# Status words are matched case-insensitively (after trimming); error codes exactly.

# CONSENT_STATUS_UPDATE data.status and GET /v2/consents/{id} status; stage CONSENT.
CONSENT_STATES: dict[str, State.ValueType] = {
    "PENDING": _S.STATE_PENDING,
    "INITIATED": _S.STATE_PENDING,
    "ACTIVE": _S.STATE_ACTIVE,
    "PAUSED": _S.STATE_PAUSED,
    "REVOKED": _S.STATE_REVOKED,
    "EXPIRED": _S.STATE_EXPIRED,
    "REJECTED": _S.STATE_REJECTED,
    "FAILED": _S.STATE_FAILED,
}

# CONSENT_STATUS_UPDATE error.code. The error object decides, whatever data.status and
# success say. An unknown code keeps data.status when there is one, else PENDING.
CONSENT_ERRORS: dict[str, Outcome] = {
    # The user closed the AA screens; the same link can be used again.
    "UserCancelled": Outcome(_S.STATE_PENDING, _R.ERROR_REASON_USER_CANCELLED, retryable=True),
    "UserRejected": Outcome(_S.STATE_REJECTED, _R.ERROR_REASON_USER_REJECTED),
    "FIPDenied": Outcome(_S.STATE_REJECTED, _R.ERROR_REASON_PROVIDER_DENIED),
    "NoFIPAccountsDiscovered": Outcome(_S.STATE_FAILED, _R.ERROR_REASON_NO_ACCOUNTS_FOUND),
    "ConsentObjectCreationFailure": Outcome(
        _S.STATE_FAILED, _R.ERROR_REASON_PROVIDER_ERROR, retryable=True
    ),
}

# SESSION_STATUS_UPDATE data.status and GET /v2/sessions/{id} status; stage DATA_FETCH.
SESSION_STATES: dict[str, Outcome] = {
    "PENDING": Outcome(_S.STATE_IN_PROGRESS),
    "ACTIVE": Outcome(_S.STATE_IN_PROGRESS),
    "PARTIAL": Outcome(_S.STATE_PARTIAL, ready_to_fetch=True),
    "COMPLETED": Outcome(_S.STATE_COMPLETED, ready_to_fetch=True),
    "EXPIRED": Outcome(_S.STATE_EXPIRED),
    "FAILED": Outcome(_S.STATE_FAILED),
}

# fips[].accounts[].FIStatus (FIstatus when polled); FIP accounts, stage DATA_FETCH.
FI_STATUSES: dict[str, Outcome] = {
    "PENDING": Outcome(_S.STATE_IN_PROGRESS),
    "READY": Outcome(_S.STATE_COMPLETED, ready_to_fetch=True),
    # Already delivered to us: the data exists and stays fetchable while the session
    # lives. Not ready would strand a WaitStatus(READY_TO_FETCH) on a terminal account
    # whose READY notification was lost.
    "DELIVERED": Outcome(_S.STATE_COMPLETED, ready_to_fetch=True),
    "DENIED": Outcome(_S.STATE_REJECTED, _R.ERROR_REASON_PROVIDER_DENIED),
    "TIMEOUT": Outcome(_S.STATE_FAILED, _R.ERROR_REASON_TIMEOUT, retryable=True),
    "FAILED": Outcome(_S.STATE_FAILED),
}

# FI_DATA_READY status (auto-fetch).
FI_DATA_READY_STATES: dict[str, Outcome] = {
    "PENDING": Outcome(_S.STATE_IN_PROGRESS),
    "PARTIAL": Outcome(_S.STATE_PARTIAL, ready_to_fetch=True),
    "COMPLETED": Outcome(_S.STATE_COMPLETED, ready_to_fetch=True),
}

# FI_DATA_FAILED error.code (and an error on a SESSION_STATUS_UPDATE): the data session
# FAILED, provider_code kept. "Retryable" means a new data session on the same consent
# may succeed; an unusable consent will not get better by asking again.
FI_ERRORS: dict[str, Outcome] = {
    "InvalidConsentUse": Outcome(_S.STATE_FAILED, _R.ERROR_REASON_CONSENT_INVALID),
    "InvalidConsentStatus": Outcome(_S.STATE_FAILED, _R.ERROR_REASON_CONSENT_INVALID),
    "ConsentRevoked": Outcome(_S.STATE_FAILED, _R.ERROR_REASON_CONSENT_INVALID),
    "SessionExpired": Outcome(_S.STATE_FAILED, _R.ERROR_REASON_EXPIRED, retryable=True),
    "UpstreamServerDown": Outcome(_S.STATE_FAILED, _R.ERROR_REASON_PROVIDER_ERROR, retryable=True),
    "DataFetchFailure": Outcome(_S.STATE_FAILED, _R.ERROR_REASON_PROVIDER_ERROR, retryable=True),
}

# Sizes that keep a hostile or broken payload from bloating a status.
_TEXT_LIMIT = 256
_CODE_LIMIT = 128
_MESSAGE_LIMIT = 1024
_LIST_LIMIT = 50


# --- webhooks ---------------------------------------------------------------------------


def normalize_consent(source_id: str, notification: ConsentNotification) -> list[Status]:
    """CONSENT_STATUS_UPDATE -> the consent."""
    what = "CONSENT_STATUS_UPDATE"
    data = notification.data
    word = _word(data.status if data else None)
    state = _lookup(CONSENT_STATES, word, what, "data.status", "consent status") if word else None
    error: StatusError | None = None
    code = ""
    reported = _error(notification.error)
    if reported is not None:
        code, message = reported
        known = CONSENT_ERRORS.get(code)
        if known is not None:
            state = known.state
            error = status_error(known.reason, code, message, retryable=known.retryable)
        else:
            # Unknown code: believe data.status when given; otherwise stay PENDING, a
            # guess the reconciler's poll can still correct (FAILED could not be undone).
            state = state if state is not None else _S.STATE_PENDING
            error = status_error(_R.ERROR_REASON_UNKNOWN, code, message)
    if state is None:
        raise InvalidPayloadError(f"{what}: data.status is missing and there is no error")
    attributes = {
        "notification_id": _text(notification.notification_id),
        **_consent_detail_attributes(data.detail if data else None),
    }
    return [
        build_status(
            _name(source_id, "consents", notification.consent_id),
            PROVIDER,
            state,
            Stage.STAGE_CONSENT,
            final_stage=None,
            provider_state=word.strip() if word else code,
            error=error,
            occurred_at=_time(notification.timestamp),
            attributes=attributes,
        )
    ]


def normalize_session(source_id: str, notification: SessionNotification) -> list[Status]:
    """SESSION_STATUS_UPDATE -> each FIP account listed, then the data session."""
    data = notification.data
    rng_from, rng_to = _range(data.data_range if data else None)
    return _session_statuses(
        source_id,
        notification.data_session_id,
        what="SESSION_STATUS_UPDATE",
        where="data.",
        word=_word(data.status if data else None),
        error=_error(notification.error),
        fips=data.fips if data else None,
        occurred_at=_time(notification.timestamp),
        attributes={
            "consent_id": _text(notification.consent_id),
            "format": _text(data.format if data else None),
            "data_range_from": rng_from,
            "data_range_to": rng_to,
            "notification_id": _text(notification.notification_id),
        },
    )


def normalize_fi_data_ready(source_id: str, notification: FiDataReadyNotification) -> list[Status]:
    """FI_DATA_READY -> the data session when named, else the consent (see the package
    docstring: a consent is never COMPLETED, it only learns that data is ready)."""
    what = "FI_DATA_READY"
    reported = _error(notification.error)
    if reported is not None:  # never trust the type or `success` either: the error decides
        return _fi_failure(source_id, notification, reported)
    word = _word(notification.status) or _word(
        notification.data.status if notification.data else None
    )
    if word is None:
        raise InvalidPayloadError(f"{what}: status is missing and there is no error")
    outcome = _lookup(FI_DATA_READY_STATES, word, what, "status", "FI_DATA_READY status")
    if notification.data_session_id is not None:
        # No per-account detail here, so a PARTIAL cannot be known to be final.
        final = None if outcome.state == _S.STATE_PARTIAL else Stage.STAGE_DATA_FETCH
        return [
            build_status(
                _name(source_id, "data-sessions", notification.data_session_id),
                PROVIDER,
                outcome.state,
                Stage.STAGE_DATA_FETCH,
                final_stage=final,
                provider_state=word.strip(),
                ready_to_fetch=outcome.ready_to_fetch,
                occurred_at=_time(notification.timestamp),
                attributes={
                    "consent_id": notification.consent_id,
                    "notification_id": _text(notification.notification_id),
                },
            )
        ]
    if notification.consent_id is not None:
        # Data flows only under an approved consent: ACTIVE, with no provider time so it
        # never flips a PAUSED consent (equal rank, not newer) and only adds readiness;
        # it lifts a consent still PENDING (its ACTIVE notification was lost) to ACTIVE.
        return [
            build_status(
                _name(source_id, "consents", notification.consent_id),
                PROVIDER,
                _S.STATE_ACTIVE,
                Stage.STAGE_CONSENT,
                final_stage=None,
                ready_to_fetch=outcome.ready_to_fetch,
            )
        ]
    raise InvalidPayloadError(f"{what}: names neither a dataSessionId nor a consentId")


def normalize_fi_data_failed(
    source_id: str, notification: FiDataFailedNotification
) -> list[Status]:
    """FI_DATA_FAILED -> the data session FAILED when named (and a revoked consent)."""
    return _fi_failure(source_id, notification, _error(notification.error) or ("", ""))


# --- polls --------------------------------------------------------------------------------


def consent_poll_update(
    source_id: str, consent_id: str, body: Any, *, observed_at: datetime | None = None
) -> list[Status]:
    """``GET /v2/consents/{id}`` -> the consent.

    Pass ``observed_at`` (when the answer was received): the body carries no time of
    its own, and only a newer provider time lets an equal-rank change through (a consent
    going ACTIVE -> PAUSED -> ACTIVE). Without it a poll can only add information.
    """
    what = "GET /v2/consents/{id}"
    parsed = parse_payload(ConsentPollBody, body, what)
    word = _word(parsed.status)
    if word is None:
        raise InvalidPayloadError(f"{what}: status is empty")
    state = _lookup(CONSENT_STATES, word, what, "status", "consent status")
    return [
        build_status(
            _name(source_id, "consents", consent_id),
            PROVIDER,
            state,
            Stage.STAGE_CONSENT,
            final_stage=None,
            provider_state=word.strip(),
            occurred_at=observed_at,
            attributes=_consent_detail_attributes(parsed.detail, parsed.accounts_linked),
        )
    ]


def data_session_poll_update(
    source_id: str, session_id: str, body: Any, *, observed_at: datetime | None = None
) -> list[Status]:
    """``GET /v2/sessions/{id}`` -> each FIP account, then the data session.

    ``observed_at`` as for ``consent_poll_update``.
    """
    parsed = parse_payload(SessionPollBody, body, "GET /v2/sessions/{id}")
    rng_from, rng_to = _range(parsed.data_range)
    return _session_statuses(
        source_id,
        session_id,
        what="GET /v2/sessions/{id}",
        where="",
        word=_word(parsed.status),
        error=None,
        fips=parsed.fips,
        occurred_at=observed_at,
        attributes={
            "consent_id": _text(parsed.consent_id),
            "format": _text(parsed.format),
            "data_range_from": rng_from,
            "data_range_to": rng_to,
        },
    )


# --- shared builders ----------------------------------------------------------------------


def _session_statuses(
    source_id: str,
    session_id: str,
    *,
    what: str,
    where: str,
    word: str | None,
    error: tuple[str, str] | None,
    fips: list[Fip] | None,
    occurred_at: datetime | None,
    attributes: Mapping[str, str | None],
) -> list[Status]:
    name = _name(source_id, "data-sessions", session_id)
    outcome = (
        _lookup(SESSION_STATES, word, what, f"{where}status", "data session status")
        if word
        else None
    )

    accounts: list[Status] = []
    account_outcomes: list[Outcome] = []
    for i, fip in enumerate(fips or []):
        fip_id = _text(fip.fip_id)
        for j, account in enumerate(fip.accounts or []):
            where_account = f"{where}fips[{i}].accounts[{j}].FIStatus"
            fi_word = account.fi_status
            fi = _lookup(FI_STATUSES, fi_word, what, where_account, "FIStatus")
            account_outcomes.append(fi)
            description = _text(account.description)
            accounts.append(
                build_status(
                    _child(name, "accounts", account.link_ref_number),
                    PROVIDER,
                    fi.state,
                    Stage.STAGE_DATA_FETCH,
                    final_stage=Stage.STAGE_DATA_FETCH,
                    provider_state=fi_word.strip(),
                    error=(
                        status_error(fi.reason, message=description or "", retryable=fi.retryable)
                        if fi.reason
                        else None
                    ),
                    ready_to_fetch=fi.ready_to_fetch,
                    # No occurred_at: the notification's time is not when this account
                    # changed, and a newer time alone would make every unchanged account
                    # of every notification a new version. Accounts never need provider
                    # time to move (their changes all raise the rank).
                    attributes={
                        "fip_id": fip_id,
                        "description": description,
                        "masked_account_number": mask_account_number(
                            _text(account.masked_acc_number)
                        ),
                    },
                )
            )

    status_error_: StatusError | None = None
    code = ""
    if error is not None:
        code, message = error
        known = FI_ERRORS.get(code)
        if known is not None:
            outcome = known
            status_error_ = status_error(known.reason, code, message, retryable=known.retryable)
        else:
            outcome = outcome if outcome is not None else Outcome(_S.STATE_FAILED)
            status_error_ = status_error(_R.ERROR_REASON_UNKNOWN, code, message)
    if outcome is None:
        raise InvalidPayloadError(f"{what}: {where}status is missing and there is no error")

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
        error=status_error_,
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
    code, message = reported
    known = FI_ERRORS.get(code)
    if known is not None:
        error = status_error(known.reason, code, message, retryable=known.retryable)
    else:
        error = status_error(_R.ERROR_REASON_UNKNOWN, code, message)
    occurred_at = _time(notification.timestamp)
    statuses: list[Status] = []
    if notification.data_session_id is not None:
        statuses.append(
            build_status(
                _name(source_id, "data-sessions", notification.data_session_id),
                PROVIDER,
                _S.STATE_FAILED,
                Stage.STAGE_DATA_FETCH,
                final_stage=Stage.STAGE_DATA_FETCH,
                provider_state=code,
                error=error,
                occurred_at=occurred_at,
                attributes={
                    "consent_id": notification.consent_id,
                    "notification_id": _text(notification.notification_id),
                },
            )
        )
    if notification.consent_id is not None and code == "ConsentRevoked":
        # The one FI failure that states a fact about the consent itself.
        statuses.append(
            build_status(
                _name(source_id, "consents", notification.consent_id),
                PROVIDER,
                _S.STATE_REVOKED,
                Stage.STAGE_CONSENT,
                final_stage=None,
                provider_state=code,
                error=error,
                occurred_at=occurred_at,
            )
        )
    if notification.data_session_id is None and notification.consent_id is None:
        raise InvalidPayloadError(
            f"{notification.type}: names neither a dataSessionId nor a consentId"
        )
    # Any other failure naming only the consent is about a fetch we track no subject
    # for: acknowledged, no update.
    return statuses


def _consent_detail_attributes(detail: Any, accounts_linked: Any = None) -> dict[str, str | None]:
    """A few small facts from a consent's ``detail`` (v1 ``Detail``) and linked accounts."""
    d: Mapping[str, Any] = detail if isinstance(detail, dict) else {}
    rng_from, rng_to = _range(_first(d, "dataRange", "DataRange", "FIDataRange"))
    attributes = {
        "consent_handle": _text(d.get("consentHandle")),
        "fi_types": _join(_first(d, "fiTypes", "FITypes")),
        "data_range_from": rng_from,
        "data_range_to": rng_to,
    }
    accounts = accounts_linked if accounts_linked is not None else _first(d, "accounts", "Accounts")
    if isinstance(accounts, list):
        attributes["accounts_linked"] = str(len(accounts))
        fip_ids = {
            _text(_first(account, "fipId", "fipID"))
            for account in accounts[:_LIST_LIMIT]
            if isinstance(account, dict)
        }
        attributes["fip_ids"] = _join(sorted(fip for fip in fip_ids if fip))
    return attributes


# --- small helpers ------------------------------------------------------------------------

_M = TypeVar("_M", bound=BaseModel)
_T = TypeVar("_T")


def parse_payload(model: type[_M], body: Any, what: str) -> _M:
    """``body`` as ``model``; a validation failure is InvalidPayloadError."""
    try:
        return model.model_validate(body)
    except ValidationError as error:
        raise InvalidPayloadError.from_validation(f"Setu {what}", error) from None


def _lookup(table: Mapping[str, _T], word: str, what: str, where: str, vocabulary: str) -> _T:
    found = table.get(word.strip().upper())
    if found is None:
        raise InvalidPayloadError(
            f"{what}: {where}: unknown {vocabulary} {_short(repr(word))}; "
            f"expected one of {', '.join(table)}"
        )
    return found


def _name(source_id: str, collection: str, id_: str) -> ResourceName:
    try:
        return make_name(source_id, collection, id_)
    except InvalidNameError as error:
        raise InvalidPayloadError(_short(str(error), _MESSAGE_LIMIT)) from None


def _child(parent: ResourceName, collection: str, id_: str) -> ResourceName:
    try:
        return parent.child(collection, id_)
    except InvalidNameError as error:
        raise InvalidPayloadError(_short(str(error), _MESSAGE_LIMIT)) from None


def _word(value: str | None) -> str | None:
    """A status word, or None when absent or blank."""
    if value is None or not value.strip():
        return None
    return value


def _error(error: SetuError | None) -> tuple[str, str] | None:
    """(code, message) of a reported error; None when there is none."""
    if error is None or not error.present:
        return None
    code = _clean((error.code or "").strip()[:_CODE_LIMIT])
    return code, _clean((error.message or "")[:_MESSAGE_LIMIT])


def _time(value: Any) -> datetime | None:
    """Provider time; a missing or unusable one gives None and never loses the status."""
    if not isinstance(value, str):
        return None
    try:
        return parse_provider_time(value)
    except (ValueError, OverflowError):  # e.g. 9999-12-31T23:59:59-14:00 is past year 9999
        return None


def _text(value: Any) -> str | None:
    """An attribute value: strings (and small integers) only, cleaned and capped."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and abs(value) < 10**30:
        return str(value)
    if isinstance(value, str):
        return _clean(value.strip()[:_TEXT_LIMIT]) or None
    return None


def _join(values: Any) -> str | None:
    if not isinstance(values, list):
        return None
    texts = [text for text in (_text(v) for v in values[:_LIST_LIMIT]) if text]
    return ",".join(texts)[:_TEXT_LIMIT] or None


def _range(value: Any) -> tuple[str | None, str | None]:
    if not isinstance(value, dict):
        return None, None
    return _text(value.get("from")), _text(value.get("to"))


def _first(mapping: Mapping[str, Any], *keys: str) -> Any:
    for key in keys:
        value = mapping.get(key)
        if value is not None:
            return value
    return None


def _clean(text: str) -> str:
    """Valid UTF-8 only: a lone surrogate cannot be stored in a protobuf string."""
    return text.encode("utf-8", "replace").decode("utf-8")


def _short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
