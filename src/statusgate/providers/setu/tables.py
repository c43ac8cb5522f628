"""Setu's words and the canonical outcomes they stand for.

Status words are matched case-insensitively (after trimming); error codes exactly.
"""

from __future__ import annotations

from statusgate.providers.common import ANY_CASE, EXACT, Outcome, Table
from statusgate.v1.status_pb2 import ErrorReason, State

_R = ErrorReason
_S = State


# CONSENT_STATUS_UPDATE data.status and GET /v2/consents/{id} status; stage CONSENT.
CONSENT_STATES = Table(
    "consent status",
    {
        "PENDING": Outcome(_S.STATE_PENDING),
        "INITIATED": Outcome(_S.STATE_PENDING),
        "ACTIVE": Outcome(_S.STATE_ACTIVE),
        "PAUSED": Outcome(_S.STATE_PAUSED),
        "REVOKED": Outcome(_S.STATE_REVOKED),
        "EXPIRED": Outcome(_S.STATE_EXPIRED),
        "REJECTED": Outcome(_S.STATE_REJECTED),
        "FAILED": Outcome(_S.STATE_FAILED),
    },
    ANY_CASE,
)

# CONSENT_STATUS_UPDATE error.code. The error object decides, whatever data.status and
# success say. An unknown code keeps data.status when there is one, else PENDING.
CONSENT_ERRORS = Table(
    "consent error code",
    {
        # The user closed the AA screens; the same link can be used again.
        "UserCancelled": Outcome(
            _S.STATE_PENDING, reason=_R.ERROR_REASON_USER_CANCELLED, retryable=True
        ),
        "UserRejected": Outcome(_S.STATE_REJECTED, reason=_R.ERROR_REASON_USER_REJECTED),
        "FIPDenied": Outcome(_S.STATE_REJECTED, reason=_R.ERROR_REASON_PROVIDER_DENIED),
        "NoFIPAccountsDiscovered": Outcome(
            _S.STATE_FAILED, reason=_R.ERROR_REASON_NO_ACCOUNTS_FOUND
        ),
        "ConsentObjectCreationFailure": Outcome(
            _S.STATE_FAILED, reason=_R.ERROR_REASON_PROVIDER_ERROR, retryable=True
        ),
    },
    EXACT,
)

# SESSION_STATUS_UPDATE data.status and GET /v2/sessions/{id} status; stage DATA_FETCH.
SESSION_STATES = Table(
    "data session status",
    {
        "PENDING": Outcome(_S.STATE_IN_PROGRESS),
        "ACTIVE": Outcome(_S.STATE_IN_PROGRESS),
        "PARTIAL": Outcome(_S.STATE_PARTIAL, ready_to_fetch=True),
        "COMPLETED": Outcome(_S.STATE_COMPLETED, ready_to_fetch=True),
        "EXPIRED": Outcome(_S.STATE_EXPIRED),
        "FAILED": Outcome(_S.STATE_FAILED),
    },
    ANY_CASE,
)

# fips[].accounts[].FIStatus (FIstatus when polled); FIP accounts, stage DATA_FETCH.
FI_STATUSES = Table(
    "FIStatus",
    {
        "PENDING": Outcome(_S.STATE_IN_PROGRESS),
        "READY": Outcome(_S.STATE_COMPLETED, ready_to_fetch=True),
        # Setu: fetch only when FIStatus is READY. DELIVERED says the data already went
        # out; the account is done, and not (again) ready to fetch.
        "DELIVERED": Outcome(_S.STATE_COMPLETED),
        "DENIED": Outcome(_S.STATE_REJECTED, reason=_R.ERROR_REASON_PROVIDER_DENIED),
        "TIMEOUT": Outcome(_S.STATE_FAILED, reason=_R.ERROR_REASON_TIMEOUT, retryable=True),
        "FAILED": Outcome(_S.STATE_FAILED),
    },
    ANY_CASE,
)

# FI_DATA_READY status (auto-fetch).
FI_DATA_READY_STATES = Table(
    "FI_DATA_READY status",
    {
        "PENDING": Outcome(_S.STATE_IN_PROGRESS),
        "PARTIAL": Outcome(_S.STATE_PARTIAL, ready_to_fetch=True),
        "COMPLETED": Outcome(_S.STATE_COMPLETED, ready_to_fetch=True),
    },
    ANY_CASE,
)

# FI_DATA_FAILED error.code (and an error on a SESSION_STATUS_UPDATE): the data session
# FAILED, provider_code kept. "Retryable" means a new data session on the same consent
# may succeed; an unusable consent will not get better by asking again.
_CONSENT_INVALID = Outcome(_S.STATE_FAILED, reason=_R.ERROR_REASON_CONSENT_INVALID)
_PROVIDER_ERROR = Outcome(_S.STATE_FAILED, reason=_R.ERROR_REASON_PROVIDER_ERROR, retryable=True)
FI_ERRORS = Table(
    "FI error code",
    {
        "InvalidConsentUse": _CONSENT_INVALID,
        "InvalidConsentStatus": _CONSENT_INVALID,
        "ConsentRevoked": _CONSENT_INVALID,
        "SessionExpired": Outcome(_S.STATE_FAILED, reason=_R.ERROR_REASON_EXPIRED, retryable=True),
        "UpstreamServerDown": _PROVIDER_ERROR,
        "DataFetchFailure": _PROVIDER_ERROR,
    },
    EXACT,
)
