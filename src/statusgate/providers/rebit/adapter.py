"""The ReBIT (Sahamati) Account Aggregator notification adapter: what every Indian AA
(Finvu, OneMoney, CAMS Finserv, NADL, Anumati, Saafe, Setu...) posts to an FIU under
the FIU callback API 2.0.0.

Subjects: the consent ``sources/{s}/consents/{consentHandle}`` (stage CONSENT), the data
session ``sources/{s}/data-sessions/{sessionId}`` (stage DATA_FETCH, final stage
DATA_FETCH) and its FIP accounts ``.../data-sessions/{sessionId}/accounts/
{linkRefNumber}`` (stage DATA_FETCH). The tables are in ``tables.py``, the mapping in
``mapping.py``, the poll answers' in ``poll_mapping.py``, the shapes in ``payloads.py``.

A body is a ReBIT message when it has any of ``ver``, ``timestamp``, ``txnid``,
``Notifier``, ``ConsentStatusNotification``, ``FIStatusNotification``; other JSON is
UnknownShapeError (kept *unmapped*). A message is then held to the standard, and every
refusal is InvalidPayloadError with the standard's error code (``code``), checked in
this order:

1. ``ver`` missing: InvalidRequest; not one of the source's ``versions``: NoSuchVersion
   (answered 404): a message of another version cannot be judged by this one's rules.
2. Exactly one of ``ConsentStatusNotification`` / ``FIStatusNotification``; the keys the
   standard requires, of the right types (InvalidRequest, but a missing or mistyped
   ``consentId``: InvalidConsentId, ``consentStatus``: InvalidConsentStatus,
   ``sessionId``: InvalidSessionId, ``sessionStatus``: InvalidSessionStatus,
   ``FIStatus``: InvalidFIStatus; ``Notifier``: InvalidNotifier for a consent
   notification, InvalidRequest for an FI one, whose codes have no InvalidNotifier).
3. ``txnid`` must be a UUID and ``timestamp`` a date-time (InvalidRequest).
4. ``Notifier.type`` must be ``AA`` and, when the source names its ``aa_id``,
   ``Notifier.id`` must be it (InvalidNotifier / InvalidRequest as above).
5. Status words: ``consentStatus`` (InvalidConsentStatus), ``sessionStatus``
   (InvalidSessionStatus), ``FIStatus`` (InvalidFIStatus).

What depends on where and when a notification arrived is the front door's
(``screen.py``): the sub-path must be the notification's own, the ``timestamp``
within the source's tolerance of our clock; and a ``txnid`` seen before is a duplicate
or a conflict (``idempotency_key``). Replays judge the body alone.

Decisions, where the standard leaves room:

1. **Consents are named by ``consentHandle``**, the id the FIU has from the moment it
   asks for a consent; ``consentId`` (which exists only once the customer approved) is
   the attribute ``consent_id``. A notification without a handle cannot name its
   subject: InvalidRequest. An empty ``consentId`` counts as none.
2. Consents carry ``occurred_at`` = ``timestamp``, so ACTIVE -> PAUSED -> ACTIVE works at
   equal rank; states as named (PENDING, ACTIVE, PAUSED, REVOKED, REJECTED, EXPIRED).
3. Data session: ACTIVE -> IN_PROGRESS, COMPLETED, EXPIRED, FAILED, all but ACTIVE
   terminal. ``ready_to_fetch`` as soon as any account is READY (even while ACTIVE);
   ``progress`` = (accounts no longer PENDING, accounts listed).
4. FIP accounts: PENDING -> IN_PROGRESS, READY -> COMPLETED (ready_to_fetch),
   DELIVERED -> COMPLETED, **not** ready_to_fetch (the FIU fetched it; an AA need not
   keep it after that), DENIED -> REJECTED (PROVIDER_DENIED), TIMEOUT -> FAILED
   (TIMEOUT, retryable). ``description`` becomes the error message and an attribute,
   ``fipID`` the attribute ``fip_id``. Accounts carry no ``occurred_at`` and are
   emitted before their session.
5. Attributes read best-effort (``description``, ids as text) are capped; status words
   match in any case.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, ClassVar

from pydantic import ValidationError

from statusgate.config import SourceConfig
from statusgate.providers.base import InvalidPayloadError, JSONObject, UnknownShapeError
from statusgate.providers.common import parse_provider_time
from statusgate.providers.rebit import mapping
from statusgate.providers.rebit.config import RebitSource
from statusgate.providers.rebit.mapping import refused
from statusgate.providers.rebit.payloads import ConsentNotification, FiNotification, Message
from statusgate.providers.rebit.tables import (
    INVALID_CONSENT_ID,
    INVALID_CONSENT_STATUS,
    INVALID_FI_STATUS,
    INVALID_NOTIFIER,
    INVALID_REQUEST,
    INVALID_SESSION_ID,
    INVALID_SESSION_STATUS,
    NO_SUCH_VERSION,
)
from statusgate.v1.status_pb2 import Provider, Status

__all__ = ["CONSENT", "FI", "PATHS", "RebitAdapter", "is_uuid", "kind_of"]

# The two notifications, by the key that holds each, and the sub-path each is posted to.
CONSENT = "ConsentStatusNotification"
FI = "FIStatusNotification"
PATHS = {CONSENT: "Consent/Notification", FI: "FI/Notification"}
_LABELS = {CONSENT: "ReBIT consent notification", FI: "ReBIT FI notification"}
_MESSAGE_KEYS = ("ver", "timestamp", "txnid", "Notifier", CONSENT, FI)
# The canonical form (8-4-4-4-12 hex digits), as the standard's examples have it.
_UUID = re.compile(r"^[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}\Z")


def is_message(payload: JSONObject) -> bool:
    return any(key in payload for key in _MESSAGE_KEYS)


def is_uuid(text: str) -> bool:
    return _UUID.match(text) is not None


def kind_of(payload: JSONObject) -> str | None:
    """CONSENT or FI for a body that holds exactly one of the two notifications."""
    kinds = [key for key in (CONSENT, FI) if key in payload]
    return kinds[0] if len(kinds) == 1 else None


class RebitAdapter:
    provider: ClassVar[Provider.ValueType] = Provider.PROVIDER_REBIT

    def normalize(
        self, source: SourceConfig, payload: JSONObject, *, path: str = ""
    ) -> list[Status]:
        if not isinstance(payload, dict) or not is_message(payload):
            raise UnknownShapeError("not a ReBIT message (no ver, txnid or notification)")
        versions = source.versions if isinstance(source, RebitSource) else ["2.0.0"]
        aa_id = source.aa_id if isinstance(source, RebitSource) else None
        ver = payload.get("ver")
        if not isinstance(ver, str):
            raise refused(INVALID_REQUEST, "ReBIT message", "ver is missing or not a string")
        if ver not in versions:
            raise refused(
                NO_SUCH_VERSION,
                "ReBIT message",
                f"ver {ver[:20]!r} is not supported; expected {' or '.join(versions)}",
            )
        kind = kind_of(payload)
        if kind is None:
            raise refused(
                INVALID_REQUEST,
                "ReBIT message",
                f"it must hold exactly one of {CONSENT} and {FI}",
            )
        label = _LABELS[kind]
        model = ConsentNotification if kind == CONSENT else FiNotification
        message = _parse(model, payload, label, kind)
        occurred_at = _checked_envelope(message, label, kind, aa_id)
        if isinstance(message, ConsentNotification):
            return mapping.normalize_consent(source.id, message, occurred_at)
        assert isinstance(message, FiNotification)
        return mapping.normalize_fi(source.id, message, occurred_at)


def _parse(
    model: type[ConsentNotification] | type[FiNotification],
    payload: JSONObject,
    label: str,
    kind: str,
) -> Message:
    try:
        return model.model_validate(payload)
    except ValidationError as error:
        problem = InvalidPayloadError.from_validation(label, error)
        first = error.errors(include_url=False)[0]["loc"]
        raise InvalidPayloadError(str(problem), code=_code_at(first, kind)) from None


def _code_at(loc: tuple[Any, ...], kind: str) -> str:
    """The standard's error code for a problem at ``loc`` of a ``kind`` notification."""
    if loc[:1] == ("Notifier",):
        return INVALID_NOTIFIER if kind == CONSENT else INVALID_REQUEST
    if loc[:2] == (CONSENT, "consentId"):
        return INVALID_CONSENT_ID
    if loc[:2] == (CONSENT, "consentStatus"):
        return INVALID_CONSENT_STATUS
    if loc[:2] == (FI, "sessionId"):
        return INVALID_SESSION_ID
    if loc[:2] == (FI, "sessionStatus"):
        return INVALID_SESSION_STATUS
    if loc[:2] == (FI, "FIStatusResponse") and loc[-1:] == ("FIStatus",):
        return INVALID_FI_STATUS
    return INVALID_REQUEST


def _checked_envelope(message: Message, label: str, kind: str, aa_id: str | None) -> datetime:
    """Rules 3 and 4 of the module docstring; the message's time."""
    if not is_uuid(message.txnid):
        raise refused(INVALID_REQUEST, label, "txnid is not a UUID")
    occurred_at = parse_provider_time(message.timestamp)
    if occurred_at is None:
        raise refused(INVALID_REQUEST, label, "timestamp is not an ISO 8601 date-time")
    notifier_code = INVALID_NOTIFIER if kind == CONSENT else INVALID_REQUEST
    if message.notifier.type != "AA":
        shown = message.notifier.type[:20]
        raise refused(notifier_code, label, f"Notifier.type is {shown!r}, not 'AA'")
    if aa_id is not None and message.notifier.id != aa_id:
        raise refused(notifier_code, label, f"Notifier.id is not this source's AA ({aa_id!r})")
    return occurred_at
