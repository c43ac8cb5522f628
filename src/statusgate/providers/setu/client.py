"""Setu AA v2 API client and the Setu poller.

Calls carry ``Authorization: Bearer <token>`` and ``x-product-instance-id``. The token
comes from a client-credentials login whose lifetime Setu does not document, so it is
kept until a call answers 401; then it is refreshed once, by one login shared by every
caller that met the same stale token, and the call is repeated once.

A consent is described by ``GET /v2/consents/{id}``; its data sessions listed by
``/v2/consents/{id}/data-sessions`` (best effort: a failure there is not the consent's)
are updated too, so a data session whose notifications were all lost still appears. A
data session (and each of its FIP accounts) is described by ``GET /v2/sessions/{id}``.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from pydantic import SecretStr

from statusgate.config import SetupProblems
from statusgate.core.errors import ApiError, Reason
from statusgate.core.names import ResourceName
from statusgate.providers.polling import (
    HttpPoller,
    Poller,
    PollReport,
    UnconfiguredPoller,
    add_mapped,
    attempt,
)
from statusgate.providers.setu.config import SetuApi, SetuSource
from statusgate.providers.setu.poll_mapping import (
    consent_poll_update,
    data_session_poll_update,
    listed_session_updates,
)
from statusgate.upstream.http import CallScope, HttpClient, Sleep, deadline_exceeded
from statusgate.upstream.single_flight import SingleFlight
from statusgate.v1.status_pb2 import Status

CREDENTIALS = ("client_id_env", "client_secret_env", "product_instance_id_env")


class SetuClient:
    """The Setu API calls of one source, on its shared HTTP client."""

    def __init__(
        self,
        api: SetuApi,
        http: HttpClient,
        client_id: SecretStr,
        client_secret: SecretStr,
        product_instance_id: SecretStr,
    ) -> None:
        self.http = http
        self._base = api.base_url
        self._login_url = api.login_url
        self._client_id = client_id
        self._client_secret = client_secret
        self._product_instance_id = product_instance_id
        self._token: str | None = None
        self._logins: SingleFlight[str, str] = SingleFlight()

    async def consent(self, consent_id: str, scope: CallScope) -> Any:
        return await self._get(f"/v2/consents/{_segment(consent_id)}", "consent", consent_id, scope)

    async def consent_data_sessions(self, consent_id: str, scope: CallScope) -> Any:
        path = f"/v2/consents/{_segment(consent_id)}/data-sessions"
        return await self._get(path, "data sessions of consent", consent_id, scope)

    async def data_session(self, session_id: str, scope: CallScope) -> Any:
        path = f"/v2/sessions/{_segment(session_id)}"
        return await self._get(path, "data session", session_id, scope)

    async def _get(self, path: str, label: str, id_: str, scope: CallScope) -> Any:
        described = f"Setu GET {label} {id_}"
        token = await self._bearer(scope)
        answer = await self.http.call(
            "GET",
            self._base + path,
            label=described,
            scope=scope,
            headers=self._headers(token),
            passthrough=(401,),
        )
        if answer.status == 401:
            token = await self._refresh(token, scope)
            # A second 401 with a fresh token is our credentials' fault: reported as such.
            answer = await self.http.call(
                "GET", self._base + path, label=described, scope=scope, headers=self._headers(token)
            )
        return answer.body

    async def _bearer(self, scope: CallScope) -> str:
        if self._token is not None:
            return self._token
        return await self._refresh(None, scope)

    async def _refresh(self, stale: str | None, scope: CallScope) -> str:
        """A token other than ``stale``: the one another caller got meanwhile, or a new
        one from a login shared by everyone who asks while it runs."""
        if self._token is not None and self._token != stale:
            return self._token
        task, _ = self._logins.join("login", lambda: self._log_in(scope))
        try:
            return await self._logins.wait(task, "login", max(0.0, scope.remaining()))
        except TimeoutError:
            raise deadline_exceeded("Setu login") from None

    async def _log_in(self, scope: CallScope) -> str:
        self._token = None
        answer = await self.http.call(
            "POST",
            self._login_url,
            label="Setu login",
            scope=scope,
            headers={"client": "bridge"},
            json_body={
                "clientID": self._client_id.get_secret_value(),
                "grant_type": "client_credentials",
                "secret": self._client_secret.get_secret_value(),
            },
        )
        token = _access_token(answer.body)
        if token is None:
            raise ApiError(
                Reason.UPSTREAM_BAD_RESPONSE,
                "Setu login answered without an access_token",
            )
        self._token = token
        return token

    def _headers(self, token: str) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {token}",
            "x-product-instance-id": self._product_instance_id.get_secret_value(),
        }


class SetuPoller(HttpPoller):
    provider_label = "Setu"
    pollable = ("consents", "data-sessions")
    client: SetuClient

    async def poll(
        self, target: ResourceName, current: Status | None, scope: CallScope
    ) -> PollReport:
        collection, id_ = target.path[0]
        if collection == "data-sessions":
            body = await self.client.data_session(id_, scope)
            answer = PollReport()
            add_mapped(
                answer,
                "Setu GET /v2/sessions/{id}",
                lambda: data_session_poll_update(self.source, id_, body),
            )
            return answer
        return await self._consent(id_, current, scope)

    async def _consent(
        self, consent_id: str, current: Status | None, scope: CallScope
    ) -> PollReport:
        (body, error), (listed, _) = await asyncio.gather(
            attempt(self.client.consent(consent_id, scope)),
            attempt(self.client.consent_data_sessions(consent_id, scope)),
        )
        if error is not None:
            raise error
        observed_at = datetime.now(UTC)
        known_state = current.state if current is not None else None
        answer = PollReport()
        add_mapped(
            answer,
            "Setu GET /v2/consents/{id}",
            lambda: consent_poll_update(
                self.source, consent_id, body, observed_at=observed_at, known_state=known_state
            ),
        )
        answer.updates.extend(listed_session_updates(self.source, consent_id, listed))
        return answer


def _access_token(body: Any) -> str | None:
    for holder in (body, body.get("data") if isinstance(body, dict) else None):
        if isinstance(holder, dict):
            token = holder.get("access_token") or holder.get("accessToken")
            if isinstance(token, str) and token:
                return token
    return None


def setu_poller(source: SetuSource, *, sleep: Sleep = asyncio.sleep) -> Poller:
    """Reads every named secret now, so a variable that is unset stops start-up."""
    api = source.api
    found = SetupProblems()
    secrets = {
        name: found.secret(name, env) if (env := getattr(api, name)) else None
        for name in CREDENTIALS
    }
    found.check()
    missing = [name for name, value in secrets.items() if value is None]
    if missing:
        return UnconfiguredPoller(source.id, missing)
    client_id, client_secret, product_instance_id = (secrets[name] for name in CREDENTIALS)
    assert client_id and client_secret and product_instance_id
    http = HttpClient(provider=f"Setu ({source.id})", api=api, sleep=sleep)
    client = SetuClient(api, http, client_id, client_secret, product_instance_id)
    return SetuPoller(source.id, client)


def _segment(id_: str) -> str:
    return quote(id_, safe="")
