"""What every webhook verifier shares: the request it sees, the errors it raises."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar, Protocol

from multidict import CIMultiDict, CIMultiDictProxy


class AuthenticationError(Exception):
    """The request is not authentic. ``reason`` says which check failed; it is safe to
    log: it never holds a secret or the body. ``method`` is the method that refused it
    (a member's own within ``all_of``); the front door fills it in when the verifier did
    not, and a provider may answer by it (a bad signature is not a missing API key)."""

    def __init__(self, reason: str, *, method: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.method = method


@dataclass(frozen=True, slots=True)
class VerifiableRequest:
    """The parts of an inbound webhook that authentication may look at.

    ``headers`` is case-insensitive (aiohttp's ``request.headers`` as is; a plain dict
    is wrapped). ``peer`` is the TCP peer address, not anything a header claims.
    """

    headers: Mapping[str, str] = field(repr=False)
    body: bytes = field(repr=False)
    peer: str | None = None
    _ci: CIMultiDictProxy[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        headers = self.headers
        if isinstance(headers, CIMultiDictProxy):
            ci = headers
        elif isinstance(headers, CIMultiDict):
            ci = CIMultiDictProxy(headers)
        else:
            ci = CIMultiDictProxy(CIMultiDict(headers))
        object.__setattr__(self, "_ci", ci)

    def header_values(self, name: str) -> list[str]:
        """Every value of header ``name``, in order (a header may be repeated)."""
        return self._ci.getall(name, [])

    def single_header(self, name: str) -> str:
        """The one value of a header that must appear exactly once.

        A repeated credential header is refused rather than guessed at: two values
        could otherwise be checked by one component and used by another."""
        values = self.header_values(name)
        if not values:
            raise AuthenticationError(f"missing header {name}")
        if len(values) > 1:
            raise AuthenticationError(f"header {name} appears {len(values)} times")
        return values[0]


class WebhookVerifier(Protocol):
    """Authenticates one source's webhooks. Both methods return when the request passes
    and raise ``AuthenticationError`` otherwise; they are cheap and do no I/O, so the
    front door calls them inline.

    ``verify_headers`` sees the request before its body is read (``body`` is empty)
    and checks everything that needs no body; when ``needs_body`` is False that is the
    whole decision, so a refused request never costs a body read. Otherwise ``verify``
    decides once the body is there."""

    @property
    def needs_body(self) -> bool: ...

    def verify_headers(self, request: VerifiableRequest) -> None: ...

    def verify(self, request: VerifiableRequest) -> None: ...


class VerifierBase:
    """Gives every verifier a repr that can never print a secret. By default a verifier
    needs only the headers and the peer: ``verify_headers`` is ``verify``."""

    method: ClassVar[str]
    needs_body: ClassVar[bool] = False

    def verify(self, request: VerifiableRequest) -> None:
        raise NotImplementedError

    def verify_headers(self, request: VerifiableRequest) -> None:
        self.verify(request)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} method={self.method}>"


def header_bytes(value: str) -> bytes:
    # aiohttp decodes header bytes as UTF-8 with surrogateescape; this is the inverse,
    # so the comparison sees exactly the bytes that came over the wire.
    return value.encode("utf-8", "surrogateescape")


def secret_equals(given: bytes, expected: bytes) -> bool:
    """Constant-time equality that also hides the expected length: compare_digest on
    the raw values returns early when lengths differ, which would tell an attacker how
    long the secret is. Both sides are hashed to a fixed length first."""
    return hmac.compare_digest(hashlib.sha256(given).digest(), hashlib.sha256(expected).digest())


_B64URL_RE = re.compile(r"^[A-Za-z0-9_-]*={0,2}$")


def b64url_decode(value: str) -> bytes:
    """Strict base64url (RFC 4648 §5), padding optional: anything outside the alphabet
    is an error rather than silently skipped, as the lenient stdlib decoder would."""
    if not _B64URL_RE.match(value):
        raise ValueError("not base64url")
    stripped = value.rstrip("=")
    if len(stripped) % 4 == 1:
        raise ValueError("not base64url")
    try:
        return base64.urlsafe_b64decode(stripped + "=" * (-len(stripped) % 4))
    except binascii.Error as exc:
        raise ValueError("not base64url") from exc


def b64url_encode(value: bytes) -> bytes:
    return base64.urlsafe_b64encode(value).rstrip(b"=")


def b64_decode(value: str) -> bytes:
    """Strict standard base64 (RFC 4648 §4) with padding."""
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("not base64") from exc
