"""Configuration: commented defaults, then a TOML file, then ``STATUSGATE_*`` variables.

Sources are a discriminated union on ``provider`` (each provider package contributes
its source model; ``settings_for`` builds the union from the registry) and their webhook
authentication a discriminated union on ``method``, so a typo in either is a precise
validation error rather than a silently ignored key. Secrets are never values here: a
config names the environment variable that holds each one, and the value is read (as a
``SecretStr``) only when the component that needs it is built.

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
    DEFAULT_API,
    DEFAULT_GRPC,
    DEFAULT_HTTP,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_STORE,
    ConfigError,
    ConfigPath,
    EnvName,
    HeaderName,
    HttpUrl,
    SetupError,
    SetupProblems,
    StrictModel,
    read_secret,
)
from statusgate.config.gateway import (
    ClientConfig,
    FrontDoor,
    GrpcLimits,
    GrpcTls,
    Permission,
    Retention,
    Settings,
    SourceCatalog,
    Tracing,
    is_loopback,
    load_settings,
    settings_for,
    split_host_port,
    valid_parts,
    validation_problems,
)
from statusgate.config.listen import bind_failure, check_bindable
from statusgate.config.sources import (
    ApiConfig,
    PollSchedule,
    RateLimit,
    SourceConfig,
    SourceId,
)

__all__ = [
    "AUTH_METHODS",
    "DEFAULT_API",
    "DEFAULT_GRPC",
    "DEFAULT_HTTP",
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_STORE",
    "AllOfAuth",
    "ApiConfig",
    "AuthConfig",
    "BasicAuth",
    "ClientConfig",
    "ConfigError",
    "ConfigPath",
    "EnvName",
    "FrontDoor",
    "GrpcLimits",
    "GrpcTls",
    "HeaderName",
    "HmacAuth",
    "HttpUrl",
    "IpAllowlistAuth",
    "JwsAuth",
    "NoAuth",
    "Permission",
    "PollSchedule",
    "RateLimit",
    "Retention",
    "Settings",
    "SetupError",
    "SetupProblems",
    "SharedSecretAuth",
    "SingleAuthConfig",
    "SourceCatalog",
    "SourceConfig",
    "SourceId",
    "StrictModel",
    "Tracing",
    "bind_failure",
    "check_bindable",
    "is_loopback",
    "load_settings",
    "read_secret",
    "settings_for",
    "split_host_port",
    "valid_parts",
    "validation_problems",
]
