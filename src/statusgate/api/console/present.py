"""How the console shows values to a person: enum names as words, times, ages, and raw
deliveries made safe to read.

A raw body is shown pretty-printed when it is JSON. Before it is shown, the values of
the keys its provider declares as account numbers (``ProviderSpec.account_number_fields``)
keep their last four characters, and then the whole text goes through the logs'
``redact``: configured secrets in every form, ``Basic``/``Bearer`` credentials, and the
account numbers in resource names. Headers and details get ``redact`` too. Escaping is
the templates' job (autoescape), never done here.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from google.protobuf.timestamp_pb2 import Timestamp

from statusgate.logs import mask_account_number, redact
from statusgate.v1 import admin_service_pb2 as admin_pb
from statusgate.v1 import status_pb2 as pb

# Bodies are at most max_body_bytes (1 MiB by default); past this a page shows the start.
MAX_SHOWN_CHARACTERS = 256 * 1024

# State and verdict words by badge colour; anything else is waiting.
_BAD = {"failed", "expired", "rejected", "revoked", "cancelled"}
_GOOD = {"completed", "active", "mapped"}
_WARN = {"unmapped"}


def words(enum_name: str, prefix: str) -> str:
    """``STATE_IN_PROGRESS`` -> ``in progress``."""
    return enum_name.removeprefix(prefix).lower().replace("_", " ")


def state(value: pb.State.ValueType) -> str:
    # No previous state: the event made the subject known.
    return words(pb.State.Name(value), "STATE_") if value else "new"


def stage(value: pb.Stage.ValueType) -> str:
    return words(pb.Stage.Name(value), "STAGE_") if value else ""


def kind(value: pb.Kind.ValueType) -> str:
    return words(pb.Kind.Name(value), "KIND_")


def origin(value: pb.Origin.ValueType) -> str:
    return words(pb.Origin.Name(value), "ORIGIN_")


def verdict(value: admin_pb.DeliveryVerdict.ValueType) -> str:
    return words(admin_pb.DeliveryVerdict.Name(value), "DELIVERY_VERDICT_")


def error_reason(value: pb.ErrorReason.ValueType) -> str:
    return words(pb.ErrorReason.Name(value), "ERROR_REASON_")


def tone(word: str) -> str:
    """The badge colour of a state or verdict word: good, bad, warn or wait (the
    colour is never the only signal: the badge says the word)."""
    if word in _BAD:
        return "bad"
    if word in _GOOD:
        return "good"
    return "warn" if word in _WARN else "wait"


def when(stamp: Timestamp | datetime | None) -> datetime | None:
    if stamp is None:
        return None
    if isinstance(stamp, datetime):
        return stamp
    if not stamp.seconds and not stamp.nanos:
        return None
    return stamp.ToDatetime(UTC)


def shown_time(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment is not None else ""


def iso_time(moment: datetime | None) -> str:
    return moment.isoformat(timespec="milliseconds") if moment is not None else ""


def duration(seconds: float) -> str:
    """``42 s``, ``5 min``, ``3 h 20 min``, ``2 d 4 h``."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def age(moment: datetime | None, now: datetime) -> str:
    return duration((now - moment).total_seconds()) if moment is not None else ""


def href(path: str) -> str:
    """A name or id as a URL path (its ``/`` kept; ``?``, ``#``, ``%``... encoded)."""
    return quote(path, safe="/:@!$&'()*+,;=-._~")


def redact_text(text: str) -> str:
    """Text from a delivery (its detail): secrets and account numbers masked."""
    return redact(text)


def shown_name(name: str) -> str:
    """A resource name as the logs print it (account-number segments masked)."""
    return redact(name)


@dataclass(frozen=True, slots=True)
class ShownBody:
    text: str
    # "json", "text" (not JSON), or "empty" (nothing kept: pruned by retention, or sent
    # empty).
    form: str
    truncated: bool = False


def shown_body(body: bytes, account_fields: Iterable[str]) -> ShownBody:
    if not body:
        return ShownBody("", "empty")
    fields = frozenset(account_fields)
    try:
        document = json.loads(body.decode(json.detect_encoding(body)))
    except (UnicodeDecodeError, ValueError, RecursionError):
        text, form = body.decode("utf-8", errors="replace"), "text"
    else:
        masked = _mask_fields(document, fields) if fields else document
        text, form = json.dumps(masked, indent=2, ensure_ascii=False), "json"
    truncated = len(text) > MAX_SHOWN_CHARACTERS
    return ShownBody(redact(text[:MAX_SHOWN_CHARACTERS]), form, truncated)


def _mask_fields(value: Any, fields: frozenset[str]) -> Any:
    if isinstance(value, dict):
        return {
            key: mask_account_number(str(item))
            if key in fields and isinstance(item, str | int) and not isinstance(item, bool)
            else _mask_fields(item, fields)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_mask_fields(item, fields) for item in value]
    return value


def shown_headers(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    return sorted((name.lower(), redact(value)) for name, value in headers)
