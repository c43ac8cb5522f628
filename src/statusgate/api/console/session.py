"""Who is using the console, and the protections of its forms.

With no clients configured (which the configuration allows only on loopback) the
console is open, like the gRPC door and the JSON API. Otherwise an operator signs in
with a client token on ``/console/login``: the token goes into an ``HttpOnly``,
``SameSite=Strict`` cookie (``Secure`` over TLS), and every request is admitted from it
by the same ``AccessControl`` as the gRPC door, with that client's sources and
permissions. The cookie holds the token itself rather than a session id so that any
replica or worker of the gateway, and a restarted one, admits it without shared state;
signing out clears it. The JSON API accepts the cookie on its GET routes only (a
browser's ``EventSource`` cannot send an ``Authorization`` header), so nothing that
changes state is ever admitted by a cookie alone.

Every form that changes something (sign in, sign out, replay) carries a CSRF token that
must equal the one in a second ``SameSite=Strict`` cookie (double submit), and a
request whose ``Origin`` is another site is refused. This protects the open console too,
where there is no sign-in cookie for ``SameSite`` to hold back.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Awaitable, Callable, Mapping
from urllib.parse import urlsplit

from aiohttp import web

from statusgate.rpc.access import AccessControl, Principal

SESSION_COOKIE = "statusgate_console"
CSRF_COOKIE = "statusgate_csrf"
CSRF_FIELD = "csrf"
# The browser forgets the sign-in after this; the token itself does not expire.
SESSION_SECONDS = 12 * 3600

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_CALLER = web.RequestKey("console_caller", object)
_CSRF = web.RequestKey("console_csrf", str)
_NEW_CSRF = web.RequestKey("console_new_csrf", bool)


def cookie_credentials(request: web.Request) -> list[str]:
    """``Authorization`` values of a JSON API request: its header, or, for a GET
    without one, the console's sign-in cookie as a bearer token."""
    given = request.headers.getall("Authorization", [])
    if given or request.method != "GET":
        return list(given)
    token = request.cookies.get(SESSION_COOKIE, "")
    return [f"Bearer {token}"] if token else []


class ConsoleSession:
    def __init__(self, access: AccessControl) -> None:
        self.access = access

    @property
    def open(self) -> bool:
        return self.access.open

    def authenticate(self, token: str) -> Principal | None:
        return self.access.authenticate([("authorization", f"Bearer {token.strip()}")])

    def caller(self, request: web.Request) -> Principal | None:
        """The signed-in client (anyone, when the console is open); None otherwise."""
        if self.open:
            return self.access.authenticate(None)
        token = request.cookies.get(SESSION_COOKIE, "")
        return self.authenticate(token) if token else None

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Resolves the caller and the CSRF token of every console request; sets the
        CSRF cookie on the answer when the browser had none."""
        request[_CALLER] = self.caller(request)
        known = request.cookies.get(CSRF_COOKIE, "")
        request[_CSRF] = known or secrets.token_urlsafe(32)
        request[_NEW_CSRF] = not known
        try:
            response = await handler(request)
        except web.HTTPException as answer:
            self._set_csrf(request, answer)
            raise
        self._set_csrf(request, response)
        return response

    def _set_csrf(self, request: web.Request, response: web.StreamResponse) -> None:
        if request[_NEW_CSRF] and not response.prepared:
            response.set_cookie(
                CSRF_COOKIE,
                request[_CSRF],
                path="/console/",
                httponly=True,
                samesite="Strict",
                secure=request.secure,
            )

    def sign_in(self, request: web.Request, response: web.StreamResponse, token: str) -> None:
        response.set_cookie(
            SESSION_COOKIE,
            token.strip(),
            # "/" and not "/console/": the live updates read the JSON API's Watch stream.
            path="/",
            max_age=SESSION_SECONDS,
            httponly=True,
            samesite="Strict",
            secure=request.secure,
        )

    def sign_out(self, response: web.StreamResponse) -> None:
        response.del_cookie(SESSION_COOKIE, path="/")


def caller_of(request: web.Request) -> Principal | None:
    found = request.get(_CALLER)
    return found if isinstance(found, Principal) else None


def csrf_token(request: web.Request) -> str:
    return request[_CSRF]


def csrf_ok(request: web.Request, form: Mapping[str, object]) -> bool:
    """The form's token equals the CSRF cookie's, and the request comes from this
    site (browsers send ``Origin`` on every POST; one naming another host is refused)."""
    origin = request.headers.get("Origin")
    # The host only: behind a proxy that ends TLS the scheme seen here differs.
    if origin is not None and urlsplit(origin).netloc != request.host:
        return False
    cookie = request.cookies.get(CSRF_COOKIE, "")
    sent = form.get(CSRF_FIELD)
    return bool(cookie) and isinstance(sent, str) and hmac.compare_digest(cookie, sent)
