"""The operator console, ``/console/`` on the API listener: server-rendered pages over the
very service objects the gRPC door and the JSON API call, with the caller's sources and
permissions (``rpc.access.PERMISSIONS``), so the console can show nothing that the
caller could not ask for over gRPC.

Pages work with JavaScript off (links, GET forms for filters, POST then redirect for
what changes something); with it on, ``static/console.js`` follows the JSON API's
Watch stream (Server-Sent Events) and re-fetches the page's server-rendered parts when
an event arrives, so every value is escaped and masked by the same templates either
way. Templates are Jinja2 with autoescape on; every answer carries a Content Security
Policy that allows only the console's own script and style.

The routes: ``overview`` (``/console/``), ``search``, ``statuses/{name}``, ``feed``
(``pages``), ``deliveries``, ``deliveries/{id}`` and its ``replay`` (``deliveries``),
``login`` and ``logout`` (here).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from importlib import metadata, resources
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jinja2
from aiohttp import web
from google.protobuf.message import Message

from statusgate.api.console import present
from statusgate.api.console.overview import Overview
from statusgate.api.console.session import (
    CSRF_FIELD,
    ConsoleSession,
    Handler,
    caller_of,
    csrf_ok,
    csrf_token,
)
from statusgate.api.errors import HTTP_STATUS, status_of
from statusgate.api.fields import FieldProblem
from statusgate.core.errors import ApiError, Reason
from statusgate.rpc.access import PERMISSIONS, Principal
from statusgate.rpc.admin import AdminService
from statusgate.rpc.service import StatusService
from statusgate.store.base import Store, StoreUnavailableError

log = logging.getLogger(__name__)

PREFIX = "/console"
STATIC = Path(str(resources.files("statusgate.api.console").joinpath("static")))

# Only the console's own files; no inline script or style, no frames, forms post home.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # Resource names are in the URLs: never sent to another site.
    "Referrer-Policy": "same-origin",
}


class _NoDeadline:
    """The console's calls have no deadline: a browser that leaves cancels them."""

    def time_remaining(self) -> float | None:
        return None


class Page(Exception):
    """Stop and answer with the error page: ``status`` and what to tell the person."""

    def __init__(self, status: int, title: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.title = title
        self.message = message


class Console:
    def __init__(
        self,
        *,
        status: StatusService,
        admin: AdminService,
        overview: Overview,
        store: Store,
        account_fields: Mapping[str, frozenset[str]],
    ) -> None:
        self.status = status
        self.admin = admin
        self.overview = overview
        self.store = store
        # Source id -> the payload keys its provider declares as account numbers.
        self.account_fields = dict(account_fields)
        self.session = ConsoleSession(status.access)
        self.templates = jinja2.Environment(
            loader=jinja2.PackageLoader("statusgate.api.console", "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.templates.globals.update(p=present, href=present.href, static=_static_url)

    # --- calls ------------------------------------------------------------------------

    def permit(self, caller: Principal, method: str) -> None:
        """Raise PERMISSION_DENIED unless ``caller`` may call ``method`` (an RPC)."""
        permission = PERMISSIONS[method]
        if not caller.may(permission):
            raise ApiError(
                Reason.PERMISSION_DENIED,
                f"client {caller.client_id!r} lacks the {permission!r} permission",
            )

    async def call(self, caller: Principal, method: str, request: Message) -> Any:
        """An RPC of either service, for ``caller``, held to its permission."""
        self.permit(caller, method)
        service = self.admin if hasattr(self.admin, method) else self.status
        return await getattr(service, method)(request, _NoDeadline(), caller)

    def caller(self, request: web.Request) -> Principal:
        """The signed-in caller, or a redirect to the sign-in form."""
        caller = caller_of(request)
        if caller is None:
            raise web.HTTPSeeOther(f"{PREFIX}/login?{urlencode({'next': request.path_qs})}")
        return caller

    # --- answers ----------------------------------------------------------------------

    def render(
        self, request: web.Request, template: str, *, http_status: int = 200, **context: Any
    ) -> web.Response:
        caller = caller_of(request)
        text = self.templates.get_template(template).render(
            caller=caller,
            signed_in=caller is not None and not self.session.open,
            admin=caller is not None and caller.may("admin"),
            csrf=csrf_token(request),
            csrf_field=CSRF_FIELD,
            query=context.pop("query", ""),
            here=request.path_qs,
            status_code=http_status,
            sequence=self.overview.last_sequence,
            **context,
        )
        return web.Response(text=text, status=http_status, content_type="text/html")

    @web.middleware
    async def headers(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            response = await handler(request)
        except web.HTTPException as answer:
            answer.headers.update(SECURITY_HEADERS)
            raise
        response.headers.update(SECURITY_HEADERS)
        if not request.path.startswith(f"{PREFIX}/static/"):
            response.headers["Cache-Control"] = "no-store"
        return response

    @web.middleware
    async def errors(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Every failure as a page: a gRPC status by its HTTP code (AIP-193), an
        unknown route as 404."""
        try:
            return await handler(request)
        except Page as page:
            return self._error(request, page.status, page.title, page.message)
        except FieldProblem as problem:
            message = f"{problem.field}: {problem.description}"
            return self._error(request, 400, "Bad request", message)
        except (ApiError, StoreUnavailableError) as error:
            found = status_of(error)
            code = HTTP_STATUS.get(found.code, 500)
            return self._error(request, code, _TITLES.get(code, "Error"), found.message)
        except web.HTTPNotFound:
            return self._error(request, 404, "Not found", f"There is no page {request.path}.")
        except web.HTTPMethodNotAllowed as answer:
            return self._error(
                request, 405, "Method not allowed", f"{request.path} takes {answer.allowed_methods}"
            )
        except web.HTTPException:
            raise
        except Exception:
            log.exception("console page failed: %s %s", request.method, request.path)
            return self._error(request, 500, "Internal error", "The page could not be built.")

    def _error(self, request: web.Request, status: int, title: str, message: str) -> web.Response:
        return self.render(request, "error.html", http_status=status, title=title, message=message)

    # --- signing in -------------------------------------------------------------------

    async def login_form(self, request: web.Request) -> web.StreamResponse:
        if self.session.open:
            raise web.HTTPSeeOther(f"{PREFIX}/")
        return self.render(request, "login.html", next=_next(request.query.get("next")))

    async def login(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        target = _next(form.get("next"))
        if self.session.open:
            raise web.HTTPSeeOther(target)
        if not csrf_ok(request, form):
            raise Page(403, "Forbidden", _EXPIRED)
        token = form.get("token")
        caller = self.session.authenticate(token) if isinstance(token, str) and token else None
        if caller is None:
            return self.render(
                request,
                "login.html",
                http_status=401,
                next=target,
                problem="That token is not one of this gateway's clients.",
            )
        log.info("console sign-in", extra={"client": caller.client_id})
        answer = web.HTTPSeeOther(target)
        self.session.sign_in(request, answer, token if isinstance(token, str) else "")
        raise answer

    async def logout(self, request: web.Request) -> web.StreamResponse:
        if not csrf_ok(request, await request.post()):
            raise Page(403, "Forbidden", _EXPIRED)
        answer = web.HTTPSeeOther(f"{PREFIX}/login")
        self.session.sign_out(answer)
        raise answer

    async def check_form(self, request: web.Request) -> Mapping[str, Any]:
        """A posted form whose CSRF token holds, or the 403 page."""
        form = await request.post()
        if not csrf_ok(request, form):
            raise Page(403, "Forbidden", _EXPIRED)
        return form


_EXPIRED = (
    "The form was not sent from this console page, or it is too old: reload the page and try again."
)
_TITLES = {
    400: "Bad request",
    401: "Sign-in needed",
    403: "Forbidden",
    404: "Not found",
    409: "Conflict",
    429: "Too many requests",
    501: "Not implemented",
    503: "Unavailable",
    504: "Timed out",
}


def _next(value: object) -> str:
    """Where to go after signing in: a console page only (never another site)."""
    if isinstance(value, str) and value.startswith(f"{PREFIX}/") and "//" not in value:
        return value
    return f"{PREFIX}/"


_VERSION = metadata.version("statusgate")


def _static_url(name: str) -> str:
    # The version in the URL: a new release is never served an old cached file.
    return f"{PREFIX}/static/{name}?v={_VERSION}"
