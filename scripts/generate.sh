#!/usr/bin/env bash
# Regenerates src/statusgate/v1 from protos/ with the pinned grpcio-tools and
# mypy-protobuf of pyproject.toml's dev extra, and the JSON API's OpenAPI document
# (v1/openapi.json, written by statusgate.api.openapi from the same protos and their
# comments). The output is committed; CI runs this and fails on any difference
# (scripts/check-generated.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python}
out=src/statusgate/v1
# google/rpc/*.proto and google/api/*.proto are vendored under third_party/protos (see
# buf.yaml); their Python code comes from googleapis-common-protos.
common=third_party/protos
tools=$("$python" -c 'import grpc_tools, os; print(os.path.join(os.path.dirname(grpc_tools.__file__), "_proto"))')
find "$out" -name '*_pb2*.py*' -delete
"$python" -m grpc_tools.protoc \
  -I protos -I "$common" -I "$tools" \
  --python_out=src --grpc_python_out=src \
  --mypy_out=src --mypy_grpc_out=src \
  protos/statusgate/v1/status.proto protos/statusgate/v1/status_service.proto \
  protos/statusgate/v1/admin_service.proto
descriptors=$(mktemp)
trap 'rm -f "$descriptors"' EXIT
"$python" -m grpc_tools.protoc \
  -I protos -I "$common" -I "$tools" \
  --include_imports --include_source_info --descriptor_set_out="$descriptors" \
  protos/statusgate/v1/status_service.proto protos/statusgate/v1/admin_service.proto
openapi="$out"/openapi.json
PYTHONPATH=src "$python" -m statusgate.api.openapi "$descriptors" > "$openapi"
