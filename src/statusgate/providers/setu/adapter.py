"""The Setu Account Aggregator webhook adapter.

Subjects: the consent ``sources/{s}/consents/{consentId}`` (stage CONSENT), the data
session ``sources/{s}/data-sessions/{dataSessionId}`` (stage DATA_FETCH, final stage
DATA_FETCH) and its FIP accounts ``.../data-sessions/{dataSessionId}/accounts/
{linkRefNumber}`` (stage DATA_FETCH). The tables are in ``tables.py``, the
notifications' mapping in ``mapping.py``, the poll answers' in ``poll_mapping.py``, the
shapes in ``payloads.py``. Shapes are told apart by ``type``: CONSENT_STATUS_UPDATE,
SESSION_STATUS_UPDATE, FI_DATA_READY, FI_DATA_FAILED; anything else (or no ``type``) is
UnknownShapeError. A recognised type whose content is unusable (no id, an unknown status
word, a wrong type where a name or state comes from) is InvalidPayloadError, with the
path of the offending value. Nothing else is ever raised for a JSON object.

Decisions, where the contract leaves room:

1. ``success`` is never read: the ``error`` object decides (an error with neither
   ``code`` nor ``message`` counts as no error). A known error code's state wins over
   ``data.status``; ``provider_state`` is the raw status word, or the error code when
   there is no status.
2. Consent errors follow the table (UserCancelled stays PENDING with USER_CANCELLED,
   retryable because the link is reusable; the message is Setu's, e.g.
   ``cancel_not_understand``). An **unknown consent error code** keeps ``data.status``
   when given; with no status it is **PENDING** with error UNKNOWN (provider_code
   kept), not FAILED: a consent's FAILED is terminal and could never be undone if the
   new code turns out to be soft like UserCancelled, whereas a non-terminal PENDING is
   still polled by the reconciler, whose ``GET /v2/consents/{id}`` answer settles it.
   PENDING ranks lowest, so it never lowers a consent that is already further on.
3. Consents carry ``occurred_at`` = ``timestamp`` so ACTIVE -> PAUSED -> ACTIVE works at
   equal rank. Attributes: ``notification_id``, and from ``detail``: ``consent_handle``,
   ``fi_types``, ``data_range_from``/``to``, ``accounts_linked`` (a count) and
   ``fip_ids``.
4. Data session: PENDING/ACTIVE -> IN_PROGRESS; PARTIAL and COMPLETED are
   ``ready_to_fetch``. ``progress`` = (accounts whose FIP has answered, i.e. FIStatus no
   longer PENDING; accounts listed), set only when accounts are listed. Attributes:
   ``consent_id``, ``format``, ``data_range_from``/``to``, ``notification_id``.
5. **PARTIAL is terminal only when it is final.** Setu sends a SESSION_STATUS_UPDATE
   each time any FIP answers and its docs define PARTIAL as "some FIPs ready, others
   failed"; a PARTIAL that still lists a PENDING account is an intermediate count that
   COMPLETED may follow, and a terminal subject could never take it. So a PARTIAL is
   built with final stage DATA_FETCH (terminal, rule 3) only when accounts are listed
   and none is PENDING; otherwise it is a non-terminal PARTIAL (ready_to_fetch all the
   same), which a later PARTIAL with more progress or a COMPLETED still moves, and which
   the reconciler keeps polling until ``GET /v2/sessions/{id}`` shows it final.
   COMPLETED, EXPIRED and FAILED are always terminal.
6. FIP accounts: PENDING -> IN_PROGRESS, READY -> COMPLETED (ready), **DELIVERED ->
   COMPLETED but not ready_to_fetch** (Setu: fetch only when FIStatus is READY; a
   delivered account's data already went out), DENIED -> REJECTED (PROVIDER_DENIED), TIMEOUT ->
   FAILED (TIMEOUT, retryable), FAILED -> FAILED (no reason given by Setu). The
   ``description`` becomes the error message and an attribute; also ``fip_id`` and
   ``masked_account_number``. Accounts carry no ``occurred_at`` (the notification's
   time is not when that account changed, and would make every unchanged account a new
   version on every notification). They are emitted before their session.
7. An ``error`` on a SESSION_STATUS_UPDATE uses the FI_DATA_FAILED code table; an
   unknown code keeps ``data.status`` when given, else FAILED with UNKNOWN.
8. FI_DATA_READY (``status`` at the top level or under ``data``): with a
   ``dataSessionId`` it updates that data session like a session status (a PARTIAL is
   non-terminal: it lists no accounts); with **only a consentId** it emits the consent
   as **ACTIVE with ready_to_fetch** (PARTIAL/COMPLETED) and **no provider time**: a
   consent is never COMPLETED, data flows only under an approved consent, and an update
   with no time never flips a PAUSED consent back (equal rank, not newer) - it only adds
   readiness, or lifts a consent whose ACTIVE notification was lost out of PENDING. An
   ``error`` on it is handled as FI_DATA_FAILED.
9. FI_DATA_FAILED: the named data session becomes FAILED with ``provider_code`` kept:
   ConsentRevoked / InvalidConsentUse / InvalidConsentStatus -> CONSENT_INVALID;
   SessionExpired -> EXPIRED (retryable: a new data session may succeed);
   UpstreamServerDown, DataFetchFailure -> PROVIDER_ERROR (retryable); unknown or missing
   code -> UNKNOWN. ConsentRevoked also makes the named consent REVOKED (a fact about
   the consent). Any other failure naming only a consent yields no update (nothing we
   track failed); naming neither id is invalid.
10. Values that only feed attributes are read best-effort (wrong types ignored) and
    capped; messages are capped; lone surrogates are replaced, or refused in ids.
"""

from __future__ import annotations

from typing import ClassVar

from statusgate.config import SourceConfig
from statusgate.providers.base import JSONObject, UnknownShapeError
from statusgate.providers.common import parse
from statusgate.providers.setu import mapping
from statusgate.providers.setu.payloads import (
    ConsentNotification,
    FiDataFailedNotification,
    FiDataReadyNotification,
    SessionNotification,
)
from statusgate.v1.status_pb2 import Provider, Status

__all__ = ["SetuAdapter"]


class SetuAdapter:
    provider: ClassVar[Provider.ValueType] = Provider.PROVIDER_SETU

    def normalize(
        self, source: SourceConfig, payload: JSONObject, *, path: str = ""
    ) -> list[Status]:
        kind = payload.get("type") if isinstance(payload, dict) else None
        if kind == "CONSENT_STATUS_UPDATE":
            consent = parse(ConsentNotification, payload, f"Setu {kind}")
            return mapping.normalize_consent(source.id, consent)
        if kind == "SESSION_STATUS_UPDATE":
            session = parse(SessionNotification, payload, f"Setu {kind}")
            return mapping.normalize_session(source.id, session)
        if kind == "FI_DATA_READY":
            ready = parse(FiDataReadyNotification, payload, f"Setu {kind}")
            return mapping.normalize_fi_data_ready(source.id, ready)
        if kind == "FI_DATA_FAILED":
            failed = parse(FiDataFailedNotification, payload, f"Setu {kind}")
            return mapping.normalize_fi_data_failed(source.id, failed)
        shown = repr(kind)[:60] if kind is not None else "no type"
        raise UnknownShapeError(f"not a Setu notification (type {shown})")
