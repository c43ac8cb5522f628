"""Server reflection in both of its versions: ``grpc.reflection.v1`` and ``v1alpha``.

Current clients (grpcurl, buf curl, grpc-js, Postman) ask ``v1`` first; older ones know
only ``v1alpha``, the one version grpcio-reflection implements. The two protocols are
the same messages under two package names (``v1`` is ``v1alpha`` renamed, field for
field), so one servicer answers both: ``v1`` calls are routed to it with the
``v1alpha`` message classes, which encode the very same bytes.

So that a client reflecting on the reflection service itself finds ``v1`` too, its
file descriptor (the ``v1alpha`` one with the package renamed) joins the descriptor
pool the servicer answers from.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_reflection.v1alpha import reflection, reflection_pb2, reflection_pb2_grpc

V1ALPHA_SERVICE: str = reflection.SERVICE_NAME
V1_SERVICE = "grpc.reflection.v1.ServerReflection"
_V1ALPHA_PACKAGE = "grpc.reflection.v1alpha"
_V1_PACKAGE = "grpc.reflection.v1"
_V1_FILE = "grpc/reflection/v1/reflection.proto"


def enable_reflection(server: grpc.aio.Server, services: Iterable[str]) -> None:
    """Serve reflection (both versions) for ``services`` and for itself."""
    pool = descriptor_pool.Default()
    _add_v1_descriptor(pool)
    names = (*services, V1_SERVICE, V1ALPHA_SERVICE)
    # The asyncio servicer; grpc-stubs do not declare ``reflection.aio``.
    servicer = reflection.aio.ReflectionServicer(names, pool=pool)  # type: ignore[attr-defined]
    reflection_pb2_grpc.add_ServerReflectionServicer_to_server(servicer, server)
    v1 = grpc.stream_stream_rpc_method_handler(
        servicer.ServerReflectionInfo,
        request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
        response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
    )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(V1_SERVICE, {"ServerReflectionInfo": v1}),)
    )


def _add_v1_descriptor(pool: descriptor_pool.DescriptorPool) -> None:
    try:
        pool.FindFileByName(_V1_FILE)
        return  # registered already (a second server in this process, or by grpc itself)
    except KeyError:
        pass
    proto = descriptor_pb2.FileDescriptorProto()
    reflection_pb2.DESCRIPTOR.CopyToProto(proto)
    proto.name = _V1_FILE
    proto.package = _V1_PACKAGE
    proto.options.Clear()  # v1alpha's are its own: deprecated, its Java and Go packages
    old, new = f".{_V1ALPHA_PACKAGE}.", f".{_V1_PACKAGE}."
    for message in proto.message_type:
        _rename_types(message, old, new)
    for service in proto.service:
        for method in service.method:
            method.input_type = method.input_type.replace(old, new, 1)
            method.output_type = method.output_type.replace(old, new, 1)
    pool.AddSerializedFile(proto.SerializeToString())


def _rename_types(message: Any, old: str, new: str) -> None:
    for field in message.field:
        if field.type_name.startswith(old):
            field.type_name = new + field.type_name.removeprefix(old)
    for nested in message.nested_type:
        _rename_types(nested, old, new)
