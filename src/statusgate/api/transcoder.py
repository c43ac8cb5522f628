"""The JSON API: every RPC served over HTTP from its ``google.api.http`` annotation.

One generic handler, built at start-up from the services' descriptors: for each RPC,
its route (``api.http_rules``), its request message class and its permission
(``rpc.access.PERMISSIONS``). A request is matched to a route, its message is built
from the path variables, the query parameters and the body (``api.fields``), the
caller is admitted from its ``Authorization`` header by the same ``AccessControl`` as
the gRPC door (on GET routes, a signed-in console's cookie stands for the header:
``api.console.session``), and the very service object the gRPC server uses is called. Unary
answers are proto3 JSON; a server-streaming RPC is handed to its Server-Sent Events
stream (``api.sse``); failures are ``google.rpc.Status`` JSON (``api.errors``).

So a new RPC with an annotation is on the JSON API without a line here, and cannot be
served by either transport without a permission.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from aiohttp import web
from google.protobuf import json_format, message_factory
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor
from google.protobuf.message import Message

from statusgate.api import errors
from statusgate.api.console.session import cookie_credentials
from statusgate.api.fields import FieldProblem, parse_body, resolve, set_path
from statusgate.api.http_rules import Binding, bindings
from statusgate.config import Permission
from statusgate.core.errors import ApiError
from statusgate.rpc.access import PERMISSIONS, AccessControl, Principal
from statusgate.store.base import StoreUnavailableError
from statusgate.telemetry import tracing

log = logging.getLogger(__name__)

JSON = "application/json"
# Unknown fields in a JSON body are ignored (proto3 JSON allows it, so a newer client
# works with an older gateway); a client that wants them refused sends this header.
STRICT_HEADER = "Statusgate-Strict"


class HttpContext:
    """What a handler may ask of an HTTP call (``rpc.handlers.CallContext``). HTTP has
    no deadline of its own: a client that stops waiting closes the connection, which
    cancels the handler."""

    def time_remaining(self) -> float | None:
        return None


class StreamHandler(Protocol):
    """Serves one server-streaming RPC over HTTP, from its built request message."""

    def __call__(
        self, request: web.Request, message: Any, service: Any, caller: Principal
    ) -> Awaitable[web.StreamResponse]: ...


@dataclass(frozen=True, slots=True)
class Route:
    binding: Binding
    method: MethodDescriptor
    request_class: type[Message]
    permission: Permission
    service: object
    access: AccessControl


@dataclass(frozen=True, slots=True)
class Service:
    """A service to serve: its descriptor, the object with one method per RPC (the one
    the gRPC server calls), and who may call it."""

    descriptor: ServiceDescriptor
    implementation: object
    access: AccessControl


class Transcoder:
    def __init__(self, services: Sequence[Service], streams: Mapping[str, StreamHandler]) -> None:
        routes: list[Route] = []
        for service in services:
            for method in service.descriptor.methods:
                if method.server_streaming and method.full_name not in streams:
                    raise ValueError(f"{method.full_name} streams but has no HTTP stream handler")
                if method.client_streaming:
                    raise ValueError(f"{method.full_name}: client streaming has no HTTP form")
                for binding in bindings(method):
                    for variable in binding.template.variables:
                        resolve(method.input_type, variable)  # a typo fails start-up
                    routes.append(
                        Route(
                            binding,
                            method,
                            message_factory.GetMessageClass(method.input_type),
                            PERMISSIONS[method.name],
                            service.implementation,
                            service.access,
                        )
                    )
        # A template with a verb (…:wait) before the ones it could be mistaken for,
        # then the more literal ones first.
        routes.sort(key=lambda r: (not r.binding.template.verb, -r.binding.template.literals))
        self.routes = routes
        self._streams = streams

    async def handle(self, request: web.Request) -> web.StreamResponse:
        try:
            found = self._match(request)
            if isinstance(found, web.StreamResponse):
                return found
            route, variables = found
            # The span (tracing on) is named by the RPC's own route, not the catch-all.
            tracing.rename(
                f"{route.binding.http_method} {route.binding.template.openapi_path}",
                {"rpc.method": route.method.full_name},
            )
            # Who asks first: an unknown caller learns nothing about the request's fields.
            caller = route.access.admit(
                [("authorization", value) for value in cookie_credentials(request)],
                route.permission,
            )
            message = route.request_class()
            self._fill(route, message, request, variables, await request.read())
            if route.method.server_streaming:
                stream = self._streams[route.method.full_name]
                return await stream(request, message, route.service, caller)
            handler: Callable[..., Awaitable[Message]] = getattr(route.service, route.method.name)
            answer = await handler(message, HttpContext(), caller)
        except FieldProblem as problem:
            return errors.response(errors.bad_request(problem.field, problem.description))
        except (ApiError, StoreUnavailableError) as error:
            return errors.response(errors.status_of(error))
        except UnicodeDecodeError:
            return errors.response(errors.bad_request("", "the path is not valid UTF-8"))
        except Exception:
            log.exception("JSON API call failed: %s %s", request.method, request.path)
            return errors.response(errors.internal())
        return web.Response(body=to_json(answer), content_type=JSON)

    def _match(self, request: web.Request) -> tuple[Route, dict[str, str]] | web.StreamResponse:
        path = request.rel_url.raw_path
        for route in self.routes:
            variables = route.binding.template.match(path)
            if variables is None:
                continue
            # The first template that matches owns the path, whatever its method.
            same = [r for r in self.routes if r.binding.template == route.binding.template]
            for candidate in same:
                if candidate.binding.http_method == request.method:
                    return candidate, variables
            allowed = sorted({r.binding.http_method for r in same})
            return errors.method_not_allowed(request.method, request.path, allowed)
        return errors.response(errors.not_found_route(request.path))

    def _fill(
        self,
        route: Route,
        message: Message,
        request: web.Request,
        variables: Mapping[str, str],
        body: bytes,
    ) -> None:
        binding = route.binding
        strict = request.headers.get(STRICT_HEADER, "").lower() in ("1", "true")
        if binding.body == "*":
            parse_body(message, body, strict=strict)
        elif binding.body:
            parse_body(getattr(message, binding.body), body, strict=strict)
        elif body.strip():
            raise FieldProblem("", f"{request.method} {binding.template.text} takes no body")
        bound = set(variables)
        for variable, value in variables.items():
            set_path(message, variable, [value])
        grouped: dict[str, list[str]] = {}
        for key, value in request.rel_url.query.items():
            grouped.setdefault(key, []).append(value)
        for key, values in grouped.items():
            if binding.body == "*":
                raise FieldProblem(key, "goes in the JSON body, not the query")
            if key in bound or (binding.body and key.split(".")[0] == binding.body):
                raise FieldProblem(key, "is already set by the path or the body")
            set_path(message, key, values)


def to_json(message: Message) -> bytes:
    return json.dumps(json_format.MessageToDict(message), separators=(",", ":")).encode()
