"""What the gateway tells its operators about itself: Prometheus metrics with one label
vocabulary, and OpenTelemetry traces. Low in the layers, so the store, the upstream
clients, the front door and the gRPC door all report through it."""
