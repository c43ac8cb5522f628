"""A fake banqware PSD2 Hub API, as its documentation describes it: session status and
details.

The session is named by the ``sessionId`` query parameter (the gateway's documented
assumption); the auth header is ``x-api-key``.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tests.fakes.server import FakeServer, check_headers

API_KEY = "test-banqware-key"


class FakeBanqware(FakeServer):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sessions: dict[str, dict[str, Any]] = {}
        self.route("GET", "/api/session/status", "status", self._status)
        self.route("GET", "/api/session/status/details", "details", self._details)

    def session(
        self, session_id: str, stage: str, status: str, *accounts: str, count: str | None = None
    ) -> None:
        self.sessions[session_id] = {
            "stage": stage,
            "status": status,
            "accounts": [{"accountNumber": a, "accountType": "Current"} for a in accounts],
            "count": count,
        }

    def _lookup(
        self, request: web.Request
    ) -> tuple[dict[str, Any] | None, web.StreamResponse | None]:
        refused = check_headers(request, {"x-api-key": API_KEY})
        if refused is not None:
            return None, refused
        session = self.sessions.get(request.query.get("sessionId", ""))
        if session is None:
            return None, web.json_response(envelope(404, "404", "Session not found"), status=404)
        return session, None

    async def _status(self, request: web.Request) -> web.StreamResponse:
        session, refused = self._lookup(request)
        if session is None:
            assert refused is not None
            return refused
        data = {"stage": session["stage"], "status": session["status"]}
        if session["count"]:
            data["accounts"] = session["count"]
        return web.json_response({"success": True, "data": data})

    async def _details(self, request: web.Request) -> web.StreamResponse:
        session, refused = self._lookup(request)
        if session is None:
            assert refused is not None
            return refused
        return web.json_response({"success": True, "data": {"accounts": session["accounts"]}})


def envelope(status: int, code: str, message: str) -> dict[str, Any]:
    return {"errorCode": status, "errorMessage": message}
