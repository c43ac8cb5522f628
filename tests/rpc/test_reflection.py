"""Server reflection, both versions, driven like a client that has no .proto file:
it learns the services and their descriptors, then calls StatusService with message
classes built from what reflection answered."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from grpc_reflection.v1alpha import reflection_pb2

from tests.conftest import RunningGateway
from tests.payloads import finbox_expiry

# v1 is v1alpha renamed, message for message: the same classes speak both on the wire.
Request = reflection_pb2.ServerReflectionRequest
Response = reflection_pb2.ServerReflectionResponse
VERSIONS = ("grpc.reflection.v1", "grpc.reflection.v1alpha")


async def ask(gw: RunningGateway, version: str, request: Request) -> Response:
    call = gw.channel.stream_stream(
        f"/{version}.ServerReflection/ServerReflectionInfo",
        request_serializer=Request.SerializeToString,
        response_deserializer=Response.FromString,
    )

    async def requests() -> AsyncIterator[Request]:
        yield request

    async for answer in call(requests()):  # type: ignore[arg-type]
        return answer  # type: ignore[no-any-return]
    raise AssertionError("no answer")


async def files_for(gw: RunningGateway, version: str, symbol: str) -> list[bytes]:
    answer = await ask(gw, version, Request(file_containing_symbol=symbol))
    assert answer.WhichOneof("message_response") == "file_descriptor_response", answer
    return list(answer.file_descriptor_response.file_descriptor_proto)


@pytest.mark.parametrize("version", VERSIONS)
async def test_both_versions_list_the_services(gw: RunningGateway, version: str) -> None:
    answer = await ask(gw, version, Request(list_services=""))
    services = {s.name for s in answer.list_services_response.service}
    assert services == {
        "statusgate.v1.StatusService",
        "statusgate.v1.AdminService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
    }


@pytest.mark.parametrize("version", VERSIONS)
async def test_a_reflection_only_client_calls_the_service(gw: RunningGateway, version: str) -> None:
    await gw.post("finbox", finbox_expiry("r1"))
    pool = descriptor_pool.DescriptorPool()
    pending = {
        proto.name: proto
        for proto in map(
            descriptor_pb2.FileDescriptorProto.FromString,
            await files_for(gw, version, "statusgate.v1.StatusService"),
        )
    }
    # Dependencies first, as a client must add them.
    while pending:
        ready = [p for p in pending.values() if all(d not in pending for d in p.dependency)]
        assert ready, "circular or missing dependencies"
        for proto in ready:
            pool.Add(proto)
            del pending[proto.name]
    service = pool.FindServiceByName("statusgate.v1.StatusService")
    method = service.methods_by_name["GetStatus"]
    request_class = message_factory.GetMessageClass(method.input_type)
    response_class = message_factory.GetMessageClass(method.output_type)
    get = gw.channel.unary_unary(
        f"/{service.full_name}/{method.name}",
        request_serializer=request_class.SerializeToString,
        response_deserializer=response_class.FromString,
    )
    status = await get(request_class(name="sources/finbox/sessions/r1"))
    assert status.name == "sources/finbox/sessions/r1"
    assert (
        status.DESCRIPTOR.fields_by_name["state"].enum_type.values_by_number[status.state].name
        == "STATE_EXPIRED"
    )


async def test_v1_describes_itself_as_v1(gw: RunningGateway) -> None:
    [raw] = await files_for(gw, "grpc.reflection.v1", "grpc.reflection.v1.ServerReflection")
    proto = descriptor_pb2.FileDescriptorProto.FromString(raw)
    assert (proto.name, proto.package) == (
        "grpc/reflection/v1/reflection.proto",
        "grpc.reflection.v1",
    )
    [service] = proto.service
    [method] = service.method
    assert method.input_type == ".grpc.reflection.v1.ServerReflectionRequest"
    assert all(
        not f.type_name or f.type_name.startswith(".grpc.reflection.v1.")
        for m in proto.message_type
        for f in m.field
    )


async def test_an_unknown_symbol_is_not_found(gw: RunningGateway) -> None:
    answer = await ask(gw, "grpc.reflection.v1", Request(file_containing_symbol="no.Such"))
    assert answer.error_response.error_code == grpc.StatusCode.NOT_FOUND.value[0]
