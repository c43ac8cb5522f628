"""The API listener: the JSON form of the gRPC API, its OpenAPI document, metrics."""
