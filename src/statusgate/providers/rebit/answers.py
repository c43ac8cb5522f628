"""Answers in the standard's shapes, signed with the FIU's key.

Success (mapped, a duplicate, or kept unmapped: the AA's delivery arrived and is kept):
200 ``{ver, timestamp, txnid, response: "OK"}``. Every refusal: ``{ver, timestamp,
txnid, errorCode, errorMsg}`` with the standard's code and HTTP status:

- 400, an invalid notification: the adapter's code (InvalidConsentStatus,
  InvalidSessionId...; NoSuchVersion is answered 404), else InvalidRequest;
- 401, the JWS signature does not verify (or is missing): SignatureDoesNotMatch (400);
- 401, any other check (the ``aa_api_key`` header...): Unauthorized (401);
- 404, a sub-path the AA does not post to: InvalidURI (404);
- 409, a txnid seen before with other content: IdempotencyError (409);
- 413, a body over the limit: InvalidRequest (413);
- 429 (the source's rate limit), 503 (the store): ServiceUnavailable (503, with the
  Retry-After of the gateway's answer);
- anything else: InternalError (500).

``txnid`` echoes the request's (empty when it had none, and when the request was
refused before its body was read: the front door never reads the body of a request it
can refuse on its headers alone, such as a wrong ``aa_api_key`` or a malformed
signature header), ``ver`` is the request's when it is supported (else the first
supported one), ``timestamp`` is now, in UTC with milliseconds. The body is signed as
it is sent: a detached JWS of it in ``x-jws-signature``. A source without a signing key
(only one without webhook authentication, on loopback) answers unsigned.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from statusgate.providers.common import utf8
from statusgate.providers.rebit.config import VERSION, RebitSource
from statusgate.providers.rebit.jws import Signer, load_signer
from statusgate.providers.rebit.tables import (
    CODE_STATUS,
    IDEMPOTENCY_ERROR,
    INTERNAL_ERROR,
    INVALID_REQUEST,
    INVALID_URI,
    SERVICE_UNAVAILABLE,
    SIGNATURE_DOES_NOT_MATCH,
    UNAUTHORIZED,
)
from statusgate.providers.spec import Acknowledgement, EncodedReply, WebhookReply

# Kept from the gateway's own answer (a 503 asks the AA to come back later).
_KEPT_HEADERS = ("Retry-After",)
_MESSAGE_LIMIT = 512

Clock = Callable[[], datetime]


def now_timestamp(clock: Clock | None = None) -> str:
    """The standard's timestamp: ISO 8601 in UTC with milliseconds."""
    moment = (clock or (lambda: datetime.now(UTC)))().astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class RebitAcknowledgement:
    def __init__(
        self, signer: Signer | None, versions: list[str], *, clock: Clock | None = None
    ) -> None:
        self._signer = signer
        self._versions = versions or [VERSION]
        self._clock = clock

    def encode(self, request_body: bytes | None, reply: WebhookReply) -> EncodedReply:
        ver, txnid = self._echoed(request_body)
        document: dict[str, Any] = {
            "ver": ver,
            "timestamp": now_timestamp(self._clock),
            "txnid": txnid,
        }
        if 200 <= reply.status < 300:
            status = 200
            document["response"] = "OK"
        else:
            code, status = _code(reply)
            document["errorCode"] = code
            document["errorMsg"] = _message(reply)
        body = json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json"}
        headers |= {k: v for k, v in reply.headers.items() if k in _KEPT_HEADERS}
        if self._signer is not None:
            headers["x-jws-signature"] = self._signer.sign(body)
        return EncodedReply(status, body, headers)

    def _echoed(self, request_body: bytes | None) -> tuple[str, str]:
        """The request's ``ver`` (when supported) and ``txnid``, read best-effort."""
        try:
            request = json.loads(request_body) if request_body else None
        except (ValueError, UnicodeDecodeError):
            request = None
        if not isinstance(request, dict):
            return self._versions[0], ""
        ver, txnid = request.get("ver"), request.get("txnid")
        ver = ver if isinstance(ver, str) and ver in self._versions else self._versions[0]
        # A txnid too long or not text is not echoed: the answer must stay small.
        txnid = utf8(txnid) if isinstance(txnid, str) and len(txnid) <= 128 else ""
        return ver, txnid


def _code(reply: WebhookReply) -> tuple[str, int]:
    """The standard's error code for a refusal, and the HTTP status it goes with."""
    match reply.status:
        case 400:
            code = reply.provider_code or INVALID_REQUEST
            return code, CODE_STATUS.get(code, 400)
        case 401 if reply.failed_check == "jws":
            return SIGNATURE_DOES_NOT_MATCH, 400
        case 401 | 403:
            return UNAUTHORIZED, 401
        case 404:
            return INVALID_URI, 404
        case 409:
            return IDEMPOTENCY_ERROR, 409
        case 429 | 503:
            return SERVICE_UNAVAILABLE, 503
        case status if 400 <= status < 500:
            return INVALID_REQUEST, status
        case _:
            return INTERNAL_ERROR, 500


def _message(reply: WebhookReply) -> str:
    error = reply.document.get("error")
    message = error.get("message") if isinstance(error, dict) else None
    text = str(message) if message else "refused"
    delivery_id = reply.document.get("delivery_id")
    if delivery_id:
        # So that the AA's support and ours can name the same kept delivery.
        text += f" (kept as delivery {delivery_id})"
    return text if len(text) <= _MESSAGE_LIMIT else text[: _MESSAGE_LIMIT - 3] + "..."


def acknowledgement(source: Any) -> Acknowledgement:
    """The answers of one ReBIT source, signed with its key (read now)."""
    assert isinstance(source, RebitSource)
    signer = load_signer(source.signing) if source.signing is not None else None
    return RebitAcknowledgement(signer, list(source.versions))
