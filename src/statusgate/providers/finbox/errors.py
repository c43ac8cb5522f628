"""FinBox error codes -> ``ErrorReason``.

``retryable`` answers "can another attempt with the same input succeed?", counting the
user re-entering what they typed as the same input:

- PASSWORD_INCORRECT: yes, the same statement uploaded again with the right password;
- EXTRACTION_FAILED: yes, a failure on FinBox's side rather than a property of the file
  (UNPARSABLE and PDF_IS_IMAGE are the file's);
- every other code: no. Missing months or transactions, a mismatched bank, a duplicate or
  an unreadable document need *different* input, and an unknown code promises nothing.
- a legacy entity failure without a statement (a net-banking login, e.g. wrong
  credentials): yes, the user can log in again; see ``mapping.entity_updates``.
"""

from __future__ import annotations

from statusgate.providers.common import status_error
from statusgate.v1.status_pb2 import ErrorReason, StatusError

REASONS: dict[str, ErrorReason.ValueType] = {
    **dict.fromkeys(
        (
            "MISSING_TRANSACTIONS",
            "INCOMPLETE_MONTHS",
            "INCOMPLETE_MONTHS_UPLOAD",
            "INCOMPLETE_DATES_UPLOAD",
            "OUT_OF_DATE_RANGE",
            "STATEMENT_NO_TRANSACTIONS",
            "NO_TRANSACTIONS_FROM_AA",
        ),
        ErrorReason.ERROR_REASON_DATA_INCOMPLETE,
    ),
    "BALANCE_MISMATCH": ErrorReason.ERROR_REASON_DATA_INCONSISTENT,
    **dict.fromkeys(
        ("NULL_ACCOUNT_NUMBER", "BANK_NAME_UNDETECTED", "BANK_NAME_MISMATCH"),
        ErrorReason.ERROR_REASON_ACCOUNT_UNIDENTIFIED,
    ),
    **dict.fromkeys(
        (
            "UNPARSABLE",
            "PDF_IS_IMAGE",
            "EXTRACTION_FAILED",
            "STATEMENT_UNSUPPORTED_FORMAT",
            "STATEMENT_TOO_MANY_PAGES",
        ),
        ErrorReason.ERROR_REASON_DOCUMENT_UNREADABLE,
    ),
    "PASSWORD_INCORRECT": ErrorReason.ERROR_REASON_CREDENTIALS_INVALID,
    "STATEMENT_DUPLICATE": ErrorReason.ERROR_REASON_DUPLICATE,
}
RETRYABLE: frozenset[str] = frozenset({"PASSWORD_INCORRECT", "EXTRACTION_FAILED"})


def finbox_error(
    code: str | None, message: str | None, *, failed: bool, retryable: bool = False
) -> StatusError | None:
    """The error a FinBox ``error_code`` / ``error_message`` pair describes.

    ``""`` and null codes mean "no error". A code is kept whatever the state (a PARTIAL
    account's INCOMPLETE_MONTHS_UPLOAD says why it is partial). A failure that names no
    code but says something gets an UNKNOWN error carrying the message; ``retryable``
    applies to that case only, a known code decides its own.
    """
    code = (code or "").strip()
    message = message or ""
    if not code:
        if failed and message:
            return status_error(
                ErrorReason.ERROR_REASON_UNKNOWN, message=message, retryable=retryable
            )
        return None
    key = code.upper()
    return status_error(
        REASONS.get(key, ErrorReason.ERROR_REASON_UNKNOWN),
        code,
        message,
        retryable=key in RETRYABLE,
    )
