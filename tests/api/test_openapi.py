"""The committed OpenAPI document is what the generator makes of today's protos, and it
describes every annotated route."""

from __future__ import annotations

import json
import os
from pathlib import Path

import grpc_tools
from google.protobuf import descriptor_pb2
from grpc_tools import protoc

from statusgate.api import openapi
from statusgate.api.server import openapi_document

ROOT = Path(__file__).parent.parent.parent


def descriptor_set(tmp_path: Path) -> descriptor_pb2.FileDescriptorSet:
    out = tmp_path / "descriptors.pb"
    well_known = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
    code = protoc.main(
        [
            "protoc",
            f"-I{ROOT / 'protos'}",
            f"-I{ROOT / 'third_party' / 'protos'}",
            f"-I{well_known}",
            "--include_imports",
            "--include_source_info",
            f"--descriptor_set_out={out}",
            str(ROOT / "protos/statusgate/v1/status_service.proto"),
            str(ROOT / "protos/statusgate/v1/admin_service.proto"),
        ]
    )
    assert code == 0
    return descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())


def test_the_committed_document_is_current(tmp_path: Path) -> None:
    generated = openapi.render(descriptor_set(tmp_path))
    assert openapi_document().decode() == generated, "run scripts/generate.sh and commit"


def test_it_describes_every_route_with_its_parameters() -> None:
    document = json.loads(openapi_document())
    operations = {
        (path, method): operation
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
    }
    assert set(operations) == {
        ("/v1/{name}", "get"),
        ("/v1/statuses:batchGet", "get"),
        ("/v1/statuses", "get"),
        ("/v1/{name}:listEvents", "get"),
        ("/v1/statuses:watch", "get"),
        ("/v1/statuses:poll", "post"),
        ("/v1/{name}:wait", "post"),
        ("/v1/deliveries", "get"),
        ("/v1/deliveries/{id}", "get"),
        ("/v1/deliveries:replay", "post"),
    }
    listed = {p["name"] for p in operations[("/v1/deliveries", "get")]["parameters"]}
    assert {"filter.verdicts", "filter.received_after", "filter.name", "page_token"} <= listed
    watch = operations[("/v1/statuses:watch", "get")]["responses"]["200"]["content"]
    assert "text/event-stream" in watch
    schemas = document["components"]["schemas"]
    assert schemas["Delivery"]["properties"]["receivedAt"]["format"] == "date-time"
    assert schemas["StatusEvent"]["properties"]["sequence"] == {
        "type": "string",
        "format": "int64",
        "description": "Gateway-wide, strictly increasing, without gaps.",
    }
    assert "DELIVERY_VERDICT_REJECTED" in schemas["DeliveryVerdict"]["enum"]
