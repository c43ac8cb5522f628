"""banqware PSD2 Hub API client and the banqware poller (PROVIDERS.md, banqware).

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

import grpc
from pydantic import SecretStr

from statusgate.config import BanqwareApi, BanqwareSource, read_secret
from statusgate.core.names import ResourceName
from statusgate.poll import errors
from statusgate.poll.envelopes import describe_json, http_failure
from statusgate.poll.errors import PollError
from statusgate.poll.http import CallScope, HttpClient, Sleep
from statusgate.providers.banqware.poll_mapping import session_poll_updates
from statusgate.providers.polling import (
    ClientPoller,
    PollAnswer,
    ProviderPoller,
    UnconfiguredPoller,
    add_mapped,
    attempt,
)
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

    async def _get(self, path: str, what: str, session_id: str, scope: CallScope) -> Any:
        described = f"banqware GET {what}"
        answer = await self.http.call(
            "GET",
            self._base + path,
            what=described,
            scope=scope,
            headers={name: value.get_secret_value() for name, value in self._headers.items()},
            params={self._param: session_id},
        )
        return unwrap(answer.body, answer.raw, described)


def unwrap(body: Any, raw: bytes, what: str) -> Any:
    """``data`` of ``{"success": true, "data": ...}``; an error envelope sent with a 2xx
    status is the error it describes (``errorCode`` as the HTTP status when it is one)."""
    if not isinstance(body, dict):
        return body
    code = body.get("errorCode")
    if isinstance(code, int) and not isinstance(code, bool) and 400 <= code <= 599:
        raise http_failure(code, raw, None, what).error
    if body.get("success") is False:
        _, message = describe_json(body)
        raise PollError(
            grpc.StatusCode.FAILED_PRECONDITION,
            errors.UPSTREAM_REJECTED,
            f"{what} answered success=false" + (f": {message}" if message else ""),
        )
    if body.get("success") is True:
        return body.get("data")
    return body


class BanqwarePoller(ClientPoller):
    provider_label = "banqware"
    pollable = ("sessions",)
    client: BanqwareClient

    def __init__(self, source: BanqwareSource, client: BanqwareClient) -> None:
        super().__init__(source.id, client)
        self._config = source

    def target(self, name: ResourceName) -> ResourceName:
        if name.path[0][0] == "payments":
            raise errors.not_supported(
                f"{name}: banqware documents no status endpoint for payments; their "
                "status comes from PIS callbacks only"
            )
        return super().target(name)

    async def poll(
        self, target: ResourceName, current: Status | None, scope: CallScope
    ) -> PollAnswer:
        session_id = target.path[0][1]
        (status, error), (details, details_error) = await asyncio.gather(
            attempt(self.client.session_status(session_id, scope)),
            attempt(self.client.session_details(session_id, scope)),
        )
        if error is not None:
            raise error
        answer = PollAnswer()
        if details_error is not None:
            answer.fail(details_error)
        add_mapped(
            answer,
            "banqware session status",
            lambda: session_poll_updates(self._config, session_id, status, details),
        )
        return answer


def ssl_context(api: BanqwareApi) -> ssl.SSLContext | None:
    """The mTLS context, None when neither a client certificate nor a CA is set."""
    if api.client_cert_file is None and api.ca_file is None:
        return None
    context = ssl.create_default_context(cafile=api.ca_file)
    if api.client_cert_file is not None:
        # A password callback, so an encrypted key fails instead of prompting.
        context.load_cert_chain(api.client_cert_file, api.client_key_file, password=lambda: b"")
    return context


def banqware_poller(source: BanqwareSource, *, sleep: Sleep = asyncio.sleep) -> ProviderPoller:
    """Reads the header secrets and certificate files now, so a problem with any of them
    stops start-up (``check-config`` reports the same)."""
    api = source.api
    if api.base_url is None:
        return UnconfiguredPoller(source.id, ["base_url"])
    headers = {name: read_secret(env) for name, env in api.headers_env.items()}
    try:
        context = ssl_context(api)
    except (OSError, ssl.SSLError) as error:
        raise ValueError(
            f"sources.{source.id}.api: cannot load the TLS files: {error.strerror or error}"
        ) from None
    http = HttpClient(provider=f"banqware ({source.id})", api=api, ssl_context=context, sleep=sleep)
    return BanqwarePoller(source, BanqwareClient(api, http, headers))
