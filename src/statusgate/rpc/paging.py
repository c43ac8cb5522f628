"""Opaque page tokens (AIP-158).

A token carries where the next page starts and a fingerprint of the request it belongs
to, so a token reused with a different filter is refused instead of silently skipping
or repeating results.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from google.protobuf.message import Message

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000


class InvalidPageTokenError(ValueError):
    pass


def page_size(requested: int) -> int:
    if requested < 0:
        raise ValueError("page_size must not be negative")
    return min(requested or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


def fingerprint(request: Message) -> str:
    """Hash of the request without its paging fields."""
    copy = type(request)()
    copy.CopyFrom(request)
    for field in ("page_token", "page_size"):
        copy.ClearField(field)
    return hashlib.sha256(copy.SerializeToString(deterministic=True)).hexdigest()[:16]


def encode(request: Message, position: Any) -> str:
    raw = json.dumps({"p": position, "f": fingerprint(request)}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode(request: Message, token: str) -> Any:
    """The position a token points at; None for an empty token."""
    if not token:
        return None
    try:
        padded = token + "=" * (-len(token) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded))
        position, print_ = data["p"], data["f"]
    except (ValueError, KeyError, TypeError) as error:
        raise InvalidPageTokenError("page_token is not one this server issued") from error
    if print_ != fingerprint(request):
        raise InvalidPageTokenError("page_token belongs to a request with other parameters")
    return position
