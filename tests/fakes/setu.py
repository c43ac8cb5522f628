"""A fake Setu AA v2 API, as its documentation describes it: login, consents and data
sessions."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tests.fakes.server import FakeServer

CLIENT_ID = "test-setu-client"
CLIENT_SECRET = "test-setu-secret"
PRODUCT_INSTANCE_ID = "test-setu-product"
LOGIN_PATH = "/v1/users/login"


class FakeSetu(FakeServer):
    def __init__(self) -> None:
        super().__init__()
        self.consents: dict[str, dict[str, Any]] = {}
        self.data_sessions: dict[str, dict[str, Any]] = {}
        self.tokens: set[str] = set()
        self._issued = 0
        self.route("POST", LOGIN_PATH, "login", self._login, api=False)
        self.route("GET", "/v2/consents/{cid}", "consent", self._consent)
        self.route("GET", "/v2/consents/{cid}/data-sessions", "consent_sessions", self._listed)
        self.route("GET", "/v2/sessions/{sid}", "data_session", self._session)

    @property
    def login_url(self) -> str:
        return self.url + LOGIN_PATH

    def expire_tokens(self) -> None:
        self.tokens.clear()

    def consent(self, consent_id: str, status: str, *sessions: tuple[str, str]) -> None:
        self.consents[consent_id] = {
            "id": consent_id,
            "status": status,
            "detail": {"consentHandle": f"handle-{consent_id}", "fiTypes": ["DEPOSIT"]},
            "accountsLinked": [{"fipId": "fip-1", "maskedAccNumber": "XXXX1234"}],
            "sessions": [
                {"sessionId": s, "status": st, "created_at": "2025-11-13T06:48:43Z"}
                for s, st in sessions
            ],
        }

    def data_session(self, session_id: str, status: str, *accounts: tuple[str, str]) -> None:
        self.data_sessions[session_id] = {
            "id": session_id,
            "status": status,
            "consentId": "c1",
            "format": "json",
            "fips": [
                {
                    "fipID": "fip-1",
                    "accounts": [
                        {"linkRefNumber": ref, "maskedAccNumber": "XXXX1234", "FIstatus": fi}
                        for ref, fi in accounts
                    ],
                }
            ],
        }

    async def _login(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        if (
            request.headers.get("client") != "bridge"
            or body.get("clientID") != CLIENT_ID
            or body.get("secret") != CLIENT_SECRET
            or body.get("grant_type") != "client_credentials"
        ):
            return _error(401, "Unauthorized", "invalid client credentials")
        self._issued += 1
        token = f"token-{self._issued}"
        self.tokens.add(token)
        return web.json_response(
            {"access_token": token, "refresh_token": f"refresh-{self._issued}"}
        )

    def _auth(self, request: web.Request) -> web.StreamResponse | None:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if token not in self.tokens:
            return _error(401, "Unauthorized", "token expired or invalid")
        if request.headers.get("x-product-instance-id") != PRODUCT_INSTANCE_ID:
            return _error(403, "Forbidden", "unknown product instance")
        return None

    async def _consent(self, request: web.Request) -> web.StreamResponse:
        refused = self._auth(request)
        if refused is not None:
            return refused
        consent = self.consents.get(request.match_info["cid"])
        if consent is None:
            return _error(404, "NotFound", "consent not found")
        return web.json_response({k: v for k, v in consent.items() if k != "sessions"})

    async def _listed(self, request: web.Request) -> web.StreamResponse:
        refused = self._auth(request)
        if refused is not None:
            return refused
        consent = self.consents.get(request.match_info["cid"])
        if consent is None:
            return _error(404, "NotFound", "consent not found")
        return web.json_response({"consentId": consent["id"], "dataSessions": consent["sessions"]})

    async def _session(self, request: web.Request) -> web.StreamResponse:
        refused = self._auth(request)
        if refused is not None:
            return refused
        session = self.data_sessions.get(request.match_info["sid"])
        if session is None:
            return _error(404, "NotFound", "data session not found")
        return web.json_response(session)


def _error(status: int, code: str, message: str) -> web.StreamResponse:
    return web.json_response(envelope(status, code, message), status=status)


def envelope(status: int, code: str, message: str) -> dict[str, Any]:
    return {"errorCode": code, "errorMsg": message, "traceId": "trace-1"}
