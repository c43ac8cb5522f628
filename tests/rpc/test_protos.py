"""A client needs only the repository's protos: ``protos/`` and the vendored
``third_party/protos`` (plus the well-known types every protobuf toolchain ships) are
enough to decode the gateway's messages and the details of its errors."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import Message

from statusgate.v1 import status_pb2 as pb
from tests.conftest import RunningGateway
from tests.payloads import finbox_expiry

ROOT = Path(__file__).resolve().parents[2]


def buf() -> str:
    found = shutil.which("buf", path=str(Path(sys.executable).parent)) or shutil.which("buf")
    assert found, "buf (buf-bin, a dev dependency) is not installed"
    return found


@pytest.fixture(scope="module")
def client_pool(tmp_path_factory: pytest.TempPathFactory) -> descriptor_pool.DescriptorPool:
    """The descriptors a client builds from the repository's .proto files alone (buf
    reads the modules of buf.yaml: protos/ and third_party/protos), in a pool of its
    own, so nothing the gateway's Python packages registered can help."""
    out = tmp_path_factory.mktemp("protos") / "set.binpb"
    subprocess.run(
        [buf(), "build", "--as-file-descriptor-set", "-o", str(out)], cwd=ROOT, check=True
    )
    files = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes()).file
    ours = {
        str(path.relative_to(base))
        for base in (ROOT / "protos", ROOT / "third_party" / "protos")
        for path in base.rglob("*.proto")
    }
    for file in files:
        assert file.name in ours or file.name.startswith("google/protobuf/"), file.name
    assert "google/rpc/error_details.proto" in ours
    pool = descriptor_pool.DescriptorPool()
    for file in files:
        pool.Add(file)
    return pool


def decode(pool: descriptor_pool.DescriptorPool, full_name: str, data: bytes) -> Message:
    message = message_factory.GetMessageClass(pool.FindMessageTypeByName(full_name))()
    message.ParseFromString(data)
    return message


def error_details(pool: descriptor_pool.DescriptorPool, error: grpc.aio.AioRpcError) -> Message:
    """The ErrorInfo of an error, as a client without the gateway's code decodes it."""
    trailers = dict(error.trailing_metadata() or ())
    status = decode(pool, "google.rpc.Status", trailers["grpc-status-details-bin"])
    [detail] = status.details  # type: ignore[attr-defined]
    type_name = detail.type_url.rsplit("/", 1)[-1]
    assert type_name == "google.rpc.ErrorInfo"
    return decode(pool, type_name, detail.value)


async def test_error_info_decodes_from_the_repository_protos(
    gw: RunningGateway, client_pool: descriptor_pool.DescriptorPool
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await gw.stub.GetStatus(pb.GetStatusRequest(name="sources/finbox/sessions/none"))
    info = error_details(client_pool, raised.value)
    assert (info.reason, info.domain) == ("STATUS_NOT_FOUND", "statusgate.v1")  # type: ignore[attr-defined]

    await gw.post("finbox", finbox_expiry("s1"))
    request = pb.WatchStatusesRequest(after_sequence=99)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await anext(aiter(gw.stub.WatchStatuses(request)))
    info = error_details(client_pool, raised.value)
    assert info.reason == "SEQUENCE_OUT_OF_RANGE"  # type: ignore[attr-defined]
    assert dict(info.metadata) == {"last_sequence": "1"}  # type: ignore[attr-defined]


async def test_statuses_decode_from_the_repository_protos(
    gw: RunningGateway, client_pool: descriptor_pool.DescriptorPool
) -> None:
    await gw.post("finbox", finbox_expiry("s1"))
    status = await gw.stub.GetStatus(pb.GetStatusRequest(name="sources/finbox/sessions/s1"))
    decoded = decode(client_pool, "statusgate.v1.Status", status.SerializeToString())
    assert decoded.name == status.name  # type: ignore[attr-defined]
    state = client_pool.FindEnumTypeByName("statusgate.v1.State")
    assert state.values_by_number[decoded.state].name == "STATE_EXPIRED"  # type: ignore[attr-defined]
