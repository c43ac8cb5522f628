"""banqware's words and the canonical values they map to (DESIGN.md §5, banqware table).

Words are matched ignoring case and the separators ``_``, ``-`` and space, so
``Finished``, ``FINISHED`` and ``in_progress`` are all understood; what a payload
carried is kept verbatim in ``provider_state``.
"""

from __future__ import annotations

from typing import NamedTuple

from statusgate.v1.status_pb2 import ErrorReason, Stage, State

# A session's stages in flow order (the Stage enum numbers follow the same order).
STAGES: dict[str, Stage.ValueType] = {
    "Authentication": Stage.STAGE_AUTHENTICATION,
    "Accounts": Stage.STAGE_ACCOUNTS,
    "AccountBalances": Stage.STAGE_ACCOUNT_BALANCES,
    "Transactions": Stage.STAGE_TRANSACTIONS,
    "TransactionDetails": Stage.STAGE_TRANSACTION_DETAILS,
}


class Outcome(NamedTuple):
    state: State.ValueType
    error: ErrorReason.ValueType | None = None


SESSION_STATUSES: dict[str, Outcome] = {
    "Initiated": Outcome(State.STATE_PENDING),
    "InProgress": Outcome(State.STATE_IN_PROGRESS),
    "Finished": Outcome(State.STATE_COMPLETED),
    "Failed": Outcome(State.STATE_FAILED, ErrorReason.ERROR_REASON_PROVIDER_ERROR),
    # Both obsolete in newer documents, still sent by older deployments.
    "AuthorizationFailed": Outcome(
        State.STATE_FAILED, ErrorReason.ERROR_REASON_AUTHORIZATION_FAILED
    ),
    "AuthenticationRequired": Outcome(
        State.STATE_FAILED, ErrorReason.ERROR_REASON_AUTHORIZATION_FAILED
    ),
}

# PIS paymentStatus, which arrives as the enum's name or its number.
PAYMENT_STATUSES: dict[str, Outcome] = {
    "Created": Outcome(State.STATE_PENDING),
    "InProgress": Outcome(State.STATE_IN_PROGRESS),
    "Completed": Outcome(State.STATE_COMPLETED),
    "Rejected": Outcome(State.STATE_REJECTED),
    "NotSupported": Outcome(State.STATE_FAILED, ErrorReason.ERROR_REASON_UNSUPPORTED),
    "Cancelled": Outcome(State.STATE_CANCELLED),
    "Expired": Outcome(State.STATE_EXPIRED),
}
PAYMENT_STATUS_NUMBERS: dict[int, str] = {
    1: "Created",
    2: "InProgress",
    3: "Completed",
    4: "Rejected",
    5: "NotSupported",
    6: "Cancelled",
    7: "Expired",
}


def _fold(word: str) -> str:
    return word.casefold().replace("_", "").replace("-", "").replace(" ", "")


_STAGE_WORDS = {_fold(word): word for word in STAGES}
_SESSION_STATUS_WORDS = {_fold(word): word for word in SESSION_STATUSES}
_PAYMENT_STATUS_WORDS = {_fold(word): word for word in PAYMENT_STATUSES}


def stage_word(word: str) -> str | None:
    """The canonical spelling of a stage name, or None when it is not one."""
    return _STAGE_WORDS.get(_fold(word))


def session_status_word(word: str) -> str | None:
    return _SESSION_STATUS_WORDS.get(_fold(word))


def payment_status_word(value: str | int) -> str | None:
    """The enum name of a paymentStatus given as a name, a number or a numeric string."""
    if isinstance(value, int):
        return PAYMENT_STATUS_NUMBERS.get(value)
    text = value.strip()
    if text.isdecimal() and len(text) < 4:
        return PAYMENT_STATUS_NUMBERS.get(int(text))
    return _PAYMENT_STATUS_WORDS.get(_fold(text))
