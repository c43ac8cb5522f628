"""A fake ReBIT Account Aggregator (the AA API 2.0.0 an FIU calls) and its token
service: ``POST /Consent/handle`` as the standard says, errors included.

It verifies what the gateway sends as a real AA would: the ``client_api_key`` token
(issued by its token service, 401 Unauthorized otherwise), the detached JWS of the body
in ``x-jws-signature`` with the FIU's public key (400 SignatureDoesNotMatch), ``ver``
(404 NoSuchVersion), ``txnid`` (a UUID) and ``timestamp`` (within 15 minutes: 400
InvalidRequest), ``x-request-meta`` when it knows its recipient id (400 InvalidRequest),
and the consent handle (400 InvalidConsentHandle). Answers are
``{ver, timestamp, txnid, ConsentHandle, ConsentStatus: {id, status}}`` or the
standard's error envelope, every one signed with the AA's key.

It also holds the keys of both sides for the tests: the AA's (to sign notifications
to the gateway, and whose public key the gateway's ``jws`` authentication lists) and
the FIU's (the gateway's signing key, written to a file for ``[sources.<id>.signing]``).
"""

from __future__ import annotations

import base64
import json
import shutil
import tempfile
import uuid
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from statusgate.providers.rebit.answers import now_timestamp
from statusgate.providers.rebit.jws import Signer
from statusgate.web.auth import AuthenticationError, JwsVerifier, VerifiableRequest
from tests.fakes.server import FakeServer

CLIENT_ID = "test-fiu-entity"
CLIENT_SECRET = "test-fiu-entity-secret"
TOKEN_PATH = "/iam/v1/entity/token/generate"
AA_KEY_ID = "aa-key-1"
FIU_KEY_ID = "fiu-key-1"
VERSION = "2.0.0"


@cache
def rsa_key(role: str) -> rsa.RSAPrivateKey:
    """One key per role for the whole run (generating RSA keys is slow)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def private_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


class FakeRebitAA(FakeServer):
    def __init__(self, *, recipient_id: str | None = None, token_lifetime: int = 86400) -> None:
        super().__init__()
        self.aa_key = rsa_key("aa")
        self.fiu_key = rsa_key("fiu")
        self.recipient_id = recipient_id
        self.token_lifetime = token_lifetime
        self.consents: dict[str, dict[str, Any]] = {}
        self.tokens: set[str] = set()
        self._issued = 0
        self._verifier = JwsVerifier([self.fiu_key.public_key()])
        self._signer = Signer(self.aa_key, AA_KEY_ID)
        self._dir = Path(tempfile.mkdtemp(prefix="fake-rebit-"))
        self.fiu_key_file = self._dir / "fiu.pem"
        self.fiu_key_file.write_bytes(private_pem(self.fiu_key))
        self.aa_public_key_file = self._dir / "aa.pem"
        self.aa_public_key_file.write_bytes(public_pem(self.aa_key))
        self.route("POST", TOKEN_PATH, "token", self._token, api=False)
        self.route("POST", "/Consent/handle", "consent_handle", self._consent_handle)

    @property
    def token_url(self) -> str:
        return self.url + TOKEN_PATH

    def signing(self) -> dict[str, Any]:
        """The ``[sources.<id>.signing]`` table of a source on this AA."""
        return {"private_key_file": str(self.fiu_key_file), "key_id": FIU_KEY_ID}

    def consent(self, handle: str, status: str, consent_id: str | None = None) -> None:
        self.consents[handle] = {"status": status, "id": consent_id}

    def expire_tokens(self) -> None:
        self.tokens.clear()

    async def close(self) -> None:
        await super().close()
        shutil.rmtree(self._dir, ignore_errors=True)

    # --- the token service -----------------------------------------------------------

    async def _token(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        sahamati = form.get("id") == CLIENT_ID and form.get("secret") == CLIENT_SECRET
        basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        oauth2 = (
            form.get("grant_type") == "client_credentials"
            and request.headers.get("Authorization") == f"Basic {basic}"
        )
        if not (sahamati or oauth2):
            return web.json_response(
                {"ver": "1.0.0", "errorCode": "Unauthorized", "errorMsg": "Invalid entity id"},
                status=401,
            )
        self._issued += 1
        token = f"token-{self._issued}"
        self.tokens.add(token)
        if oauth2:
            return web.json_response({"access_token": token, "expires_in": self.token_lifetime})
        return web.json_response(
            {"accessToken": token, "expiresIn": self.token_lifetime, "tokenType": "Bearer"}
        )

    # --- POST /Consent/handle --------------------------------------------------------

    async def _consent_handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        txnid = body.get("txnid", "") if isinstance(body, dict) else ""
        if request.headers.get("client_api_key") not in self.tokens:
            return self._error(401, txnid, "Unauthorized", "invalid or expired client_api_key")
        try:
            self._verifier.verify(VerifiableRequest(headers=request.headers, body=raw))
        except AuthenticationError as error:
            return self._error(400, txnid, "SignatureDoesNotMatch", error.reason)
        if not isinstance(body, dict):
            return self._error(400, "", "InvalidRequest", "the body is not a JSON object")
        if body.get("ver") != VERSION:
            return self._error(404, txnid, "NoSuchVersion", "unsupported version")
        problem = self._envelope_problem(body, request)
        if problem is not None:
            return self._error(400, txnid, "InvalidRequest", problem)
        handle = body.get("ConsentHandle")
        consent = self.consents.get(handle) if isinstance(handle, str) else None
        if consent is None:
            return self._error(400, txnid, "InvalidConsentHandle", "unknown consent handle")
        status: dict[str, Any] = {"status": consent["status"]}
        if consent["id"] is not None:
            status["id"] = consent["id"]
        return self._signed(
            200,
            {
                "ver": VERSION,
                "timestamp": now_timestamp(),
                "txnid": txnid,
                "ConsentHandle": handle,
                "ConsentStatus": status,
            },
        )

    def _envelope_problem(self, body: dict[str, Any], request: web.Request) -> str | None:
        try:
            uuid.UUID(str(body.get("txnid")))
        except ValueError:
            return "txnid is not a UUID"
        try:
            sent = datetime.fromisoformat(str(body.get("timestamp")).replace("Z", "+00:00"))
        except ValueError:
            return "timestamp is not a date-time"
        if sent.tzinfo is None or abs((datetime.now(UTC) - sent).total_seconds()) > 900:
            return "timestamp is more than 15 minutes from now"
        if self.recipient_id is not None:
            meta = request.headers.get("x-request-meta", "")
            try:
                recipient = json.loads(base64.b64decode(meta)).get("recipient-id")
            except ValueError:
                recipient = None
            if recipient != self.recipient_id:
                return "x-request-meta does not name this AA"
        return None

    def _error(self, status: int, txnid: Any, code: str, message: str) -> web.StreamResponse:
        return self._signed(status, envelope(status, code, message, txnid))

    def _signed(self, status: int, document: dict[str, Any]) -> web.StreamResponse:
        body = json.dumps(document).encode()
        return web.Response(
            status=status,
            body=body,
            content_type="application/json",
            headers={"x-jws-signature": self._signer.sign(body)},
        )


def envelope(status: int, code: str, message: str, txnid: Any = "") -> dict[str, Any]:
    """The standard's error answer."""
    return {
        "ver": VERSION,
        "timestamp": now_timestamp(),
        "txnid": txnid if isinstance(txnid, str) else "",
        "errorCode": code,
        "errorMsg": message,
    }
