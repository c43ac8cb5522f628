"""Setu AA v2 poll answers -> canonical statuses, through the tables and the data-session
builder of the notifications (``mapping``), so a poll and a webhook that say the same
thing make the same update.

- ``GET /v2/consents/{id}`` -> the consent. The answer carries no time of its own: the
  poller passes the time it was received, and only a newer provider time lets an
  equal-rank change through (a consent going ACTIVE -> PAUSED -> ACTIVE). That time is
  given only to an answer that changes the stored state, so an unchanged answer adds no
  event on every poll.
- ``GET /v2/consents/{id}/data-sessions`` -> each data session listed, best effort: a
  listing is a bonus that lets a data session whose notifications were all lost still
  appear, and an entry that cannot be mapped is skipped, not the consent's failure.
- ``GET /v2/sessions/{id}`` -> each FIP account, then the data session, exactly as a
  SESSION_STATUS_UPDATE (the accounts' ``FIstatus`` spelling included).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from statusgate.providers.base import InvalidPayloadError
from statusgate.providers.common import invalid, parse
from statusgate.providers.setu.mapping import consent_status, session_statuses
from statusgate.providers.setu.payloads import (
    ConsentPollBody,
    SessionPollBody,
    attribute_text,
    consent_detail_attributes,
    date_range,
)
from statusgate.providers.setu.tables import CONSENT_STATES
from statusgate.v1.status_pb2 import State, Status

log = logging.getLogger(__name__)


def consent_poll_update(
    source_id: str,
    consent_id: str,
    body: Any,
    *,
    observed_at: datetime | None = None,
    known_state: State.ValueType | None = None,
) -> list[Status]:
    """``GET /v2/consents/{id}`` -> the consent.

    Pass ``observed_at`` (when the answer was received), and ``known_state`` (the
    consent's stored state, if any): the consent carries ``observed_at`` unless its
    state is ``known_state``. Without ``observed_at`` a poll can only add information.
    """
    label = "Setu GET /v2/consents/{id}"
    parsed = parse(ConsentPollBody, body, label)
    if not parsed.status.strip():
        raise invalid(label, "status is empty")
    outcome = CONSENT_STATES.lookup(parsed.status, label, "status")
    changed = known_state is None or outcome.state != known_state
    return [
        consent_status(
            source_id,
            consent_id,
            outcome.state,
            provider_state=parsed.status.strip(),
            occurred_at=observed_at if changed else None,
            attributes=consent_detail_attributes(parsed.detail, parsed.accounts_linked),
        )
    ]


def data_session_poll_update(
    source_id: str, session_id: str, body: Any, *, observed_at: datetime | None = None
) -> list[Status]:
    """``GET /v2/sessions/{id}`` -> each FIP account, then the data session.

    ``observed_at`` as for ``consent_poll_update``.
    """
    label = "Setu GET /v2/sessions/{id}"
    parsed = parse(SessionPollBody, body, label)
    range_from, range_to = date_range(parsed.data_range)
    return session_statuses(
        source_id,
        session_id,
        label=label,
        path="",
        word=parsed.status if parsed.status.strip() else None,
        error=None,
        fips=parsed.fips,
        occurred_at=observed_at,
        attributes={
            "consent_id": attribute_text(parsed.consent_id),
            "format": attribute_text(parsed.format),
            "data_range_from": range_from,
            "data_range_to": range_to,
        },
    )


def listed_session_updates(source_id: str, consent_id: str, listed: Any) -> list[Status]:
    """``GET /v2/consents/{id}/data-sessions``: ``{"dataSessions": [{"sessionId",
    "status"}]}``, each entry mapped as a ``GET /v2/sessions/{id}`` answer."""
    sessions = listed.get("dataSessions") if isinstance(listed, dict) else None
    updates: list[Status] = []
    for entry in sessions if isinstance(sessions, list) else []:
        if not isinstance(entry, dict) or not isinstance(entry.get("sessionId"), str):
            continue
        body = {"status": entry.get("status"), "consentId": consent_id}
        try:
            updates.extend(data_session_poll_update(source_id, entry["sessionId"], body))
        except InvalidPayloadError as problem:
            log.debug("ignored a data session listed for consent %s: %s", consent_id, problem)
    return updates
