"""A fake FinBox BankConnect API, as its documentation describes it: the session and
entity flows."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.server import FakeServer, check_headers

API_KEY = "test-finbox-api-key"
SERVER_HASH = "test-finbox-server-hash"


@dataclass
class FinboxSession:
    upload_status: str = "NO UPLOADS"
    # As session_upload_status lists them (account numbers unmasked).
    accounts: list[dict[str, Any]] = field(default_factory=list)
    # None: processing not requested (400); else "processing" / "completed" / "failed".
    progress: str | None = None
    statements: list[dict[str, Any]] = field(default_factory=list)
    # session_status accounts; None while processing is not completed (400).
    verdicts: list[dict[str, Any]] | None = None


class FakeFinbox(FakeServer):
    def __init__(self) -> None:
        super().__init__()
        self.sessions: dict[str, FinboxSession] = {}
        self.missing: dict[str, int] = {}  # session id -> 404 or 410
        self.entity_progress: dict[str, list[dict[str, Any]]] = {}
        self.payloads: dict[str, list[dict[str, Any]]] = {}  # link id -> newest first
        self.webhooks: dict[str, dict[str, Any]] = {}
        sd = "/session_data/{sid}"
        self.route("GET", sd + "/session_upload_status/", "upload_status", self._upload_status)
        self.route("GET", sd + "/progress/", "progress", self._progress)
        self.route("GET", sd + "/session_status/", "session_status", self._session_status)
        self.route("GET", "/entity/webhook_payloads/", "webhook_payloads", self._webhook_payloads)
        self.route("GET", "/entity/{eid}/transactions/", "entity_analysis", self._analysis)
        self.route("POST", "/session_data/update_webhook/", "session_webhook", self._register)
        self.route("POST", "/entity/update_webhook/", "entity_webhook", self._register)

    def uploaded(self, session_id: str, *accounts: tuple[str, str]) -> FinboxSession:
        """Upload completed with (account_id, PARTIAL|COMPLETED) accounts."""
        session = self.sessions.setdefault(session_id, FinboxSession())
        session.upload_status = "COMPLETED"
        session.accounts = [
            {
                "account_id": account_id,
                "account_number": "50100123453135",
                "bank_name": "HDFC",
                "account_status": status,
                "months": ["2025-05", "2025-06"],
                "missing_data": [],
                "last_updated_at": "2025-11-13 06:48:44",
                "statements": [
                    {
                        "statement_id": f"st-{account_id}",
                        "statement_status": "completed",
                        "error_code": None,
                        "error_message": None,
                        "source": "pdf",
                    }
                ],
            }
            for account_id, status in accounts
        ]
        return session

    def processing(self, session_id: str, state: str = "processing") -> FinboxSession:
        session = self.sessions.setdefault(session_id, FinboxSession())
        session.progress = state
        session.statements = [
            {
                "statement_id": f"st-{account['account_id']}",
                "identity_status": "completed",
                "transaction_status": state if state != "failed" else "failed",
                "processing_status": state,
                "fraud_status": "completed",
                "message": "",
                "source": "pdf",
            }
            for account in session.accounts
        ]
        return session

    def processed(self, session_id: str, *verdicts: tuple[str, str]) -> FinboxSession:
        """Processing completed, with (account_id, completed|failed) verdicts."""
        session = self.processing(session_id, "completed")
        session.verdicts = [
            {
                "account_id": account_id,
                "bank_name": "HDFC",
                "account_status": status,
                "error_code": None if status == "completed" else "BALANCE_MISMATCH",
                "error_message": None if status == "completed" else "balances do not match",
            }
            for account_id, status in verdicts
        ]
        return session

    # --- handlers --------------------------------------------------------------------------

    def _auth(self, request: web.Request) -> web.StreamResponse | None:
        return check_headers(request, {"x-api-key": API_KEY, "server-hash": SERVER_HASH})

    def _session(
        self, request: web.Request
    ) -> tuple[FinboxSession | None, web.StreamResponse | None]:
        refused = self._auth(request)
        if refused is not None:
            return None, refused
        session_id = request.match_info["sid"]
        status = self.missing.get(session_id)
        if status == 404:
            return None, _error(404, "SESSION_NOT_FOUND", "session not found")
        if status == 410:
            return None, _error(410, "SESSION_DELETED", "session was deleted")
        # FinBox documents it: a session that cannot be found also reports NO UPLOADS.
        return self.sessions.get(session_id, FinboxSession()), None

    async def _upload_status(self, request: web.Request) -> web.StreamResponse:
        session, refused = self._session(request)
        if session is None:
            assert refused is not None
            return refused
        return web.json_response(
            {
                "upload_status": session.upload_status,
                "session_expiry_timestamp": "2025-11-20 06:48:44",
                "session_date_range": {"from_date": "01/05/2025", "to_date": "31/10/2025"},
                "accounts": session.accounts,
            }
        )

    async def _progress(self, request: web.Request) -> web.StreamResponse:
        session, refused = self._session(request)
        if session is None:
            assert refused is not None
            return refused
        if session.progress is None:
            return _error(400, "PROCESSING_NOT_REQUESTED", "processing was not requested")
        return web.json_response(
            {"session_progress": session.progress, "progress": session.statements}
        )

    async def _session_status(self, request: web.Request) -> web.StreamResponse:
        session, refused = self._session(request)
        if session is None:
            assert refused is not None
            return refused
        if session.verdicts is None:
            return _error(400, "PROCESSING_NOT_COMPLETED", "processing has not completed")
        return web.json_response(
            {"session_id": request.match_info["sid"], "accounts": session.verdicts}
        )

    async def _webhook_payloads(self, request: web.Request) -> web.StreamResponse:
        refused = self._auth(request)
        if refused is not None:
            return refused
        return web.json_response(
            {"payloads": self.payloads.get(request.query.get("link_id", ""), [])}
        )

    async def _analysis(self, request: web.Request) -> web.StreamResponse:
        refused = self._auth(request)
        if refused is not None:
            return refused
        entity_id = request.match_info["eid"]
        if entity_id not in self.entity_progress:
            return _error(404, "ENTITY_NOT_FOUND", "entity not found")
        return web.json_response({"progress": self.entity_progress[entity_id], "transactions": []})

    async def _register(self, request: web.Request) -> web.StreamResponse:
        refused = self._auth(request)
        if refused is not None:
            return refused
        self.webhooks[request.path] = await request.json()
        return web.json_response({"message": "success"})


def _error(status: int, code: str, message: str) -> web.StreamResponse:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


def envelope(status: int, code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}
