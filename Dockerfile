# syntax=docker/dockerfile:1
# The Python minor version is CI's (pyproject.toml: [tool.mypy] python_version); a test
# keeps them equal.

# Build stage: a wheel of statusgate and of every dependency.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

# Runtime stage: only the wheels, installed for a non-root user.
FROM python:3.11-slim
RUN groupadd --system --gid 10001 statusgate \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/statusgate \
       --create-home statusgate
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
# A config that starts as is (every source authenticated, the gRPC door closed to
# callers without a token); mount your own over it. See the file's comments.
COPY examples/container.toml /etc/statusgate/statusgate.toml
# Numeric, so that a runtime enforcing non-root (runAsNonRoot) can tell without the
# image's /etc/passwd.
USER 10001:10001
WORKDIR /var/lib/statusgate
# Inside a container the listeners must bind every interface. These override the file.
ENV STATUSGATE_HTTP=0.0.0.0:8080 \
    STATUSGATE_GRPC=0.0.0.0:50051 \
    STATUSGATE_API=0.0.0.0:8081 \
    STATUSGATE_STORE=sqlite:////var/lib/statusgate/statusgate.db
EXPOSE 8080 50051 8081
VOLUME ["/var/lib/statusgate"]
# Liveness of the webhook door, on whatever port STATUSGATE_HTTP names; no curl in a
# slim image, so Python asks.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; port = os.environ.get('STATUSGATE_HTTP', '0.0.0.0:8080').rpartition(':')[2]; urllib.request.urlopen(f'http://127.0.0.1:{port}/healthz', timeout=4)"]
ENTRYPOINT ["statusgate"]
CMD ["serve", "--config", "/etc/statusgate/statusgate.toml"]
