"""The AA's API (``POST /Consent/handle``) and the ReBIT poller.

A request is ``{ver, timestamp, txnid, ConsentHandle}``, sent byte for byte as signed:
its detached JWS (the FIU's key) in ``x-jws-signature``, the token of the configured
token service in ``client_api_key`` (the standard's API key header), and, when the
source names its ``aa_id``, ``x-request-meta`` (base64 of ``{"recipient-id": aa_id}``,
which Sahamati's router forwards by). The answer must echo the request's ``txnid``.

The token comes from a client-credentials request (Sahamati's entity token: a form of
``id`` and ``secret``; or OAuth2 ``client_credentials``) and is kept until shortly
before the ``expiresIn`` it came with (5 minutes when it says none); one request is
shared by every caller that needs a new one meanwhile. A 401 or 403 from the AA drops it
(the next poll asks for a new one) and is reported as the gateway's credentials'
fault.

Only consents are polled: ReBIT 2.0.0 has no status endpoint for a data session (``POST
/FI/fetch`` fetches the data itself), so data sessions and their accounts learn only
from notifications.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

from pydantic import SecretStr

from statusgate.config import SetupError, SetupProblems
from statusgate.core.errors import ApiError, Reason
from statusgate.core.names import ResourceName
from statusgate.providers.polling import (
    HttpPoller,
    Poller,
    PollReport,
    UnconfiguredPoller,
    add_mapped,
)
from statusgate.providers.rebit.answers import now_timestamp
from statusgate.providers.rebit.config import RebitApi, RebitSource
from statusgate.providers.rebit.jws import Signer, load_signer
from statusgate.providers.rebit.poll_mapping import LABEL, consent_handle_update
from statusgate.upstream.http import CallScope, HttpClient, Sleep, deadline_exceeded
from statusgate.upstream.single_flight import SingleFlight
from statusgate.v1.status_pb2 import Status

CREDENTIALS = ("client_id_env", "client_secret_env")
# A token whose lifetime was not given is used this long (seconds).
DEFAULT_TOKEN_LIFETIME = 300.0
# A token is replaced this long before it expires, so that no call carries a token
# that expires on the way (at most half of its lifetime).
TOKEN_MARGIN = 60.0

Clock = Callable[[], float]


class RebitClient:
    """The AA API calls of one source, on its shared HTTP client."""

    def __init__(
        self,
        source: RebitSource,
        http: HttpClient,
        signer: Signer,
        client_id: SecretStr,
        client_secret: SecretStr,
        *,
        clock: Clock = time.monotonic,
    ) -> None:
        api = source.api
        assert api.base_url is not None
        self.http = http
        self._api: RebitApi = api
        self._base = api.base_url
        self._version = source.versions[0]
        self._aa_id = source.aa_id
        self._signer = signer
        self._client_id = client_id
        self._client_secret = client_secret
        self._clock = clock
        self._token: str | None = None
        self._expires_at = 0.0
        self._tokens: SingleFlight[str, str] = SingleFlight()

    async def consent_handle(self, handle: str, scope: CallScope) -> tuple[Any, str]:
        """``POST /Consent/handle`` for ``handle``: the answer and the request's txnid."""
        txnid = str(uuid.uuid4())
        request = {
            "ver": self._version,
            "timestamp": now_timestamp(),
            "txnid": txnid,
            "ConsentHandle": handle,
        }
        body = json.dumps(request, separators=(",", ":")).encode()
        headers = {
            "Content-Type": "application/json",
            "x-jws-signature": self._signer.sign(body),
            "client_api_key": await self._bearer(scope),
        }
        if self._aa_id is not None:
            meta = json.dumps({"recipient-id": self._aa_id}).encode()
            headers["x-request-meta"] = base64.b64encode(meta).decode()
        try:
            answer = await self.http.call(
                "POST",
                self._base + "/Consent/handle",
                label=LABEL,
                scope=scope,
                headers=headers,
                data=body,
            )
        except ApiError as error:
            if error.reason == Reason.UPSTREAM_AUTH_FAILED:
                self._token = None  # the next poll asks for a new one
            raise
        return answer.body, txnid

    async def _bearer(self, scope: CallScope) -> str:
        if self._token is not None and self._clock() < self._expires_at:
            return self._token
        task, _ = self._tokens.join("token", lambda: self._fetch_token(scope))
        try:
            return await self._tokens.wait(task, "token", max(0.0, scope.remaining()))
        except TimeoutError:
            raise deadline_exceeded("ReBIT token service") from None

    async def _fetch_token(self, scope: CallScope) -> str:
        client_id = self._client_id.get_secret_value()
        secret = self._client_secret.get_secret_value()
        if self._api.token_request == "sahamati":  # noqa: S105 - a style, not a secret
            form, headers = {"id": client_id, "secret": secret}, {}
        else:
            basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
            form = {"grant_type": "client_credentials"}
            headers = {"Authorization": f"Basic {basic}"}
        answer = await self.http.call(
            "POST",
            self._api.token_url,
            label="ReBIT token service",
            scope=scope,
            headers=headers,
            data=form,
        )
        token, lifetime = _token_of(answer.body)
        if token is None:
            raise ApiError(
                Reason.UPSTREAM_BAD_RESPONSE, "ReBIT token service answered without a token"
            )
        self._token = token
        self._expires_at = self._clock() + max(lifetime - TOKEN_MARGIN, lifetime / 2)
        return token


def _token_of(body: Any) -> tuple[str | None, float]:
    """The token and its lifetime in seconds, in Sahamati's spelling or OAuth2's."""
    if not isinstance(body, dict):
        return None, 0.0
    token = body.get("accessToken") or body.get("access_token")
    lifetime = body.get("expiresIn", body.get("expires_in"))
    if isinstance(lifetime, bool) or not isinstance(lifetime, int | float) or lifetime <= 0:
        lifetime = DEFAULT_TOKEN_LIFETIME
    return (token if isinstance(token, str) and token else None), float(lifetime)


class RebitPoller(HttpPoller):
    provider_label = "the ReBIT AA"
    pollable = ("consents",)
    client: RebitClient

    async def poll(
        self, target: ResourceName, current: Status | None, scope: CallScope
    ) -> PollReport:
        handle = target.path[0][1]
        body, txnid = await self.client.consent_handle(handle, scope)
        answer = PollReport()
        add_mapped(
            answer, LABEL, lambda: consent_handle_update(self.source, handle, body, txnid=txnid)
        )
        return answer


def rebit_poller(source: RebitSource, *, sleep: Sleep = asyncio.sleep) -> Poller:
    """Reads every named secret and the signing key now, so a variable that is unset or
    a key that is unusable stops start-up."""
    api = source.api
    found = SetupProblems()
    secrets = {
        name: found.secret(name, env) if (env := getattr(api, name)) else None
        for name in CREDENTIALS
    }
    found.check()
    missing = [name for name, value in secrets.items() if value is None]
    if api.base_url is None:
        missing.insert(0, "base_url")
    if missing:
        return UnconfiguredPoller(source.id, missing)
    client_id, client_secret = secrets["client_id_env"], secrets["client_secret_env"]
    # The configuration requires a signing key once the API is named.
    assert client_id and client_secret and source.signing is not None
    try:
        signer = load_signer(source.signing)
    except SetupError:
        # The source's answers are signed with the same key and report its problem,
        # located at sources.<id>.signing: the poller cannot be built, and says no more.
        raise SetupError([]) from None
    http = HttpClient(provider=f"ReBIT AA ({source.id})", api=api, sleep=sleep)
    client = RebitClient(source, http, signer, client_id, client_secret)
    return RebitPoller(source.id, client)
