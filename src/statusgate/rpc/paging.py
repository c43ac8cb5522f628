"""Opaque page tokens (AIP-158).

A token carries where the next page starts and a fingerprint of the request it belongs
to, so a token reused with a different filter is refused instead of silently skipping
or repeating results. A bad page size or token is the client's INVALID_ARGUMENT.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import TypeVar

from google.protobuf.message import Message

from statusgate.core.errors import ApiError, Reason

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
# Tokens this server issues are far shorter; anything longer is not one of them.
MAX_TOKEN_LENGTH = 2048
# Positions a store can take: a signed 64-bit sequence, a name of valid UTF-8.
_MAX_SEQUENCE = 2**63 - 1
# A page starts after a name (ListStatuses) or a sequence (ListStatusEvents).
Position = TypeVar("Position", str, int)


def page_size(requested: int) -> int:
    if requested < 0:
        raise ApiError(Reason.INVALID_ARGUMENT, "page_size must not be negative")
    return min(requested or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


def fingerprint(request: Message) -> str:
    """Hash of the request without its paging fields."""
    copy = type(request)()
    copy.CopyFrom(request)
    for field in ("page_token", "page_size"):
        copy.ClearField(field)
    return hashlib.sha256(copy.SerializeToString(deterministic=True)).hexdigest()[:16]


def encode(request: Message, position: str | int) -> str:
    raw = json.dumps({"p": position, "f": fingerprint(request)}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode(request: Message, token: str, start: Position) -> Position:
    """The position a token points at; ``start`` for an empty token."""
    if not token:
        return start
    if len(token) > MAX_TOKEN_LENGTH:
        raise _invalid("page_token is not one this server issued")
    try:
        padded = token + "=" * (-len(token) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        position, print_ = data["p"], data["f"]
    except (ValueError, KeyError, TypeError, IndexError, RecursionError):
        # ValueError covers bad base64, bad JSON, UnicodeError and non-ASCII input.
        raise _invalid("page_token is not one this server issued") from None
    if print_ != fingerprint(request):
        raise _invalid("page_token belongs to a request with other parameters")
    # Requests of two RPCs can serialize alike (a name in field 1), so the fingerprint
    # alone does not tell a ListStatuses token from a ListStatusEvents one.
    if type(position) is not type(start):
        raise _invalid("page_token belongs to another kind of request")
    # A token is only hashed, not signed, so its position is checked like any input.
    if isinstance(position, int) and not 0 <= position <= _MAX_SEQUENCE:
        raise _invalid("page_token is not one this server issued")
    if isinstance(position, str) and not _storable(position):
        raise _invalid("page_token is not one this server issued")
    found: Position = position
    return found


def _storable(text: str) -> bool:
    if len(text) > MAX_TOKEN_LENGTH:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate
        return False
    return "\x00" not in text


def _invalid(message: str) -> ApiError:
    return ApiError(Reason.INVALID_ARGUMENT, message)
