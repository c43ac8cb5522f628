#!/usr/bin/env bash
# Regenerates src/statusgate/v1 from protos/ with the pinned grpcio-tools and
# mypy-protobuf of pyproject.toml's dev extra. The output is committed; CI runs this
# and fails on any difference (scripts/check-generated.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python}
out=src/statusgate/v1
# google/rpc/status.proto (which status.proto imports) is vendored under
# third_party/protos (see buf.yaml); its Python code comes from googleapis-common-protos.
common=third_party/protos
tools=$("$python" -c 'import grpc_tools, os; print(os.path.join(os.path.dirname(grpc_tools.__file__), "_proto"))')
find "$out" -name '*_pb2*.py*' -delete
"$python" -m grpc_tools.protoc \
  -I protos -I "$common" -I "$tools" \
  --python_out=src --grpc_python_out=src \
  --mypy_out=src --mypy_grpc_out=src \
  protos/statusgate/v1/status.proto protos/statusgate/v1/status_service.proto
