"""The gRPC side: StatusService, its server, errors and interceptors."""
