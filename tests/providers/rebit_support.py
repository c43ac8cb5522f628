"""What the ReBIT tests share: a real gateway with a ReBIT source on the fake AA, and
posting signed notifications to it the way an AA does."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from statusgate.providers.rebit.jws import Signer
from statusgate.providers.rebit.notifications import (
    SignedNotification,
    consent_notification,
    signed,
)
from statusgate.web.auth import JwsVerifier, VerifiableRequest
from tests.conftest import RunningGateway, gateway_settings
from tests.fakes.harness import rebit_source
from tests.fakes.rebit import AA_KEY_ID, FakeRebitAA, public_pem, rsa_key

AA_ID = "finvu-aa"
AA_API_KEY = "test-aa-api-key"
SOURCE = "finvu"


@dataclass
class Answer:
    status: int
    body: dict[str, Any]
    headers: Mapping[str, str]
    raw: bytes


@dataclass
class ReBIT:
    gw: RunningGateway
    aa: FakeRebitAA

    def notification(self, message: dict[str, Any], **options: Any) -> SignedNotification:
        """``message`` signed by the AA, with its API key."""
        return signed(message, self.aa.aa_key, api_key=AA_API_KEY, **options)

    def consent(self, handle: str, status: str, **fields: Any) -> SignedNotification:
        return self.notification(consent_notification(handle, status, aa_id=AA_ID, **fields))

    async def post(
        self,
        notification: SignedNotification,
        *,
        path: str | None = None,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
        source: str = SOURCE,
    ) -> Answer:
        sub_path = notification.path if path is None else path
        url = self.gw.url(f"/webhooks/{source}" + (f"/{sub_path}" if sub_path else ""))
        sent = dict(headers if headers is not None else notification.headers)
        async with self.gw.http.post(
            url, data=notification.body if body is None else body, headers=sent
        ) as response:
            raw = await response.read()
            return Answer(response.status, json.loads(raw), dict(response.headers), raw)

    async def post_body(self, path: str, body: bytes) -> Answer:
        """``body`` as it is, signed by the AA, on ``path``."""
        signature = Signer(self.aa.aa_key, AA_KEY_ID).sign(body)
        headers = {
            "Content-Type": "application/json",
            "x-jws-signature": signature,
            "aa_api_key": AA_API_KEY,
        }
        async with self.gw.http.post(
            self.gw.url(f"/webhooks/{SOURCE}/{path}"), data=body, headers=headers
        ) as response:
            raw = await response.read()
            return Answer(response.status, json.loads(raw), dict(response.headers), raw)

    def verify_answer(self, answer: Answer) -> None:
        """The answer carries the FIU's detached JWS of its exact body."""
        verifier = JwsVerifier([self.aa.fiu_key.public_key()])
        verifier.verify(VerifiableRequest(headers=answer.headers, body=answer.raw))


def rebit_settings(tmp_path: Path, aa: FakeRebitAA, **source: Any) -> Any:
    """One ReBIT source, ``finvu``: the AA's JWS (two keys: rotation) and its API key,
    answers signed with the FIU's key, polling the fake AA (reconciler off)."""
    old = tmp_path / "aa-old.pem"
    old.write_bytes(public_pem(rsa_key("aa-old")))
    config = {
        **rebit_source(aa),
        "aa_id": AA_ID,
        "auth": {
            "method": "all_of",
            "methods": [
                {"method": "jws", "public_key_files": [str(old), str(aa.aa_public_key_file)]},
                {
                    "method": "shared_secret",
                    "header": "aa_api_key",
                    "secret_env": "TEST_AA_API_KEY",
                },
            ],
        },
        "poll": {"enabled": False},
        **source,
    }
    return gateway_settings(tmp_path, sources={SOURCE: config})


def minutes_ago(minutes: float) -> datetime:
    return datetime.now(UTC) - timedelta(minutes=minutes)
