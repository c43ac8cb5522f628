"""ReBIT notifications -> canonical statuses, through the word tables of ``tables``.

Every function here is pure: validated payload models in, ``Status`` updates out, in
the order they should be applied. The webhook adapter (``RebitAdapter``) and the poll
answers (``poll_mapping``) share the consent builder, so a notification and a poll that
say the same thing make the same update. The decisions behind them are listed in the
adapter's module docstring (``statusgate.providers.rebit.adapter``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from statusgate.providers.base import InvalidPayloadError
from statusgate.providers.common import (
    Outcome,
    Table,
    build_status,
    child_name,
    loose_text,
    subject_name,
)
from statusgate.providers.rebit.payloads import ConsentNotification, FiNotification
from statusgate.providers.rebit.tables import (
    CONSENT_STATES,
    FI_STATUSES,
    INVALID_CONSENT_STATUS,
    INVALID_FI_STATUS,
    INVALID_REQUEST,
    INVALID_SESSION_STATUS,
    SESSION_STATES,
)
from statusgate.v1.status_pb2 import Provider, Stage, State, Status

PROVIDER = Provider.PROVIDER_REBIT

# Sizes that keep a hostile or broken notification from bloating a status.
TEXT_LIMIT = 256


def refused(code: str, label: str, problem: str) -> InvalidPayloadError:
    """An invalid payload, with the standard's error code for it."""
    return InvalidPayloadError(f"invalid {label}: {problem}", code=code)


def lookup(table: Table[Outcome], word: str, label: str, path: str, code: str) -> Outcome:
    """What ``word`` (at ``path``) stands for; refused with ``code`` when unknown."""
    found = table.find(word)
    if found is None:
        raise refused(code, label, f"{path}: {table.unknown(word)}")
    return found


def consent_status(
    source_id: str,
    handle: str,
    state: State.ValueType,
    *,
    provider_state: str,
    occurred_at: datetime | None,
    attributes: Mapping[str, str | None],
) -> Status:
    """A consent, named by its handle: at stage CONSENT, ended only by its terminal
    states (data sessions keep running under an ACTIVE one)."""
    return build_status(
        subject_name(source_id, "consents", handle),
        PROVIDER,
        state,
        Stage.STAGE_CONSENT,
        final_stage=None,
        provider_state=provider_state,
        occurred_at=occurred_at,
        attributes=attributes,
    )


def normalize_consent(
    source_id: str, message: ConsentNotification, occurred_at: datetime
) -> list[Status]:
    """POST /Consent/Notification -> the consent."""
    label = "ReBIT consent notification"
    notification = message.notification
    if notification.consent_handle is None:
        raise refused(
            INVALID_REQUEST,
            label,
            "ConsentStatusNotification.consentHandle is missing (consents are named by "
            "their handle)",
        )
    word = notification.consent_status
    outcome = lookup(
        CONSENT_STATES,
        word,
        label,
        "ConsentStatusNotification.consentStatus",
        INVALID_CONSENT_STATUS,
    )
    return [
        consent_status(
            source_id,
            notification.consent_handle,
            outcome.state,
            provider_state=word.strip(),
            occurred_at=occurred_at,
            attributes={
                "consent_id": notification.consent_id,
                "notifier_id": _text(message.notifier.id),
            },
        )
    ]


def normalize_fi(source_id: str, message: FiNotification, occurred_at: datetime) -> list[Status]:
    """POST /FI/Notification -> each FIP account listed, then the data session."""
    label = "ReBIT FI notification"
    notification = message.notification
    session = subject_name(source_id, "data-sessions", notification.session_id)
    word = notification.session_status
    outcome = lookup(
        SESSION_STATES,
        word,
        label,
        "FIStatusNotification.sessionStatus",
        INVALID_SESSION_STATUS,
    )

    accounts: list[Status] = []
    outcomes: list[Outcome] = []
    for i, fip in enumerate(notification.responses):
        fip_id = _text(fip.fip_id)
        for j, account in enumerate(fip.accounts):
            path = f"FIStatusNotification.FIStatusResponse[{i}].Accounts[{j}].FIStatus"
            fi = lookup(FI_STATUSES, account.fi_status, label, path, INVALID_FI_STATUS)
            outcomes.append(fi)
            description = _text(account.description)
            accounts.append(
                build_status(
                    child_name(session, "accounts", account.link_ref_number),
                    PROVIDER,
                    fi.state,
                    Stage.STAGE_DATA_FETCH,
                    final_stage=Stage.STAGE_DATA_FETCH,
                    provider_state=account.fi_status.strip(),
                    error=fi.error(message=description or ""),
                    ready_to_fetch=fi.ready_to_fetch,
                    # No occurred_at: the notification's time is not when this account
                    # changed, and a newer time alone would make every unchanged
                    # account of every notification a new version.
                    attributes={"fip_id": fip_id, "description": description},
                )
            )

    total = len(outcomes)
    pending = sum(1 for fi in outcomes if fi.state == State.STATE_IN_PROGRESS)
    session_status = build_status(
        session,
        PROVIDER,
        outcome.state,
        Stage.STAGE_DATA_FETCH,
        final_stage=Stage.STAGE_DATA_FETCH,
        provider_state=word.strip(),
        progress=(total - pending, total) if total else None,
        # The data can be fetched once any FIP has it ready.
        ready_to_fetch=any(fi.ready_to_fetch for fi in outcomes),
        occurred_at=occurred_at,
        attributes={"notifier_id": _text(message.notifier.id)},
    )
    # Accounts first: when the session says "ready", its accounts already do too.
    return [*accounts, session_status]


def _text(value: object) -> str | None:
    return loose_text(value, limit=TEXT_LIMIT, strip=True)
