"""Provider error answers, whatever their shape, turned into one clear per-name error.

The envelopes providers document: ``{"error": {"code", "message"}}`` and the older
``{"detail": "..."}``; ``{"errorCode", "errorMsg", "traceId"}``;
``{"errorCode": 404, "errorMessage"}``, ``{"success": false, "data"|"message": ...}``;
and what any of them may send instead: an empty body, an HTML error page, truncated
JSON. The HTTP status decides the gRPC code; the body only adds the provider's words.
"""

from __future__ import annotations

import email.utils
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from statusgate.core.errors import ApiError, Reason

_LIMIT = 300
_TITLE_RE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]+")


@dataclass(frozen=True, slots=True)
class Failure:
    """One failed attempt: the error to report if it is the last one, whether another
    attempt may help, and whether it says the provider is down (circuit breaker)."""

    error: ApiError
    retryable: bool
    provider_down: bool
    retry_after: float | None = None


def describe_body(body: bytes) -> tuple[str, str]:
    """(provider error code, message) of an answer body; either may be empty."""
    text = body.decode("utf-8", "replace").strip()
    if not text:
        return "", "an empty body"
    try:
        data = json.loads(text)
    except ValueError:
        if text[:200].lower().lstrip().startswith(("<!doctype html", "<html")) or (
            "<body" in text[:2000].lower()
        ):
            match = _TITLE_RE.search(text)
            title = _clean(match.group(1)) if match else ""
            return "", f"an HTML page titled {title!r}" if title else "an HTML page"
        return "", f"a body that is not JSON: {_clean(text)!r}"
    return describe_json(data)


def describe_json(data: Any) -> tuple[str, str]:
    if not isinstance(data, dict):
        return "", _clean(json.dumps(data))
    error = data.get("error")
    if isinstance(error, dict):  # {"error": {"code", "message"}}
        return _text(error.get("code")), _text(error.get("message"))
    code = _text(data.get("errorCode") or data.get("code"))
    for key in ("errorMsg", "errorMessage", "message", "detail", "error", "data"):
        message = _text(data.get(key))
        if message:
            return code, message
    return code, "" if code else _clean(json.dumps(data))


def http_failure(status: int, body: bytes, retry_after: str | None, label: str) -> Failure:
    """The failure an HTTP error status (and its body) means."""
    code, message = describe_body(body)
    detail = f"{label} answered HTTP {status}" + (f" {code}" if code else "")
    detail += f": {message}" if message else ""
    if status in (401, 403):
        return Failure(
            ApiError(
                Reason.UPSTREAM_AUTH_FAILED,
                f"{detail} (the provider refused the gateway's API credentials)",
            ),
            retryable=False,
            provider_down=False,
        )
    if status in (404, 410):
        return _final(Reason.UPSTREAM_NOT_FOUND, detail)
    if status == 429:
        return Failure(
            ApiError(Reason.UPSTREAM_RATE_LIMITED, detail),
            retryable=True,
            provider_down=False,
            retry_after=parse_retry_after(retry_after),
        )
    if status == 408 or status >= 500:
        return Failure(
            ApiError(Reason.UPSTREAM_UNAVAILABLE, detail),
            retryable=True,
            provider_down=True,
            retry_after=parse_retry_after(retry_after),
        )
    if status in (400, 422):
        return _final(Reason.UPSTREAM_BAD_REQUEST, detail)
    return _final(Reason.UPSTREAM_REJECTED, detail)


def bad_response(label: str, status: int, body: bytes) -> Failure:
    """A success status with a body that is not JSON: a proxy's page, a cut-off answer.
    Retrying rarely helps, but it does say the provider is not working."""
    _, described = describe_body(body)
    return Failure(
        ApiError(
            Reason.UPSTREAM_BAD_RESPONSE,
            f"{label} answered HTTP {status} with {described} instead of JSON",
        ),
        retryable=False,
        provider_down=True,
    )


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After as seconds: delta-seconds or an HTTP date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _final(reason: Reason, message: str) -> Failure:
    return Failure(ApiError(reason, message), retryable=False, provider_down=False)


def _text(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return ""
    if isinstance(value, int | float | str):
        return _clean(str(value))
    return ""


def _clean(text: str) -> str:
    text = _CONTROL_RE.sub(" ", text).strip()
    return text if len(text) <= _LIMIT else text[: _LIMIT - 3] + "..."
