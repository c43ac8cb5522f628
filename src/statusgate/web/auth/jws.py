"""Detached JWS (RFC 7515 appendix F) with RS256, as Indian Account Aggregators sign
their notifications.

``x-jws-signature: <base64url(protected header)>..<base64url(signature)>``: the payload
part is empty because the payload is the HTTP body. The signing input is
``base64url(header) "." base64url(body)``, or, when the header says ``"b64": false``
(RFC 7797), ``base64url(header) "." body`` with the body unencoded.

Only the configured keys are ever used: header parameters that point at keys (``jku``,
``jwk``, ``x5u``, ``x5c``) are ignored, since trusting them would let the sender choose
the key that checks its own signature. The algorithm is fixed to RS256 for the same
reason (no ``none``, no HS256 keyed with the public key).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from statusgate.web.auth.base import (
    AuthenticationError,
    VerifiableRequest,
    VerifierBase,
    b64url_decode,
    b64url_encode,
)

ALGORITHM = "RS256"
MIN_KEY_BITS = 2048
# Header parameters we implement, so they may be listed in "crit" (RFC 7515 §4.1.11).
_UNDERSTOOD_CRITICAL = frozenset({"b64"})


def load_public_key(path: Path) -> RSAPublicKey:
    """An RSA public key from a PEM public key or X.509 certificate file. Raises
    ValueError with a message that names the file, never its contents."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        if b"-----BEGIN CERTIFICATE-----" in data:
            key: Any = x509.load_pem_x509_certificate(data).public_key()
        else:
            key = serialization.load_pem_public_key(data)
    except ValueError:
        if b"PRIVATE KEY" in data:
            raise ValueError(
                f"{path} holds a private key; configure the provider's public key"
            ) from None
        raise ValueError(f"{path} is not a PEM public key or certificate") from None
    if not isinstance(key, RSAPublicKey):
        raise ValueError(f"{path} holds a {type(key).__name__}; RS256 needs an RSA key")
    if key.key_size < MIN_KEY_BITS:
        raise ValueError(f"{path} holds a {key.key_size}-bit RSA key; at least 2048 needed")
    return key


class JwsVerifier(VerifierBase):
    method = "jws"
    needs_body = True

    def __init__(self, keys: Sequence[RSAPublicKey], header: str = "x-jws-signature") -> None:
        if not keys:
            raise ValueError("at least one key is needed")
        self._keys = tuple(keys)
        self._header = header

    def verify_headers(self, request: VerifiableRequest) -> None:
        """The header's form and its protected header; the signature needs the body."""
        self._parts(request)

    def verify(self, request: VerifiableRequest) -> None:
        encoded_header, protected, signature = self._parts(request)
        encode_payload = protected.get("b64", True)
        payload_bytes = b64url_encode(request.body) if encode_payload else request.body
        signing_input = encoded_header.encode("ascii") + b"." + payload_bytes
        for key in self._keys:
            try:
                key.verify(signature, signing_input, padding.PKCS1v15(), hashes.SHA256())
            except InvalidSignature:
                continue
            return
        raise AuthenticationError("JWS signature does not verify with any configured key")

    def _parts(self, request: VerifiableRequest) -> tuple[str, dict[str, Any], bytes]:
        value = request.single_header(self._header).strip()
        parts = value.split(".")
        if len(parts) != 3:
            raise AuthenticationError(
                f"header {self._header} is not a compact JWS (header..signature)"
            )
        encoded_header, payload, encoded_signature = parts
        if payload:
            # An attached payload would be a second copy of the body that might differ
            # from the one we store; only the detached form is accepted.
            raise AuthenticationError(f"header {self._header} is not a detached JWS")
        protected = _protected_header(encoded_header)
        try:
            signature = b64url_decode(encoded_signature)
        except ValueError:
            raise AuthenticationError("JWS signature is not base64url") from None
        return encoded_header, protected, signature


def _protected_header(encoded: str) -> dict[str, Any]:
    try:
        header = json.loads(b64url_decode(encoded))
    except (ValueError, UnicodeDecodeError):
        raise AuthenticationError("JWS protected header is not base64url JSON") from None
    if not isinstance(header, dict):
        raise AuthenticationError("JWS protected header is not a JSON object")
    alg = header.get("alg")
    if alg != ALGORITHM:
        # repr, shortened: the value is the sender's and ends up in a log line.
        raise AuthenticationError(f"JWS alg {repr(alg)[:32]} is not {ALGORITHM}")
    if "b64" in header and not isinstance(header["b64"], bool):
        raise AuthenticationError("JWS header parameter b64 is not a boolean")
    crit = header.get("crit")
    if crit is not None:
        if not isinstance(crit, list) or not crit or not all(isinstance(c, str) for c in crit):
            raise AuthenticationError("JWS header parameter crit is not a list of names")
        if set(crit) - _UNDERSTOOD_CRITICAL:
            raise AuthenticationError("JWS crit lists a header parameter we do not implement")
        if any(c not in header for c in crit):
            raise AuthenticationError("JWS crit lists a header parameter that is absent")
    return header
