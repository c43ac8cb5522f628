# syntax=docker/dockerfile:1
# Build stage: a wheel of statusgate and of every dependency.
FROM python:3.12-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

# Runtime stage: only the wheels, installed for a non-root user.
FROM python:3.12-slim
RUN useradd --system --uid 10001 --home-dir /var/lib/statusgate --create-home statusgate
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER statusgate
WORKDIR /var/lib/statusgate
# Inside a container the listeners must bind all interfaces, so every source needs
# webhook authentication, and gRPC and the API listener need TLS (or a sidecar's, with
# allow_plaintext_*) and client tokens (see README: configuration).
ENV STATUSGATE_HTTP=0.0.0.0:8080 \
    STATUSGATE_GRPC=0.0.0.0:50051 \
    STATUSGATE_API=0.0.0.0:8081 \
    STATUSGATE_STORE=sqlite:////var/lib/statusgate/statusgate.db
EXPOSE 8080 50051 8081
VOLUME ["/var/lib/statusgate"]
ENTRYPOINT ["statusgate"]
CMD ["serve", "--config", "/etc/statusgate/statusgate.toml"]
