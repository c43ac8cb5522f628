"""The table of upstream failure cases every provider client runs (the error envelopes
the providers document, and what any HTTP API may do instead).

``program(harness)`` makes every endpoint of the poll behave the case's way; the client
must then end with ``code`` / ``reason`` (None: the poll succeeds), having called each
endpoint ``calls`` times (``"all"``: 1 + the configured retries; ``"all+"``: at least
that many, for dropped connections, which aiohttp itself repeats once).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import grpc

from statusgate.core.errors import Reason
from tests.fakes.harness import Harness
from tests.fakes.server import (
    drop,
    empty,
    hang,
    html_page,
    rate_limited,
    raw,
    reply,
    truncated_json,
)

# Each endpoint of a poll gets the behaviour: the fakes' endpoints differ per provider.


def _always(make: Callable[[Harness], Any]) -> Callable[[Harness], None]:
    def program(h: Harness) -> None:
        for endpoint in h.endpoints:
            h.fake.always(endpoint, make(h))

    return program


def _once(make: Callable[[Harness], Any]) -> Callable[[Harness], None]:
    def program(h: Harness) -> None:
        for endpoint in h.endpoints:
            h.fake.script(endpoint, make(h))

    return program


def _unmappable(h: Harness) -> Any:
    body: Any = {"unexpected": True}
    if h.provider == "banqware":
        body = {"success": True, "data": {"unexpected": True}}
    return reply(200, body)


@dataclass(frozen=True)
class Case:
    id: str
    program: Callable[[Harness], None]
    code: grpc.StatusCode | None
    reason: str | None
    calls: int | str
    # Words the error message must contain (the provider's own, where it gave some).
    says: tuple[str, ...] = ()
    # The client's own options for this case (e.g. a short per-call timeout).
    api: dict[str, Any] = field(default_factory=dict)
    # The caller's deadline in seconds.
    deadline: float = 10.0
    # At least this long was waited before a retry (Retry-After honoured).
    waited: float = 0.0


UNAVAILABLE = grpc.StatusCode.UNAVAILABLE

CASES = [
    Case(
        "server_error",
        _always(lambda h: reply(500, h.envelope(500, "InternalServerError", "it broke"))),
        UNAVAILABLE,
        Reason.UPSTREAM_UNAVAILABLE,
        "all",
        ("HTTP 500", "it broke"),
    ),
    Case(
        "bad_gateway_once",
        _once(lambda h: reply(502, h.envelope(502, "BadGateway", "retry"))),
        None,
        None,
        2,
    ),
    Case(
        "rate_limited_once",
        _once(lambda h: rate_limited("1")),
        None,
        None,
        2,
        waited=1.0,
    ),
    Case(
        "rate_limited_past_deadline",
        _always(lambda h: rate_limited("3600")),
        UNAVAILABLE,
        Reason.UPSTREAM_RATE_LIMITED,
        1,
        ("HTTP 429", "no time left"),
    ),
    Case(
        "html_error_page",
        _always(lambda h: html_page(503)),
        UNAVAILABLE,
        Reason.UPSTREAM_UNAVAILABLE,
        "all",
        ("HTTP 503", "HTML page", "502 Bad Gateway"),
    ),
    Case(
        "html_page_with_200",
        _always(lambda h: html_page(200)),
        UNAVAILABLE,
        Reason.UPSTREAM_BAD_RESPONSE,
        1,
        ("HTML page",),
    ),
    Case(
        "truncated_json",
        _always(lambda h: truncated_json()),
        UNAVAILABLE,
        Reason.UPSTREAM_BAD_RESPONSE,
        1,
        ("not JSON",),
    ),
    Case(
        "empty_body_with_200",
        _always(lambda h: raw(200, b"", "application/json")),
        UNAVAILABLE,
        Reason.UPSTREAM_BAD_RESPONSE,
        1,
        ("empty body",),
    ),
    Case(
        "empty_body_with_500",
        _always(lambda h: empty(500)),
        UNAVAILABLE,
        Reason.UPSTREAM_UNAVAILABLE,
        "all",
        ("HTTP 500", "empty body"),
    ),
    Case(
        "dropped_connection",
        _always(lambda h: drop()),
        UNAVAILABLE,
        Reason.UPSTREAM_UNAVAILABLE,
        "all+",
        ("connection failed",),
    ),
    Case(
        "hang_past_call_timeout",
        _always(lambda h: hang()),
        UNAVAILABLE,
        Reason.UPSTREAM_TIMEOUT,
        "all",
        ("no answer within",),
        api={"timeout_seconds": 0.2},
    ),
    Case(
        "hang_past_caller_deadline",
        _always(lambda h: hang()),
        grpc.StatusCode.DEADLINE_EXCEEDED,
        Reason.DEADLINE_EXCEEDED,
        1,
        ("deadline",),
        deadline=0.5,
    ),
    Case(
        "not_found",
        _always(lambda h: reply(404, h.envelope(404, "NotFound", "no such subject"))),
        grpc.StatusCode.NOT_FOUND,
        Reason.UPSTREAM_NOT_FOUND,
        1,
        ("HTTP 404", "no such subject"),
    ),
    Case(
        "gone",
        _always(lambda h: reply(410, h.envelope(410, "SESSION_DELETED", "deleted"))),
        grpc.StatusCode.NOT_FOUND,
        Reason.UPSTREAM_NOT_FOUND,
        1,
        ("HTTP 410", "deleted"),
    ),
    Case(
        "unauthorized",
        _always(lambda h: reply(401, {"detail": "Authentication credentials were not provided."})),
        grpc.StatusCode.PERMISSION_DENIED,
        Reason.UPSTREAM_AUTH_FAILED,
        1,
        ("HTTP 401", "credentials"),
    ),
    Case(
        "forbidden",
        _always(lambda h: reply(403, h.envelope(403, "ACCESS_DENIED", "not yours"))),
        grpc.StatusCode.PERMISSION_DENIED,
        Reason.UPSTREAM_AUTH_FAILED,
        1,
        ("HTTP 403", "not yours"),
    ),
    Case(
        "bad_request",
        _always(lambda h: reply(400, h.envelope(400, "InvalidRequest", "bad id"))),
        grpc.StatusCode.INVALID_ARGUMENT,
        Reason.UPSTREAM_BAD_REQUEST,
        1,
        ("HTTP 400", "bad id"),
    ),
    Case(
        "unmappable_answer",
        _always(_unmappable),
        grpc.StatusCode.INTERNAL,
        Reason.UPSTREAM_ANSWER_INVALID,
        1,
        ("could not be mapped",),
    ),
]
