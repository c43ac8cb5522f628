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
    try:
        padded = token + "=" * (-len(token) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded))
        position, print_ = data["p"], data["f"]
    except (ValueError, KeyError, TypeError):
        raise _invalid("page_token is not one this server issued") from None
    if print_ != fingerprint(request):
        raise _invalid("page_token belongs to a request with other parameters")
    # Requests of two RPCs can serialize alike (a name in field 1), so the fingerprint
    # alone does not tell a ListStatuses token from a ListStatusEvents one.
    if type(position) is not type(start):
        raise _invalid("page_token belongs to another kind of request")
    found: Position = position
    return found


def _invalid(message: str) -> ApiError:
    return ApiError(Reason.INVALID_ARGUMENT, message)
