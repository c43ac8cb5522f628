"""The AA's answers to polls -> canonical statuses, through the consent builder of the
notifications (``mapping``), so a poll and a notification that say the same thing make
the same update.

``POST /Consent/handle`` answers ``{ver, timestamp, txnid, ConsentHandle,
ConsentStatus: {id, status}}``, the status of the consent *request*: PENDING, READY or
APPROVED (a consent artefact exists: the consent is ACTIVE, its id an attribute),
REJECTED, EXPIRED, FAILED. It cannot tell a PAUSED consent from an ACTIVE one, so the
update carries no provider time: at equal rank it never flips a PAUSED consent back
(a notification's newer time does), while it still lifts a PENDING consent whose
notification was lost, and ends one that was rejected or expired.
"""

from __future__ import annotations

from typing import Any

from statusgate.providers.common import invalid, parse
from statusgate.providers.rebit.mapping import consent_status, lookup
from statusgate.providers.rebit.payloads import ConsentHandleAnswer
from statusgate.providers.rebit.tables import HANDLE_STATES
from statusgate.v1.status_pb2 import Status

LABEL = "ReBIT POST /Consent/handle"


def consent_handle_update(
    source_id: str, handle: str, body: Any, *, txnid: str | None = None
) -> list[Status]:
    """The consent named by ``handle`` as the answer describes it. ``txnid``: the one
    the request carried, which the answer must echo (when it carries one)."""
    answer = parse(ConsentHandleAnswer, body, LABEL)
    if txnid is not None and answer.txnid is not None and answer.txnid != txnid:
        raise invalid(LABEL, "txnid is not the request's")
    word = answer.consent_status.status
    outcome = lookup(HANDLE_STATES, word, LABEL, "ConsentStatus.status", "")
    return [
        consent_status(
            source_id,
            handle,
            outcome.state,
            provider_state=word.strip(),
            occurred_at=None,
            attributes={"consent_id": answer.consent_status.id},
        )
    ]
