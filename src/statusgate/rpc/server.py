"""The grpc.aio server: StatusService, AdminService, health and reflection (v1 and
v1alpha) on one port, every call counted (``telemetry.grpc_metrics``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grpc
from google.protobuf import message_factory
from google.protobuf.descriptor import ServiceDescriptor
from google.protobuf.message import Message
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from statusgate.config import GrpcTls, check_bindable
from statusgate.rpc.access import PERMISSIONS, AccessControl
from statusgate.rpc.admin import AdminService
from statusgate.rpc.handlers import server_streaming, unary
from statusgate.rpc.health import HealthService
from statusgate.rpc.reflection import enable_reflection
from statusgate.rpc.service import StatusService
from statusgate.telemetry import tracing
from statusgate.telemetry.grpc_metrics import CallMetrics
from statusgate.telemetry.metrics import Metrics
from statusgate.v1 import admin_service_pb2, status_pb2, status_service_pb2

SERVICE_NAME = status_pb2.DESCRIPTOR.package + ".StatusService"
STATUS_SERVICE = status_service_pb2.DESCRIPTOR.services_by_name["StatusService"]
ADMIN_SERVICE = admin_service_pb2.DESCRIPTOR.services_by_name["AdminService"]
MAX_MESSAGE_BYTES = 16 * 1024 * 1024
MAX_PENDING_CALLS = 100_000

# Keepalive pings hold idle Watch streams open through load balancers that drop quiet
# connections, and let the server notice clients that vanished.
_OPTIONS = [
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
    ("grpc.http2.max_pings_without_data", 0),
    # grpc sets SO_REUSEPORT by default, which lets a second, independent gateway bind
    # the same port and silently take half the clients. A busy port must fail start-up.
    # (Only the workers of one gateway share it: see ``RpcServer``.)
    ("grpc.so_reuseport", 0),
    # Calls that arrived but that grpc.aio has not yet picked up wait in a queue of grpc's
    # own; past 1,000 of them (the default soft limit) grpc drops some at random with
    # CANCELLED and logs nothing, e.g. when 2,000 Watch streams open at once. The
    # gateway's limits (a client's max_watch_streams) refuse calls with a status that
    # says why; this queue must never decide for them.
    ("grpc.server.max_pending_requests", MAX_PENDING_CALLS),
    ("grpc.server.max_pending_requests_hard_limit", 2 * MAX_PENDING_CALLS),
]


class RpcServer:
    """``reuse_port``: join the port the supervisor of this worker holds (it bound it
    first, alone, so no other gateway can be on it; see ``supervisor``)."""

    def __init__(
        self,
        service: StatusService,
        admin: AdminService | None = None,
        *,
        reuse_port: bool = False,
        metrics: Metrics | None = None,
    ) -> None:
        options = [
            (key, 1 if key == "grpc.so_reuseport" and reuse_port else value)
            for key, value in _OPTIONS
        ]
        # A server span per call (tracing on; off, handlers pick up just the caller's
        # traceparent), and every call, whichever service serves it, counted by method
        # and code.
        interceptors: list[grpc.aio.ServerInterceptor[Any, Any]] = tracing.grpc_interceptors()
        if metrics is not None:
            interceptors.append(CallMetrics(metrics))
        self.server = grpc.aio.server(options=options, interceptors=interceptors or None)
        self._reuse_port = reuse_port
        handlers = [service_handler(STATUS_SERVICE, service, service.access)]
        names = [SERVICE_NAME]
        if admin is not None:
            handlers.append(service_handler(ADMIN_SERVICE, admin, admin.access))
            names.append(ADMIN_SERVICE.full_name)
        self.server.add_generic_rpc_handlers(handlers)
        self.health = HealthService()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        enable_reflection(self.server, (*names, health.SERVICE_NAME))
        self.port = 0

    async def start(self, address: str, tls: GrpcTls | None = None) -> int:
        """Listen on HOST:PORT (port 0 picks a free one), with TLS when configured;
        returns the bound port. Raises OSError saying why it cannot."""
        credentials = server_credentials(tls) if tls is not None else None
        # Tried first with a plain socket: grpc's own failure to bind is a bare
        # RuntimeError, and its C core prints a line of its own to stderr, outside the
        # gateway's log format. (A worker's supervisor holds the port: not for it.)
        if not self._reuse_port:
            check_bindable("gRPC", address, "--grpc")
        try:
            if credentials is None:
                self.port = self.server.add_insecure_port(address)
            else:
                self.port = self.server.add_secure_port(address, credentials)
        except RuntimeError:  # grpc's "Failed to bind": in use, or not an address here
            self.port = 0
        if self.port == 0:
            raise OSError(
                f"cannot listen for gRPC on {address}: the address is in use or unavailable"
            )
        await self.server.start()
        await self.set_serving(True)
        return self.port

    async def set_serving(self, serving: bool) -> None:
        state = (
            health_pb2.HealthCheckResponse.SERVING
            if serving
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for service in ("", SERVICE_NAME):
            await self.health.set(service, state)

    async def stop(self, grace: float) -> None:
        # NOT_SERVING first, and held-open health Watch streams ended, so the grace
        # period is spent on the calls in flight, not on a balancer's health stream.
        await self.health.shut_down()
        await self.server.stop(grace)


def server_credentials(tls: GrpcTls) -> grpc.ServerCredentials:
    """TLS from PEM files; with a client CA, clients must present a certificate it
    signed (mutual TLS). Raises OSError naming the file that cannot be read."""
    key_and_chain = (_pem("key_file", tls.key_file), _pem("cert_file", tls.cert_file))
    client_ca = _pem("client_ca_file", tls.client_ca_file) if tls.client_ca_file else None
    return grpc.ssl_server_credentials(
        [key_and_chain], root_certificates=client_ca, require_client_auth=client_ca is not None
    )


def _pem(setting: str, path: Path) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as error:
        raise OSError(
            error.errno, f"cannot read grpc_tls.{setting} {path}: {error.strerror or error}"
        ) from None


def service_handler(
    descriptor: ServiceDescriptor, service: object, access: AccessControl
) -> grpc.GenericRpcHandler[Any, Any]:
    """A service's handlers (``service`` has a method per RPC of ``descriptor``), built
    from its descriptor like the generated ``add_*Servicer_to_server``, with two
    differences. Each goes through
    ``rpc.handlers``, which admits the caller for the method's permission
    (``rpc.access.PERMISSIONS``) and turns failures into gRPC statuses. And a response
    may also be bytes already serialized, so that Watch streams send each event batch
    encoded once for all subscribers (``rpc.wire.EventEncoder``) instead of once per
    subscriber."""
    handlers = {}
    for method in descriptor.methods:
        request_type = message_factory.GetMessageClass(method.input_type)
        handler = getattr(service, method.name)
        permission = PERMISSIONS[method.name]
        if method.server_streaming:
            handlers[method.name] = grpc.unary_stream_rpc_method_handler(
                server_streaming(handler, access, permission),
                request_deserializer=request_type.FromString,
                response_serializer=_serialize,
            )
        else:
            handlers[method.name] = grpc.unary_unary_rpc_method_handler(
                unary(handler, access, permission),
                request_deserializer=request_type.FromString,
                response_serializer=_serialize,
            )
    return grpc.method_handlers_generic_handler(descriptor.full_name, handlers)


def _serialize(message: Message | bytes) -> bytes:
    return message if isinstance(message, bytes) else message.SerializeToString()
