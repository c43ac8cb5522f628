"""The verifiers without cryptography of their own: none, shared secret, basic, all_of."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from statusgate.web.auth.base import (
    AuthenticationError,
    VerifiableRequest,
    VerifierBase,
    WebhookVerifier,
    b64_decode,
    header_bytes,
    secret_equals,
)


class NoAuthVerifier(VerifierBase):
    """Accepts everything; the config allows it only on a loopback listener."""

    method = "none"

    def verify(self, request: VerifiableRequest) -> None:
        return None


class SharedSecretVerifier(VerifierBase):
    """A header whose value is a secret both sides know (``x-secret-key``, say)."""

    method = "shared_secret"

    def __init__(self, header: str, secret: bytes) -> None:
        self._header = header
        self._secret = secret

    def verify(self, request: VerifiableRequest) -> None:
        value = request.single_header(self._header)
        if not secret_equals(header_bytes(value), self._secret):
            raise AuthenticationError(f"header {self._header} does not match the secret")


class BasicAuthVerifier(VerifierBase):
    """HTTP basic authentication (RFC 7617)."""

    method = "basic"

    def __init__(self, username: bytes, password: bytes) -> None:
        self._username = username
        self._password = password

    def verify(self, request: VerifiableRequest) -> None:
        value = request.single_header("authorization")
        scheme, _, token = value.strip().partition(" ")
        if scheme.lower() != "basic":
            raise AuthenticationError("authorization header is not of the Basic scheme")
        try:
            credentials = b64_decode(token.strip())
        except ValueError:
            raise AuthenticationError("Basic credentials are not base64") from None
        username, colon, password = credentials.partition(b":")
        if not colon:
            raise AuthenticationError("Basic credentials have no ':' separator")
        # Both are compared every time (& not `and`), so the time taken does not tell
        # whether the username was right.
        if not (secret_equals(username, self._username) & secret_equals(password, self._password)):
            raise AuthenticationError("Basic credentials do not match")


class AllOfVerifier(VerifierBase):
    """Every member must accept, e.g. an IP allowlist and a shared secret."""

    method = "all_of"

    def __init__(self, verifiers: Sequence[WebhookVerifier]) -> None:
        self._verifiers = tuple(verifiers)

    @property
    def needs_body(self) -> bool:  # type: ignore[override]
        return any(verifier.needs_body for verifier in self._verifiers)

    def verify_headers(self, request: VerifiableRequest) -> None:
        # In the configured order, so cheap checks listed first reject early. Members
        # that need no body decide here, before the body is read.
        for verifier in self._verifiers:
            _as_member(verifier, verifier.verify_headers, request)

    def verify(self, request: VerifiableRequest) -> None:
        for verifier in self._verifiers:
            _as_member(verifier, verifier.verify, request)


def _as_member(
    verifier: WebhookVerifier,
    check: Callable[[VerifiableRequest], None],
    request: VerifiableRequest,
) -> None:
    """``check``, whose refusal names the member's method (the first that failed)."""
    try:
        check(request)
    except AuthenticationError as error:
        error.method = error.method or getattr(verifier, "method", "")
        raise
