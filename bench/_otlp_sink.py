"""A local OTLP/HTTP trace sink for ``bench_tracing``: ``POST /v1/traces`` decoded as a
collector would (``ExportTraceServiceRequest``), spans counted, answered 200. Run as
``python -m bench._otlp_sink --port PORT``; ``GET /readyz`` answers 200 once it listens,
``GET /count`` with the number of spans received so far."""

from __future__ import annotations

import argparse

from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

_ANSWER = ExportTraceServiceResponse().SerializeToString()


def build_app() -> web.Application:
    received = [0]

    async def traces(request: web.Request) -> web.Response:
        export = ExportTraceServiceRequest.FromString(await request.read())
        received[0] += sum(
            len(scope.spans) for spans in export.resource_spans for scope in spans.scope_spans
        )
        return web.Response(body=_ANSWER, content_type="application/x-protobuf")

    async def count(_: web.Request) -> web.Response:
        return web.Response(text=str(received[0]))

    async def ready(_: web.Request) -> web.Response:
        return web.Response(text="ready")

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/v1/traces", traces)
    app.router.add_get("/count", count)
    app.router.add_get("/readyz", ready)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    web.run_app(build_app(), host="127.0.0.1", port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
