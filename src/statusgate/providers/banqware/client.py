"""banqware PSD2 Hub API client and the banqware poller.

banqware publishes neither its API host nor its auth header, and requires a client
certificate in production: base URL, extra headers (values from environment variables)
and the mTLS files are all configuration. How the status endpoints are told which
session is not documented either: it is a query parameter, ``sessionId`` unless
``api.session_id_param`` says otherwise.

A session is described by ``GET /api/session/status`` and
``GET /api/session/status/details``, called concurrently (see ``poll_mapping``); its
accounts through it. Payments have no documented status endpoint: polling one is
UNIMPLEMENTED, and their callbacks stay the only source.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

from pydantic import SecretStr

from statusgate.config import SetupProblems
from statusgate.core.errors import ApiError, Reason
from statusgate.core.names import ResourceName
from statusgate.providers.banqware.config import BanqwareApi, BanqwareSource
from statusgate.providers.banqware.poll_mapping import session_poll_updates
from statusgate.providers.polling import (
    HttpPoller,
    Poller,
    PollReport,
    UnconfiguredPoller,
    add_mapped,
    attempt,
    not_supported,
)
from statusgate.upstream.envelopes import describe_json, http_failure
from statusgate.upstream.http import CallScope, HttpClient, Sleep
from statusgate.v1.status_pb2 import Status


class BanqwareClient:
    def __init__(self, api: BanqwareApi, http: HttpClient, headers: dict[str, SecretStr]) -> None:
        assert api.base_url is not None
        self.http = http
        self._base = api.base_url
        self._param = api.session_id_param
        self._headers = headers

    async def session_status(self, session_id: str, scope: CallScope) -> Any:
        return await self._get(
            "/api/session/status", f"status of session {session_id}", session_id, scope
        )

    async def session_details(self, session_id: str, scope: CallScope) -> Any:
        return await self._get(
            "/api/session/status/details", f"details of session {session_id}", session_id, scope
        )

    async def _get(self, path: str, label: str, session_id: str, scope: CallScope) -> Any:
        described = f"banqware GET {label}"
        answer = await self.http.call(
            "GET",
            self._base + path,
            label=described,
            scope=scope,
            headers={name: value.get_secret_value() for name, value in self._headers.items()},
            params={self._param: session_id},
        )
        return unwrap(answer.body, answer.raw, described)


def unwrap(body: Any, raw: bytes, label: str) -> Any:
    """``data`` of ``{"success": true, "data": ...}``; an error envelope sent with a 2xx
    status is the error it describes (``errorCode`` as the HTTP status when it is one)."""
    if not isinstance(body, dict):
        return body
    code = body.get("errorCode")
    if isinstance(code, int) and not isinstance(code, bool) and 400 <= code <= 599:
        raise http_failure(code, raw, None, label).error
    if body.get("success") is False:
        _, message = describe_json(body)
        raise ApiError(
            Reason.UPSTREAM_REJECTED,
            f"{label} answered success=false" + (f": {message}" if message else ""),
        )
    if body.get("success") is True:
        return body.get("data")
    return body


class BanqwarePoller(HttpPoller):
    provider_label = "banqware"
    pollable = ("sessions",)
    client: BanqwareClient

    def __init__(self, source: BanqwareSource, client: BanqwareClient) -> None:
        super().__init__(source.id, client)
        self._config = source

    def target(self, name: ResourceName) -> ResourceName:
        if name.path[0][0] == "payments":
            raise not_supported(
                f"{name}: banqware documents no status endpoint for payments; their "
                "status comes from PIS callbacks only"
            )
        return super().target(name)

    async def poll(
        self, target: ResourceName, current: Status | None, scope: CallScope
    ) -> PollReport:
        session_id = target.path[0][1]
        (status, error), (details, details_error) = await asyncio.gather(
            attempt(self.client.session_status(session_id, scope)),
            attempt(self.client.session_details(session_id, scope)),
        )
        if error is not None:
            raise error
        answer = PollReport()
        if details_error is not None:
            answer.fail(details_error)
        add_mapped(
            answer,
            "banqware session status",
            lambda: session_poll_updates(self._config, session_id, status, details),
        )
        return answer


def ssl_context(api: BanqwareApi, found: SetupProblems) -> ssl.SSLContext | None:
    """The mTLS context, None when neither a client certificate nor a CA is set (or when
    a file is unusable: then ``found`` says why, located at the setting)."""
    if api.client_cert_file is None and api.ca_file is None:
        return None
    files = {
        "client_cert_file": api.client_cert_file,
        "client_key_file": api.client_key_file,
        "ca_file": api.ca_file,
    }
    readable = [found.readable(loc, path) for loc, path in files.items() if path is not None]
    if not all(readable):
        return None
    try:
        # With a CA file, only that CA is trusted (the system store is not loaded).
        context = ssl.create_default_context(cafile=api.ca_file)
    except (ssl.SSLError, OSError):
        found.add("ca_file", f"{api.ca_file} holds no PEM CA certificate")
        return None
    if api.client_cert_file is not None:
        try:
            # A password callback, so an encrypted key fails instead of prompting.
            context.load_cert_chain(api.client_cert_file, api.client_key_file, password=lambda: b"")
        except ssl.SSLError as exc:
            found.add(
                "client_cert_file",
                "not a usable PEM certificate and unencrypted private key "
                f"({exc.reason or 'invalid'})",
            )
    return context


def banqware_poller(source: BanqwareSource, *, sleep: Sleep = asyncio.sleep) -> Poller:
    """Reads the header secrets and certificate files now, so a problem with any of them
    stops start-up (``check-config`` reports the same)."""
    api = source.api
    found = SetupProblems()
    headers = {
        name: found.secret(f"headers_env.{name}", env) for name, env in api.headers_env.items()
    }
    context = ssl_context(api, found)
    found.check()
    if api.base_url is None:
        return UnconfiguredPoller(source.id, ["base_url"])
    http = HttpClient(provider=f"banqware ({source.id})", api=api, ssl_context=context, sleep=sleep)
    resolved = {name: value for name, value in headers.items() if value is not None}
    return BanqwarePoller(source, BanqwareClient(api, http, resolved))
