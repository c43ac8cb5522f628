"""The standard's words and the canonical outcomes they stand for, and its error codes.

Status words are matched case-insensitively (after trimming): the standard spells them
in capitals, and nothing is gained by refusing an AA that does not.
"""

from __future__ import annotations

from statusgate.providers.common import ANY_CASE, Outcome, Table
from statusgate.v1.status_pb2 import ErrorReason, State

_R = ErrorReason
_S = State

# ConsentStatusNotification.consentStatus; stage CONSENT.
CONSENT_STATES = Table(
    "consentStatus",
    {
        "PENDING": Outcome(_S.STATE_PENDING),
        "ACTIVE": Outcome(_S.STATE_ACTIVE),
        "PAUSED": Outcome(_S.STATE_PAUSED),
        "REVOKED": Outcome(_S.STATE_REVOKED),
        "REJECTED": Outcome(_S.STATE_REJECTED),
        "EXPIRED": Outcome(_S.STATE_EXPIRED),
    },
    ANY_CASE,
)

# FIStatusNotification.sessionStatus; stage DATA_FETCH. Readiness comes from the
# accounts (any READY), not from the session's word.
SESSION_STATES = Table(
    "sessionStatus",
    {
        "ACTIVE": Outcome(_S.STATE_IN_PROGRESS),
        "COMPLETED": Outcome(_S.STATE_COMPLETED),
        "EXPIRED": Outcome(_S.STATE_EXPIRED),
        "FAILED": Outcome(_S.STATE_FAILED),
    },
    ANY_CASE,
)

# FIStatusResponse[].Accounts[].FIStatus; FIP accounts, stage DATA_FETCH.
FI_STATUSES = Table(
    "FIStatus",
    {
        "PENDING": Outcome(_S.STATE_IN_PROGRESS),
        # The FIP has sent the data: the FIU may fetch it (POST /FI/fetch).
        "READY": Outcome(_S.STATE_COMPLETED, ready_to_fetch=True),
        # The FIU has fetched it; an AA need not keep it after that.
        "DELIVERED": Outcome(_S.STATE_COMPLETED),
        "DENIED": Outcome(_S.STATE_REJECTED, reason=_R.ERROR_REASON_PROVIDER_DENIED),
        "TIMEOUT": Outcome(_S.STATE_FAILED, reason=_R.ERROR_REASON_TIMEOUT, retryable=True),
    },
    ANY_CASE,
)

# POST /Consent/handle: ConsentStatus.status, the state of the consent *request*. An
# approved request (READY, APPROVED: a consent artefact exists) is an ACTIVE consent;
# the answer cannot tell a PAUSED one, so the poll update carries no provider time and
# never flips a PAUSED consent back (see poll_mapping).
HANDLE_STATES = Table(
    "ConsentStatus.status",
    {
        "PENDING": Outcome(_S.STATE_PENDING),
        "READY": Outcome(_S.STATE_ACTIVE),
        "APPROVED": Outcome(_S.STATE_ACTIVE),
        "REJECTED": Outcome(_S.STATE_REJECTED),
        "EXPIRED": Outcome(_S.STATE_EXPIRED),
        "FAILED": Outcome(_S.STATE_FAILED),
    },
    ANY_CASE,
)


# --- the error codes of the FIU callback API ------------------------------------------

INVALID_REQUEST = "InvalidRequest"
INVALID_URI = "InvalidURI"
SIGNATURE_DOES_NOT_MATCH = "SignatureDoesNotMatch"
INVALID_NOTIFIER = "InvalidNotifier"
INVALID_CONSENT_ID = "InvalidConsentId"
INVALID_CONSENT_STATUS = "InvalidConsentStatus"
INVALID_SESSION_ID = "InvalidSessionId"
INVALID_SESSION_STATUS = "InvalidSessionStatus"
INVALID_FI_STATUS = "InvalidFIStatus"
UNAUTHORIZED = "Unauthorized"
NO_SUCH_VERSION = "NoSuchVersion"
IDEMPOTENCY_ERROR = "IdempotencyError"
INTERNAL_ERROR = "InternalError"
SERVICE_UNAVAILABLE = "ServiceUnavailable"

# The HTTP status each code is answered with (the standard's responses table): 400
# unless listed.
CODE_STATUS = {
    UNAUTHORIZED: 401,
    NO_SUCH_VERSION: 404,
    IDEMPOTENCY_ERROR: 409,
    INTERNAL_ERROR: 500,
    SERVICE_UNAVAILABLE: 503,
}
