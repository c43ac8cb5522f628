"""FinBox BankConnect API client and the FinBox poller.

Every call carries ``x-api-key`` and ``server-hash``. A session is described by
``session_upload_status`` and ``progress``, called concurrently, and, once ``progress``
says processing completed, by ``session_status``, whose per-account verdicts settle the
session (see ``poll_mapping``). A legacy entity is described by an analysis endpoint's
``progress[]`` and, when its ``link_id`` is known, by the webhook payloads FinBox kept
for that link. Accounts and statements are polled through their session or entity.
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal
from urllib.parse import quote

from pydantic import SecretStr

from statusgate.config import SetupProblems
from statusgate.core.names import ResourceName
from statusgate.providers.finbox.config import FinboxApi, FinboxSource
from statusgate.providers.finbox.poll_mapping import (
    PolledProgress,
    entity_progress_updates,
    polled_progress,
    session_status_updates,
    upload_status_update,
    webhook_payload_updates,
)
from statusgate.providers.polling import (
    HttpPoller,
    Poller,
    PollReport,
    UnconfiguredPoller,
    add_mapped,
    attempt,
)
from statusgate.upstream.envelopes import describe_json, http_failure
from statusgate.upstream.http import CallScope, HttpClient, Sleep, UpstreamResponse
from statusgate.v1.status_pb2 import Status

# The analysis endpoint whose progress[] describes an entity. FinBox names
# transactions "and others"; this one is documented and always present.
ENTITY_ANALYSIS_PATH = "/entity/{entity_id}/transactions/"
WEBHOOK_PATHS = {
    "session": "/session_data/update_webhook/",
    "entity": "/entity/update_webhook/",
}
# webhook_mode 1 = net banking and manual uploads. An update that leaves it out resets
# it to 0 (net banking only), so it is always sent.
WEBHOOK_MODE = 1


class FinboxClient:
    """The FinBox API calls of one source, on its shared HTTP client."""

    def __init__(
        self, api: FinboxApi, http: HttpClient, api_key: SecretStr, server_hash: SecretStr
    ) -> None:
        self.http = http
        self._base = api.base_url
        self._api_key = api_key
        self._server_hash = server_hash

    async def upload_status(self, session_id: str, scope: CallScope) -> Any:
        path = f"/session_data/{_segment(session_id)}/session_upload_status/"
        return (await self._get(path, f"FinBox session_upload_status of {session_id}", scope)).body

    async def progress(self, session_id: str, scope: CallScope) -> Any | None:
        """The answer, or None while processing was not requested (400
        PROCESSING_NOT_REQUESTED): the upload status alone describes the session then."""
        return await self._unless_400(
            f"/session_data/{_segment(session_id)}/progress/",
            f"FinBox progress of {session_id}",
            "PROCESSING_NOT_REQUESTED",
            scope,
        )

    async def session_status(self, session_id: str, scope: CallScope) -> Any | None:
        """The answer, or None while processing has not completed (400
        PROCESSING_NOT_COMPLETED)."""
        return await self._unless_400(
            f"/session_data/{_segment(session_id)}/session_status/",
            f"FinBox session_status of {session_id}",
            "PROCESSING_NOT_COMPLETED",
            scope,
        )

    async def webhook_payloads(self, link_id: str, scope: CallScope) -> Any:
        answer = await self._get(
            "/entity/webhook_payloads/",
            f"FinBox webhook_payloads of link {link_id}",
            scope,
            params={"link_id": link_id},
        )
        return answer.body

    async def entity_analysis(self, entity_id: str, scope: CallScope) -> Any:
        path = ENTITY_ANALYSIS_PATH.format(entity_id=_segment(entity_id))
        return (await self._get(path, f"FinBox analysis of entity {entity_id}", scope)).body

    async def register_webhook(
        self, flow: Literal["session", "entity"], url: str, scope: CallScope
    ) -> Any:
        path = WEBHOOK_PATHS[flow]
        answer = await self.http.call(
            "POST",
            self._base + path,
            label=f"FinBox POST {path}",
            scope=scope,
            headers=self._headers(),
            json_body={"webhook_url": url, "webhook_mode": WEBHOOK_MODE},
        )
        return answer.body

    async def _unless_400(
        self, path: str, label: str, expected_code: str, scope: CallScope
    ) -> Any | None:
        answer = await self._get(path, label, scope, passthrough=(400,))
        if answer.status != 400:
            return answer.body
        code, _ = describe_json(answer.body)
        if code.upper() == expected_code:
            return None
        raise http_failure(answer.status, answer.raw, None, label).error

    async def _get(
        self,
        path: str,
        label: str,
        scope: CallScope,
        *,
        params: dict[str, str] | None = None,
        passthrough: tuple[int, ...] = (),
    ) -> UpstreamResponse:
        return await self.http.call(
            "GET",
            self._base + path,
            label=label,
            scope=scope,
            headers=self._headers(),
            params=params,
            passthrough=passthrough,
        )

    def _headers(self) -> dict[str, str]:
        return {
            "x-api-key": self._api_key.get_secret_value(),
            "server-hash": self._server_hash.get_secret_value(),
        }


class FinboxPoller(HttpPoller):
    provider_label = "FinBox"
    pollable = ("sessions", "entities")
    client: FinboxClient

    async def poll(
        self, target: ResourceName, current: Status | None, scope: CallScope
    ) -> PollReport:
        collection, id_ = target.path[0]
        if collection == "sessions":
            return await self._session(id_, scope)
        link_id = current.attributes.get("link_id") if current is not None else None
        return await self._entity(id_, link_id, scope)

    async def _session(self, session_id: str, scope: CallScope) -> PollReport:
        (upload, upload_error), (progress, progress_error) = await asyncio.gather(
            attempt(self.client.upload_status(session_id, scope)),
            attempt(self.client.progress(session_id, scope)),
        )
        answer = PollReport()
        for error in (upload_error, progress_error):
            if error is not None:
                answer.fail(error)
        if upload_error is None:
            add_mapped(
                answer,
                "FinBox session_upload_status",
                lambda: upload_status_update(self.source, session_id, upload),
            )
        if progress_error is not None or progress is None:
            return answer
        mapped: list[PolledProgress] = []

        def provisional() -> list[Status]:
            mapped.append(polled_progress(self.source, session_id, progress))
            return mapped[0].updates

        if not add_mapped(answer, "FinBox progress", provisional):
            return answer
        if mapped[0].verdict_due:
            verdict, verdict_error = await attempt(self.client.session_status(session_id, scope))
            if verdict_error is not None:
                answer.fail(verdict_error)
            elif verdict is not None:
                add_mapped(
                    answer,
                    "FinBox session_status",
                    lambda: session_status_updates(self.source, session_id, verdict),
                )
        return answer

    async def _entity(self, entity_id: str, link_id: str | None, scope: CallScope) -> PollReport:
        calls = [attempt(self.client.entity_analysis(entity_id, scope))]
        if link_id:
            calls.append(attempt(self.client.webhook_payloads(link_id, scope)))
        results = await asyncio.gather(*calls)
        answer = PollReport()
        (analysis, analysis_error), *payloads = results
        if payloads:
            recovered, recovered_error = payloads[0]
            if recovered_error is not None:
                answer.fail(recovered_error)
            else:
                # History first: the analysis is the latest word.
                add_mapped(
                    answer,
                    "FinBox webhook_payloads",
                    lambda: webhook_payload_updates(self.source, entity_id, recovered),
                )
        if analysis_error is not None:
            answer.fail(analysis_error)
        else:
            add_mapped(
                answer,
                "FinBox entity analysis",
                lambda: entity_progress_updates(self.source, entity_id, analysis),
            )
        return answer


def finbox_client(source: FinboxSource, *, sleep: Sleep = asyncio.sleep) -> FinboxClient | None:
    """The source's client; None when its credentials are not both named. Reads every
    named secret now, so a variable that is unset stops start-up (``SetupError``)."""
    api = source.api
    found = SetupProblems()
    api_key = found.secret("api_key_env", api.api_key_env) if api.api_key_env else None
    server_hash = (
        found.secret("server_hash_env", api.server_hash_env) if api.server_hash_env else None
    )
    found.check()
    if api_key is None or server_hash is None:
        return None
    http = HttpClient(provider=f"FinBox ({source.id})", api=api, sleep=sleep)
    return FinboxClient(api, http, api_key, server_hash)


def finbox_poller(source: FinboxSource, *, sleep: Sleep = asyncio.sleep) -> Poller:
    client = finbox_client(source, sleep=sleep)
    if client is None:
        missing = [
            name for name in ("api_key_env", "server_hash_env") if getattr(source.api, name) is None
        ]
        return UnconfiguredPoller(source.id, missing)
    return FinboxPoller(source.id, client)


def _segment(id_: str) -> str:
    # Ids are opaque: one path segment whatever they contain.
    return quote(id_, safe="")
