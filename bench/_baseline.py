"""The baseline: a bare aiohttp app that reads a webhook's body and answers 200.

It is what the gateway's front door costs before any of its own work (no JSON parsing,
no mapping, no store, no fsync, no fan-out), served by the same aiohttp and the same
asyncio loop, with the access log off like the gateway's. Run it as
``python -m bench._baseline --port PORT``; ``GET /readyz`` answers 200 once it listens.
"""

from __future__ import annotations

import argparse

from aiohttp import web


async def receive(request: web.Request) -> web.Response:
    await request.read()
    return web.Response(status=200)


async def ready(request: web.Request) -> web.Response:
    return web.Response(status=200, text="ready")


def build_app() -> web.Application:
    app = web.Application(client_max_size=1024 * 1024)
    app.router.add_post("/webhooks/{source}", receive)
    app.router.add_get("/readyz", ready)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    web.run_app(build_app(), host=args.host, port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
