"""Configuration: commented defaults, then a TOML file, then ``STATUSGATE_*`` variables.

Sources are a discriminated union on ``provider`` and their webhook authentication a
discriminated union on ``method``, so a typo in either is a precise validation error
rather than a silently ignored key. Secrets are never values here: a config names the
environment variable that holds each one, and the value is read (as a ``SecretStr``)
only when the component that needs it is built.

Every option is documented in ``docs/configuration.md`` and shown, commented, in
``examples/statusgate.toml``.
"""

from __future__ import annotations

from statusgate.config.auth import (
    AUTH_METHODS,
    AllOfAuth,
    AuthConfig,
    BasicAuth,
    HmacAuth,
    IpAllowlistAuth,
    JwsAuth,
    NoAuth,
    SharedSecretAuth,
    SingleAuthConfig,
)
from statusgate.config.fields import (
    DEFAULT_GRPC,
    DEFAULT_HTTP,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_STORE,
    ConfigError,
    read_secret,
)
from statusgate.config.gateway import (
    ClientConfig,
    GrpcTls,
    Permission,
    Retention,
    Settings,
    is_loopback,
    load_settings,
    split_host_port,
    validation_problems,
)
from statusgate.config.sources import (
    PROVIDERS,
    ApiConfig,
    BanqwareApi,
    BanqwareSource,
    BanqwareStage,
    FinboxApi,
    FinboxSource,
    PollSchedule,
    RateLimit,
    SetuApi,
    SetuSource,
    SourceConfig,
    default_sources,
)

__all__ = [
    "AUTH_METHODS",
    "DEFAULT_GRPC",
    "DEFAULT_HTTP",
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_STORE",
    "PROVIDERS",
    "AllOfAuth",
    "ApiConfig",
    "AuthConfig",
    "BanqwareApi",
    "BanqwareSource",
    "BanqwareStage",
    "BasicAuth",
    "ClientConfig",
    "ConfigError",
    "FinboxApi",
    "FinboxSource",
    "GrpcTls",
    "HmacAuth",
    "IpAllowlistAuth",
    "JwsAuth",
    "NoAuth",
    "Permission",
    "PollSchedule",
    "RateLimit",
    "Retention",
    "Settings",
    "SetuApi",
    "SetuSource",
    "SharedSecretAuth",
    "SingleAuthConfig",
    "SourceConfig",
    "default_sources",
    "is_loopback",
    "load_settings",
    "read_secret",
    "split_host_port",
    "validation_problems",
]
