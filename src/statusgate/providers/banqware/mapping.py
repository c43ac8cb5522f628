"""banqware's words and the canonical values they map to.

Words are matched ignoring case and the separators ``_``, ``-`` and space, so
``Finished``, ``FINISHED`` and ``in_progress`` are all understood; what a payload
carried is kept verbatim in ``provider_state``.
"""

from __future__ import annotations

from statusgate.providers.common import ANY_CASE_AND_SEPARATORS, Outcome, Table
from statusgate.v1.status_pb2 import ErrorReason, Stage, State

_R = ErrorReason
_S = State

# A session's stages in flow order (the Stage enum numbers follow the same order).
STAGES = Table(
    "stage",
    {
        "Authentication": Stage.STAGE_AUTHENTICATION,
        "Accounts": Stage.STAGE_ACCOUNTS,
        "AccountBalances": Stage.STAGE_ACCOUNT_BALANCES,
        "Transactions": Stage.STAGE_TRANSACTIONS,
        "TransactionDetails": Stage.STAGE_TRANSACTION_DETAILS,
    },
    ANY_CASE_AND_SEPARATORS,
)

# A session's status at its current stage (``Outcome.at`` adds the stage).
SESSION_STATUSES = Table(
    "status",
    {
        "Initiated": Outcome(_S.STATE_PENDING),
        "InProgress": Outcome(_S.STATE_IN_PROGRESS),
        "Finished": Outcome(_S.STATE_COMPLETED),
        "Failed": Outcome(_S.STATE_FAILED, reason=_R.ERROR_REASON_PROVIDER_ERROR),
        # Both obsolete in newer documents, still sent by older deployments.
        "AuthorizationFailed": Outcome(
            _S.STATE_FAILED, reason=_R.ERROR_REASON_AUTHORIZATION_FAILED
        ),
        "AuthenticationRequired": Outcome(
            _S.STATE_FAILED, reason=_R.ERROR_REASON_AUTHORIZATION_FAILED
        ),
    },
    ANY_CASE_AND_SEPARATORS,
)

# PIS paymentStatus, which arrives as the enum's name or its number.
PAYMENT_STATUSES = Table(
    "payment status",
    {
        "Created": Outcome(_S.STATE_PENDING),
        "InProgress": Outcome(_S.STATE_IN_PROGRESS),
        "Completed": Outcome(_S.STATE_COMPLETED),
        "Rejected": Outcome(_S.STATE_REJECTED),
        "NotSupported": Outcome(_S.STATE_FAILED, reason=_R.ERROR_REASON_UNSUPPORTED),
        "Cancelled": Outcome(_S.STATE_CANCELLED),
        "Expired": Outcome(_S.STATE_EXPIRED),
    },
    ANY_CASE_AND_SEPARATORS,
    numbers={
        1: "Created",
        2: "InProgress",
        3: "Completed",
        4: "Rejected",
        5: "NotSupported",
        6: "Cancelled",
        7: "Expired",
    },
)
