"""Structured JSON logs that never carry a secret or a full account number.

Every line is one JSON object (or, with ``STATUSGATE_LOG_FORMAT=text``, the same
fields as ``key=value`` after the message). ``request_id`` comes from a context variable that the
front door sets to the delivery id of the webhook being handled, so the lines about its
events carry the same id as the line that received it. Redaction happens in the
formatter of the root handler, so it holds for every logger, third-party ones included;
``configure_logging`` also routes warnings and uncaught exceptions through it.

What is masked:

- every configured secret (``register_secret``), as written and in the forms an error
  line may print it: JSON- and repr-escaped, and base64 (standard and URL-safe, padded
  or not); the base64 of HTTP basic credentials (``register_basic_credentials``);
- any ``Basic``/``Bearer`` credential, configured or not;
- account numbers where a provider declares that a name segment carries one
  (``mask_account_segments``): ``sources/<source>/sessions/S/accounts/<number>`` keeps
  the last four characters. Nothing is guessed from digit runs, so ids such as
  ``grpcurl-1796145835-18531`` stay searchable.

aiohttp's own error lines about malformed requests are the client's doing: they are
logged at debug, without the exception text (which quotes the bytes received).
"""

from __future__ import annotations

import base64
import contextvars
import json
import logging
import re
import sys
import threading
from collections.abc import Iterable
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

import orjson

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")

_MIN_SECRET_LENGTH = 4
_CREDENTIAL = re.compile(r"(?i)\b(basic|bearer)(\s+|%20)[A-Za-z0-9+/=._~-]{4,}")
# sources/{source}/{collection}/{id}[/{collection}/{id}], ids up to a separator.
_NAME = re.compile(
    r"sources/([a-z0-9-]{1,63})/([a-z-]+)/([^/\s\"'\\,;:]+)(?:/([a-z-]+)/([^/\s\"'\\,;:]+))?"
)

_lock = threading.Lock()
_secrets: set[str] = set()
_secrets_pattern: re.Pattern[str] | None = None
_secrets_list: tuple[str, ...] = ()
# source -> (parent collection, child collection) pairs whose child ids are account
# numbers, and top-level collections whose ids are.
_account_segments: dict[str, frozenset[tuple[str, str]]] = {}


def _forms(value: str) -> set[str]:
    """``value`` as it may appear in a line: escaped by json or repr, or base64."""
    raw = value.encode("utf-8", "surrogatepass")
    forms = {value, json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1]}
    forms.add(repr(value)[1:-1])
    # A line holding a JSON-encoded line escapes twice.
    forms.add(json.dumps(json.dumps(value)[1:-1])[1:-1])
    for encoded in (base64.b64encode(raw), base64.urlsafe_b64encode(raw)):
        text = encoded.decode()
        forms.update({text, text.rstrip("=")})
    return {form for form in forms if len(form) >= _MIN_SECRET_LENGTH}


def register_secret(value: str) -> None:
    """Never print ``value``: every log line containing it (or its escaped or base64
    forms) shows ``[secret]`` instead."""
    if len(value) < _MIN_SECRET_LENGTH:
        return
    _add(_forms(value))


def register_basic_credentials(username: str, password: str) -> None:
    """The ``Authorization: Basic`` token of these credentials is a secret too."""
    register_secret(password)
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    _add({token, token.rstrip("=")})


def _add(forms: Iterable[str]) -> None:
    global _secrets_pattern, _secrets_list
    with _lock:
        _secrets.update(forms)
        alternatives = sorted(_secrets, key=len, reverse=True)
        _secrets_pattern = re.compile("|".join(re.escape(s) for s in alternatives))
        _secrets_list = tuple(alternatives)


def mask_account_segments(source: str, segments: Iterable[tuple[str, str]]) -> None:
    """The ids of ``(parent collection, collection)`` in ``source``'s names are account
    numbers (the provider says so): mask them in every line."""
    pairs = frozenset(segments)
    with _lock:
        if pairs:
            _account_segments[source] = pairs
        else:
            _account_segments.pop(source, None)


def mask_account_number(value: str) -> str:
    """An account number as the logs show it: its last four characters only."""
    return "X" * (len(value) - 4) + value[-4:] if len(value) > 4 else value


def _mask_name(match: re.Match[str]) -> str:
    source, top, top_id, child, child_id = match.groups()
    pairs = _account_segments.get(source)
    if not pairs or child is None or (top, child) not in pairs:
        return match.group(0)
    return f"sources/{source}/{top}/{top_id}/{child}/{mask_account_number(child_id)}"


def redact(text: str) -> str:
    """``text`` with every secret, credential and account-number id masked. It runs on
    every line, so each regex runs only where a cheap exact test (a substring search)
    says it could match."""
    pattern = _secrets_pattern
    if pattern is not None and any(secret in text for secret in _secrets_list):
        text = pattern.sub("[secret]", text)
    # (?i) also folds a few non-ASCII letters onto ASCII ones: only ASCII text may skip.
    if not text.isascii() or _may_hold_credential(text.lower()):
        text = _CREDENTIAL.sub(lambda m: f"{m.group(1)}{m.group(2)}[secret]", text)
    if _account_segments and "sources/" in text:
        text = _NAME.sub(_mask_name, text)
    return text


def _may_hold_credential(lowered: str) -> bool:
    return "basic" in lowered or "bearer" in lowered


_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
}


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    """What a line carries besides its time, level, logger and message: the request id
    of the webhook being handled, and every ``extra`` field (source, verdict, events...),
    in a stable order."""
    fields: dict[str, Any] = {}
    current = request_id.get()
    if current:
        fields["request_id"] = current
    attributes = vars(record)
    # A set difference runs in C: this is on the path of every webhook.
    for key in sorted(attributes.keys() - _STANDARD):
        if not key.startswith("_"):
            value = attributes[key]
            fields[key] = value if isinstance(value, int | float | bool) else str(value)
    return fields


def _time(record: logging.LogRecord) -> str:
    return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id, extras."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": _time(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            **_fields(record),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        try:
            text = orjson.dumps(line, default=str).decode()
        except (TypeError, orjson.JSONEncodeError):  # an int beyond 64 bits, a surrogate
            text = json.dumps(line, default=str)
        return redact(text)


class ClientErrorFilter(logging.Filter):
    """aiohttp logs a malformed request ("Error handling request", with the parser's
    exception, which quotes the bytes received) at error level. It is the client's
    doing: it becomes a debug line naming the exception class only."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.exc_info or record.exc_info[1] is None:
            return True
        error = record.exc_info[1]
        if not _client_caused(error):
            return True
        status = getattr(error, "code", "")
        record.msg = f"malformed request refused: {type(error).__name__} {status}".rstrip()
        record.args = ()
        record.exc_info = None
        record.exc_text = None
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return logging.getLogger().isEnabledFor(logging.DEBUG)


def _client_caused(error: BaseException) -> bool:
    names = {cls.__name__ for cls in type(error).__mro__}
    return bool(names & {"HttpProcessingError", "BadHttpMessage", "ConnectionError"})


_BARE = re.compile(r"^[^\s\"=]+$")


class TextFormatter(logging.Formatter):
    """For humans: ``time LEVEL logger: message key=value ...``, with every field the
    JSON lines have (values with spaces or quotes are quoted)."""

    def format(self, record: logging.LogRecord) -> str:
        line = f"{_time(record)} {record.levelname} {record.name}: {record.getMessage()}"
        for key, value in _fields(record).items():
            text = str(value).lower() if isinstance(value, bool) else str(value)
            line += f" {key}={text if _BARE.match(text) else json.dumps(text, ensure_ascii=False)}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return redact(line)


LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
LOG_FORMATS = ("json", "text")


def log_level(text: str) -> str:
    """A log level in any case (``debug``, ``INFO``...); ValueError, saying which are
    accepted, for anything else."""
    if text.strip().lower() not in LOG_LEVELS:
        raise ValueError(
            f"STATUSGATE_LOG_LEVEL={text!r} is not a log level: use one of "
            f"{', '.join(LOG_LEVELS)} (any case)"
        )
    return text.strip().upper()


def log_format(text: str) -> str:
    """``json`` or ``text``, in any case; ValueError for anything else."""
    if text.strip().lower() not in LOG_FORMATS:
        raise ValueError(
            f"STATUSGATE_LOG_FORMAT={text!r} is not a log format: use json (the default) "
            "or text (any case)"
        )
    return text.strip().lower()


def configure_logging(level: str = "INFO", *, json_lines: bool = True) -> None:
    """Every line to stderr, JSON or text, at ``level`` (any case of ``LOG_LEVELS``)."""
    # No line shows the caller's file and line, the thread or the process: do not let
    # every record look them up (the logging HOWTO's "Optimization").
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if json_lines else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(log_level(level))
    install_client_error_filter()
    # Warnings and uncaught exceptions are lines too: they go through the same masking.
    logging.captureWarnings(True)
    sys.excepthook = _log_uncaught
    threading.excepthook = lambda args: _log_uncaught(
        args.exc_type, args.exc_value or args.exc_type(), args.exc_traceback
    )


def install_client_error_filter() -> None:
    server = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, ClientErrorFilter) for f in server.filters):
        server.addFilter(ClientErrorFilter())


def _log_uncaught(
    kind: type[BaseException], error: BaseException, trace: TracebackType | None
) -> None:
    logging.getLogger("statusgate").critical("uncaught exception", exc_info=(kind, error, trace))


def mark_worker(index: int) -> None:
    """Every line of this process says which worker of a supervised gateway wrote it."""

    def stamp(record: logging.LogRecord) -> bool:
        record.worker = index
        return True

    for handler in logging.getLogger().handlers:
        handler.addFilter(stamp)
