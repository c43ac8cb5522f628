"""Realistic notifications of an AA, built and signed the way an AA sends them: for
``statusgate simulate`` scenarios, examples and tests.

``consent_notification`` and ``fi_notification`` build the bodies of the FIU callback
API 2.0.0 (fresh ``txnid`` and ``timestamp`` unless given); ``signed`` turns one into
what to post: the sub-path under ``/webhooks/{source}``, the exact body bytes and the
headers (the AA's detached JWS in ``x-jws-signature``, and ``aa_api_key`` /
``x-request-meta`` when given). A source whose ``jws`` authentication lists the
matching public key accepts it.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from statusgate.providers.rebit.adapter import CONSENT, PATHS, kind_of
from statusgate.providers.rebit.answers import now_timestamp
from statusgate.providers.rebit.config import VERSION
from statusgate.providers.rebit.jws import Signer


@dataclass(frozen=True, slots=True)
class FipAccount:
    """One account of ``FIStatusResponse``: its FIP, link reference and FIStatus."""

    fip_id: str
    link_ref_number: str
    fi_status: str
    description: str = ""


@dataclass(frozen=True, slots=True)
class SignedNotification:
    path: str
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def message(self) -> dict[str, Any]:
        decoded: dict[str, Any] = json.loads(self.body)
        return decoded


def _envelope(
    aa_id: str, txnid: str | None, timestamp: datetime | str | None, ver: str
) -> dict[str, Any]:
    if isinstance(timestamp, datetime):
        moment = timestamp
        when = now_timestamp(lambda: moment)
    else:
        when = timestamp or now_timestamp()
    return {
        "ver": ver,
        "timestamp": when,
        "txnid": txnid or str(uuid.uuid4()),
        "Notifier": {"type": "AA", "id": aa_id},
    }


def consent_notification(
    consent_handle: str,
    consent_status: str,
    *,
    consent_id: str | None = None,
    aa_id: str = "AA-1",
    txnid: str | None = None,
    timestamp: datetime | str | None = None,
    ver: str = VERSION,
) -> dict[str, Any]:
    """A ``POST /Consent/Notification`` body."""
    notification: dict[str, Any] = {
        "consentHandle": consent_handle,
        "consentStatus": consent_status,
    }
    if consent_id is not None:
        notification["consentId"] = consent_id
    return {**_envelope(aa_id, txnid, timestamp, ver), CONSENT: notification}


def fi_notification(
    session_id: str,
    session_status: str,
    accounts: Iterable[FipAccount],
    *,
    aa_id: str = "AA-1",
    txnid: str | None = None,
    timestamp: datetime | str | None = None,
    ver: str = VERSION,
) -> dict[str, Any]:
    """A ``POST /FI/Notification`` body; accounts are grouped by FIP, in order."""
    by_fip: dict[str, list[dict[str, str]]] = {}
    for account in accounts:
        by_fip.setdefault(account.fip_id, []).append(
            {
                "linkRefNumber": account.link_ref_number,
                "FIStatus": account.fi_status,
                "description": account.description,
            }
        )
    return {
        **_envelope(aa_id, txnid, timestamp, ver),
        "FIStatusNotification": {
            "sessionId": session_id,
            "sessionStatus": session_status,
            "FIStatusResponse": [
                {"fipID": fip, "Accounts": listed} for fip, listed in by_fip.items()
            ],
        },
    }


def signed(
    message: Mapping[str, Any],
    key: RSAPrivateKey | Signer,
    *,
    key_id: str = "aa-key-1",
    unencoded: bool = True,
    api_key: str | None = None,
    recipient_id: str | None = None,
) -> SignedNotification:
    """``message`` as an AA posts it, signed with ``key`` (the AA's private key, or a
    ``Signer``): detached, over the body unencoded (RFC 7797) unless ``unencoded`` is
    False (the standard base64url form)."""
    kind = kind_of(dict(message))
    if kind is None:
        raise ValueError("not a consent or FI notification")
    body = json.dumps(message, separators=(",", ":")).encode()
    signer = key if isinstance(key, Signer) else Signer(key, key_id, unencoded=unencoded)
    headers = {"Content-Type": "application/json", "x-jws-signature": signer.sign(body)}
    if api_key is not None:
        headers["aa_api_key"] = api_key
    if recipient_id is not None:
        meta = json.dumps({"recipient-id": recipient_id}).encode()
        headers["x-request-meta"] = base64.b64encode(meta).decode()
    return SignedNotification(PATHS[kind], body, headers)
