"""Provider payloads as the providers document them, for the end-to-end tests."""

from __future__ import annotations

from typing import Any


def finbox_upload(session_id: str, *accounts: tuple[str, str]) -> dict[str, Any]:
    """SESSION_REQUIREMENT_COMPLETION_NOTIFICATION with (account_id, account_status)s."""
    return {
        "event_name": "SESSION_REQUIREMENT_COMPLETION_NOTIFICATION",
        "message": "Upload Completed",
        "session_id": session_id,
        "session_date_range": {"from_date": "01/05/2025", "to_date": "31/10/2025"},
        "accounts": [
            {
                "account_id": account_id,
                "account_number": "XXXXXXXXXXXX3135",
                "bank_name": "HDFC",
                "account_status": status,
                "months": ["2025-05", "2025-06"],
                "missing_data": [],
                "created_at": "2025-11-13 06:48:44",
                "last_updated_at": "2025-11-13 06:48:44",
                "statements": [],
            }
            for account_id, status in accounts
        ],
    }


def finbox_expiry(session_id: str) -> dict[str, Any]:
    return {
        "event_name": "SESSION_EXPIRY_NOTIFICATION",
        "message": "Session expired",
        "session_id": session_id,
        "accounts": [],
    }


def finbox_enrichment(session_id: str, *accounts: tuple[str, str]) -> dict[str, Any]:
    """ENRICHMENT_NOTIFICATION with (account_id, completed|failed)s."""
    return {
        "event_name": "ENRICHMENT_NOTIFICATION",
        "session_id": session_id,
        "insights_available": all(status == "completed" for _, status in accounts),
        "accounts": [
            {
                "account_id": account_id,
                "bank_name": "HDFC",
                "name": "A Customer",
                "account_category": "individual",
                "attempt_types": ["pdf"],
                "account_status": status,
                "error_code": "" if status == "completed" else "BALANCE_MISMATCH",
                "error_message": "" if status == "completed" else "balances do not match",
            }
            for account_id, status in accounts
        ],
    }
