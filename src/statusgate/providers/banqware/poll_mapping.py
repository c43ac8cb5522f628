"""banqware status-endpoint answers -> canonical statuses, through the callback mapping.

banqware documents the endpoints (``GET /api/session/status``: the current stage and
status; ``GET /api/session/status/details``) and the success envelope
``{"success": true, "data": ...}`` but not the shape of ``data``. The assumptions, all
of them forgiving:

- the status ``data`` carries ``stage`` and ``status`` as a session callback does (same
  words), and may carry the callback's other session fields;
- the details ``data`` is a list of accounts, an object with ``accounts`` (as the
  callback's ``details``), or an object with ``details``;
- a "2/3"-style count, under any key of either answer, is the session's ``progress``
  (the documents say such counts appear for the Accounts and Transactions stages).

The answers are then mapped as the equivalent session callback, so a poll and a
callback that say the same thing make the same update.
"""

from __future__ import annotations

import re
from typing import Any

from statusgate.providers.banqware.adapter import session_updates
from statusgate.providers.banqware.config import BanqwareSource
from statusgate.providers.banqware.payloads import SessionCallback
from statusgate.providers.common import invalid, parse
from statusgate.v1.status_pb2 import Status

LABEL = "banqware session status"

# Session-callback fields a status answer may carry (anything else is not read, so an
# answer can never be mistaken for a payment or transactions-page callback).
_SESSION_FIELDS = ("stage", "status", "bank", "bankId", "isSca", "sessionExternalId", "userId")
_COUNT_RE = re.compile(r"^\s*(\d{1,9})\s*/\s*(\d{1,9})\s*$")


def session_poll_updates(
    source: BanqwareSource, session_id: str, status: Any, details: Any = None
) -> list[Status]:
    """The session (from the status answer), then the accounts the details list."""
    if not isinstance(status, dict):
        raise invalid(LABEL, "data is not an object")
    callback: dict[str, Any] = {key: status[key] for key in _SESSION_FIELDS if key in status}
    callback["sessionId"] = session_id
    if details is not None:
        listed = details.get("details", details) if isinstance(details, dict) else details
        callback["details"] = listed
    parsed = parse(SessionCallback, callback, LABEL)
    return session_updates(source, parsed, progress=_count(status) or _count(details))


def _count(data: Any) -> tuple[int, int] | None:
    if not isinstance(data, dict):
        return None
    for value in data.values():
        match = _COUNT_RE.match(value) if isinstance(value, str) else None
        if match:
            return int(match.group(1)), int(match.group(2))
    return None
