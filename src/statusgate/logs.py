"""Structured JSON logs that never carry a secret or a full account number.

Every line is one JSON object. ``request_id`` comes from a context variable that the
front door sets to the delivery id of the webhook being handled, so the lines about its
events carry the same id as the line that received it. Redaction happens in a filter on
the root handler, so it holds for every logger, third-party ones included.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
import threading
from datetime import UTC, datetime
from typing import Any

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")

# Bank account numbers are 9-18 digits (India) and IBANs start with two letters and two
# check digits; anything that long is masked down to its last four characters.
_ACCOUNT_NUMBER = re.compile(r"(?<![\w])([A-Z]{2}\d{2}[A-Z0-9]{5,30}|\d{9,18})(?![\w])")
_MIN_SECRET_LENGTH = 4

_secrets: set[str] = set()
_secrets_lock = threading.Lock()
_secrets_pattern: re.Pattern[str] | None = None


def register_secret(value: str) -> None:
    """Never print ``value``: every log line containing it shows ``[secret]`` instead."""
    global _secrets_pattern
    if len(value) < _MIN_SECRET_LENGTH:
        return
    with _secrets_lock:
        _secrets.add(value)
        alternatives = sorted(_secrets, key=len, reverse=True)
        _secrets_pattern = re.compile("|".join(re.escape(s) for s in alternatives))


def redact(text: str) -> str:
    pattern = _secrets_pattern
    if pattern is not None:
        text = pattern.sub("[secret]", text)
    return _ACCOUNT_NUMBER.sub(lambda m: "X" * (len(m.group(1)) - 4) + m.group(1)[-4:], text)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id, extras."""

    _STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
        "message",
        "asctime",
    }

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        current = request_id.get()
        if current:
            line["request_id"] = current
        fields = vars(record)
        # A set difference runs in C: this is on the path of every webhook.
        for key in sorted(fields.keys() - self._STANDARD):
            if not key.startswith("_"):
                value = fields[key]
                line[key] = value if isinstance(value, int | float | bool) else str(value)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return redact(json.dumps(line, ensure_ascii=False, default=str))


def configure_logging(level: str = "INFO", *, json_lines: bool = True) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if json_lines:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(_RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


class _RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))
