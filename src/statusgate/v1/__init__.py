"""Generated protobuf and gRPC code for statusgate.v1 (scripts/generate.sh; do not edit)."""
