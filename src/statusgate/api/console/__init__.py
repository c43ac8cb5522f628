"""The operator console on the API listener (``/console/``): see ``console.app``."""

from aiohttp import web

from statusgate.api.console import deliveries, pages
from statusgate.api.console.app import STATIC, Console
from statusgate.api.console.overview import Overview


def build_console_app(console: Console) -> web.Application:
    """The console as an application to mount at ``/console``."""
    app = web.Application(middlewares=[console.headers, console.session.middleware, console.errors])
    pages.add_routes(app, console)
    deliveries.add_routes(app, console)
    app.router.add_get("/login", console.login_form)
    app.router.add_post("/login", console.login)
    app.router.add_post("/logout", console.logout)
    app.router.add_static("/static/", STATIC)
    return app


__all__ = ["Console", "Overview", "build_console_app"]
