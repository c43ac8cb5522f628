"""HMAC-SHA256 signatures as the Standard Webhooks specification defines them.

https://www.standardwebhooks.com/: the sender signs ``{webhook-id}.{webhook-timestamp}.{body}``
with HMAC-SHA256 and sends ``webhook-signature: v1,<base64> [v1,<base64> ...]``. The
timestamp inside the signed content is what makes the replay window enforceable: an old
delivery cannot be re-sent with a fresh timestamp without breaking its signature.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Callable, Sequence

from statusgate.web.auth.base import (
    AuthenticationError,
    VerifiableRequest,
    VerifierBase,
    b64_decode,
    header_bytes,
)

WHSEC_PREFIX = "whsec_"
_TIMESTAMP_RE = re.compile(r"^[0-9]{1,15}$")
_SHA256_BYTES = 32


def decode_hmac_secret(secret: str) -> bytes:
    """Key bytes of a secret: ``whsec_<base64>`` is the spec's encoding; anything else
    is taken as the raw key. Raises ValueError (without the value) on bad base64."""
    if secret.startswith(WHSEC_PREFIX):
        key = b64_decode(secret.removeprefix(WHSEC_PREFIX))
        if not key:
            raise ValueError("the whsec_ secret holds an empty key")
        return key
    return secret.encode("utf-8")


class StandardWebhooksVerifier(VerifierBase):
    method = "hmac"
    needs_body = True

    def __init__(
        self,
        keys: Sequence[bytes],
        tolerance_seconds: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not keys:
            raise ValueError("at least one key is needed")
        self._keys = tuple(keys)
        self._tolerance = tolerance_seconds
        self._clock = clock

    def verify_headers(self, request: VerifiableRequest) -> None:
        """Everything but the signature itself: the headers, the replay window."""
        self._signed_prefix(request)

    def verify(self, request: VerifiableRequest) -> None:
        signed_prefix, signatures = self._signed_prefix(request)
        signed = signed_prefix + request.body
        matched = False
        # Every key against every signature: a sender mid-rotation may sign with the new
        # key only, the old only, or both; any pairing that matches is authentic.
        for key in self._keys:
            expected = hmac.new(key, signed, hashlib.sha256).digest()
            for signature in signatures:
                matched |= hmac.compare_digest(expected, signature)
        if not matched:
            raise AuthenticationError("no webhook-signature matches a configured secret")

    def _signed_prefix(self, request: VerifiableRequest) -> tuple[bytes, list[bytes]]:
        message_id = request.single_header("webhook-id")
        timestamp = request.single_header("webhook-timestamp")
        signature_header = request.single_header("webhook-signature")
        if not message_id:
            raise AuthenticationError("header webhook-id is empty")
        if not _TIMESTAMP_RE.match(timestamp):
            raise AuthenticationError("header webhook-timestamp is not unix seconds")
        # Replay protection: outside the window, even a valid signature is refused.
        skew = int(timestamp) - self._clock()
        if skew < -self._tolerance:
            raise AuthenticationError(
                f"webhook-timestamp is {-skew:.0f} s old (tolerance {self._tolerance} s)"
            )
        if skew > self._tolerance:
            raise AuthenticationError(
                f"webhook-timestamp is {skew:.0f} s in the future (tolerance {self._tolerance} s)"
            )

        signatures = _v1_signatures(signature_header)
        if not signatures:
            raise AuthenticationError("header webhook-signature holds no valid v1 signature")
        # The exact header text (not the parsed int) is what the sender signed.
        return header_bytes(f"{message_id}.{timestamp}."), signatures


def _v1_signatures(header: str) -> list[bytes]:
    """The decoded ``v1`` signatures; other versions (``v1a`` is asymmetric) and
    malformed entries are skipped, as the specification asks."""
    signatures = []
    for entry in header.split():
        version, comma, value = entry.partition(",")
        if version != "v1" or not comma:
            continue
        try:
            signature = b64_decode(value)
        except ValueError:
            continue
        if len(signature) == _SHA256_BYTES:
            signatures.append(signature)
    return signatures
