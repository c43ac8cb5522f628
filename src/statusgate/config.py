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

import ipaddress
import os
import re
import tomllib
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from statusgate.core.names import is_valid_source_id
from statusgate.logs import register_secret

DEFAULT_HTTP = "127.0.0.1:8080"
DEFAULT_GRPC = "127.0.0.1:50051"
DEFAULT_STORE = "sqlite:///./statusgate.db"
DEFAULT_MAX_BODY_BYTES = 1024 * 1024

FINBOX_BASE_URL = "https://apis.bankconnect.finbox.in/bank-connect/v1"
SETU_BASE_URL = "https://fiu-sandbox.setu.co"
SETU_LOGIN_URL = "https://orgservice-prod.setu.co/v1/users/login"


class ConfigError(ValueError):
    """A configuration that cannot be loaded. ``problems`` are ``"location: message"``
    lines, safe to print: they never hold an input value (which could be a secret
    pasted where an environment variable name belongs)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class _Strict(BaseModel):
    # hide_input_in_errors: a secret pasted into the file by mistake must not be echoed
    # by the validation error that rejects it.
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


def read_secret(env_name: str) -> SecretStr:
    """The value of a secret named by environment variable; a missing one is an error
    at start-up, never an empty secret that would accept anything. The message names the
    variable, never a value."""
    value = os.environ.get(env_name)
    if value is None:
        raise ValueError(f"environment variable {env_name} is not set")
    if not value:
        raise ValueError(f"environment variable {env_name} is empty")
    # Whatever code path might print it later, the log redactor now knows it.
    register_secret(value)
    return SecretStr(value)


# --- constrained strings ------------------------------------------------------------------

_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# RFC 9110 token characters: what a header field name may contain.
_HEADER_NAME_RE = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")


def _env_name(value: str) -> str:
    if not _ENV_NAME_RE.match(value):
        # Most likely the secret itself was pasted here; say so without repeating it.
        raise ValueError(
            "must be the name of an environment variable (letters, digits and '_', not "
            "starting with a digit), not the secret itself"
        )
    return value


def _header_name(value: str) -> str:
    if not _HEADER_NAME_RE.match(value):
        raise ValueError("is not a valid HTTP header name")
    # Header names are case-insensitive; one spelling keeps comparisons simple.
    return value.lower()


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("must be an absolute http:// or https:// URL")
    # Stored without a trailing slash so callers can append "/path" unconditionally.
    return value.rstrip("/")


# The config file whose directory relative paths are resolved against (set by
# load_settings while it validates; pydantic builds sources from the class, so the file
# to read is passed aside rather than through __init__).
_CONFIG_FILE: ContextVar[Path | None] = ContextVar("statusgate_config_file", default=None)


def _config_path(value: Path) -> Path:
    value = value.expanduser()
    config_file = _CONFIG_FILE.get()
    if config_file is not None and not value.is_absolute():
        # Key and certificate files sit next to the config that names them, so a relative
        # path means "relative to the config file", not to wherever the gateway started.
        return config_file.parent / value
    return value


EnvName = Annotated[str, AfterValidator(_env_name)]
HeaderName = Annotated[str, AfterValidator(_header_name)]
HttpUrl = Annotated[str, AfterValidator(_http_url)]
ConfigPath = Annotated[Path, AfterValidator(_config_path)]


# --- webhook authentication (DESIGN.md §6) -----------------------------------------


class NoAuth(_Strict):
    """No authentication: refused unless the HTTP listener is bound to loopback."""

    method: Literal["none"] = "none"


class SharedSecretAuth(_Strict):
    """A static header whose value the client chose, e.g. FinBox's ``x-secret-key``."""

    method: Literal["shared_secret"]
    header: HeaderName = "x-secret-key"
    secret_env: EnvName


class HmacAuth(_Strict):
    """HMAC-SHA256 over id, timestamp and raw body, Standard Webhooks style."""

    method: Literal["hmac"]
    # Several secrets so a rotation never rejects a valid delivery. Each variable holds
    # "whsec_<base64 key>" or the raw key.
    secret_envs: list[EnvName] = Field(min_length=1)
    # Replay protection: webhook-timestamp may be at most this far from our clock.
    tolerance_seconds: int = Field(default=300, gt=0)


class JwsAuth(_Strict):
    """Detached JWS (RS256) in ``x-jws-signature``, as ReBIT specifies for Setu."""

    method: Literal["jws"]
    # The provider's PEM public key(s) or certificate(s); several for rotation.
    public_key_files: list[ConfigPath] = Field(min_length=1)
    header: HeaderName = "x-jws-signature"


class BasicAuth(_Strict):
    """HTTP basic authentication (RFC 7617)."""

    method: Literal["basic"]
    username: str = Field(min_length=1)
    password_env: EnvName

    @field_validator("username")
    @classmethod
    def _no_colon(cls, value: str) -> str:
        # RFC 7617: the user-id cannot contain a colon, the first one ends it.
        if ":" in value:
            raise ValueError("must not contain ':'")
        return value


class IpAllowlistAuth(_Strict):
    """The client address must be in one of ``networks``."""

    method: Literal["ip_allowlist"]
    networks: list[str] = Field(min_length=1)
    # Only this header is trusted for the client address, and only from these proxies.
    trusted_proxy_header: HeaderName | None = None
    trusted_proxies: list[str] = Field(default_factory=list)

    @field_validator("networks", "trusted_proxies")
    @classmethod
    def _valid_networks(cls, value: list[str]) -> list[str]:
        for network in value:
            ipaddress.ip_network(network, strict=False)
        return value

    @model_validator(mode="after")
    def _proxy_pair(self) -> IpAllowlistAuth:
        # One without the other is a half-configured proxy: either every request would
        # look like it comes from the proxy, or the header would never be read.
        if self.trusted_proxy_header and not self.trusted_proxies:
            raise ValueError("trusted_proxy_header is set but trusted_proxies is empty")
        if self.trusted_proxies and not self.trusted_proxy_header:
            raise ValueError("trusted_proxies is set but trusted_proxy_header is not")
        return self


SingleAuthConfig = Annotated[
    SharedSecretAuth | HmacAuth | JwsAuth | BasicAuth | IpAllowlistAuth,
    Field(discriminator="method"),
]


class AllOfAuth(_Strict):
    """Every listed method must pass, e.g. an IP allowlist and a shared secret."""

    method: Literal["all_of"]
    # Checked in order; the first failure is the reason reported. `none` and nested
    # `all_of` are not members: neither would add anything.
    methods: list[SingleAuthConfig] = Field(min_length=1)


AuthConfig = Annotated[
    NoAuth | SharedSecretAuth | HmacAuth | JwsAuth | BasicAuth | IpAllowlistAuth | AllOfAuth,
    Field(discriminator="method"),
]
AUTH_METHODS = ("none", "shared_secret", "hmac", "jws", "basic", "ip_allowlist", "all_of")


# --- sources --------------------------------------------------------------------------


class PollSchedule(_Strict):
    """When the reconciler asks the provider about quiet, non-terminal subjects."""

    enabled: bool = True
    # A subject unchanged for this long is polled.
    quiet_seconds: float = Field(default=60.0, gt=0)
    # Backoff between polls of one subject: doubles up to max_interval_seconds.
    interval_seconds: float = Field(default=30.0, gt=0)
    max_interval_seconds: float = Field(default=900.0, gt=0)
    # Subjects older than this are left alone: the provider has forgotten them.
    max_age_seconds: float = Field(default=7 * 24 * 3600.0, gt=0)


class ApiConfig(_Strict):
    """Where and how to call the provider's status API (used by polling)."""

    base_url: HttpUrl | None = None
    # Per upstream HTTP call; a caller's shorter gRPC deadline wins.
    timeout_seconds: float = Field(default=10.0, gt=0)
    # Retries of a call that got a 429, a 5xx, a timeout or a dropped connection, waiting
    # retry_backoff_seconds * 2**n (full jitter), or at least what Retry-After asks.
    retries: int = Field(default=3, ge=0, le=10)
    retry_backoff_seconds: float = Field(default=0.25, gt=0)
    # The circuit breaker of the source: after this many consecutive failed calls, polls
    # fail fast for breaker_cooldown_seconds, then one trial call decides.
    breaker_failures: int = Field(default=5, ge=1)
    breaker_cooldown_seconds: float = Field(default=30.0, gt=0)


class FinboxApi(ApiConfig):
    """FinBox BankConnect: every call carries ``x-api-key`` and ``server-hash``."""

    base_url: HttpUrl = FINBOX_BASE_URL
    api_key_env: EnvName | None = None
    server_hash_env: EnvName | None = None


class SetuApi(ApiConfig):
    """Setu AA v2: a bearer token from ``login_url`` plus ``x-product-instance-id``."""

    # The sandbox by default; production is https://fiu.setu.co.
    base_url: HttpUrl = SETU_BASE_URL
    login_url: HttpUrl = SETU_LOGIN_URL
    client_id_env: EnvName | None = None
    client_secret_env: EnvName | None = None
    product_instance_id_env: EnvName | None = None


class BanqwareApi(ApiConfig):
    """banqware PSD2 Hub: host and auth header are not public, so both are config."""

    # Optional so a webhook-only source needs none; polling without it is an error then.
    base_url: HttpUrl | None = None
    # Header name -> name of the environment variable holding its value.
    headers_env: dict[HeaderName, EnvName] = Field(default_factory=dict)
    # mTLS, required by banqware in production. A certificate file may also hold the key.
    client_cert_file: ConfigPath | None = None
    client_key_file: ConfigPath | None = None
    # CA bundle to verify banqware's server certificate; the system store when unset.
    ca_file: ConfigPath | None = None
    # How the status endpoints are told which session: PROVIDERS.md does not say, so the
    # query parameter's name is an assumption that can be changed here.
    session_id_param: str = Field(default="sessionId", pattern=r"^[A-Za-z0-9_.\-\[\]]{1,64}$")

    @model_validator(mode="after")
    def _key_needs_cert(self) -> BanqwareApi:
        if self.client_key_file is not None and self.client_cert_file is None:
            raise ValueError("client_key_file is set but client_cert_file is not")
        return self


class RateLimit(_Strict):
    """A token bucket per source: a flooding provider gets 429 + Retry-After, alone."""

    per_second: float = Field(gt=0)
    burst: int = Field(default=0, ge=0)  # 0: one second's worth


class _SourceBase(_Strict):
    # Filled from the key under [sources]; also the webhook path /webhooks/{id}.
    id: str = ""
    auth: AuthConfig = Field(default_factory=NoAuth)
    poll: PollSchedule = Field(default_factory=PollSchedule)
    # Unlimited when unset.
    rate_limit: RateLimit | None = None


class FinboxSource(_SourceBase):
    provider: Literal["finbox"]
    api: FinboxApi = Field(default_factory=FinboxApi)


BanqwareStage = Literal[
    "Authentication", "Accounts", "AccountBalances", "Transactions", "TransactionDetails"
]


class BanqwareSource(_SourceBase):
    provider: Literal["banqware"]
    # A session is done when this stage finished; which stages a client runs is its own
    # choice at banqware, so it is configuration (DESIGN.md §4 rule 3).
    final_stage: BanqwareStage = "Transactions"
    api: BanqwareApi = Field(default_factory=BanqwareApi)


class SetuSource(_SourceBase):
    provider: Literal["setu"]
    api: SetuApi = Field(default_factory=SetuApi)


SourceConfig = Annotated[
    FinboxSource | BanqwareSource | SetuSource, Field(discriminator="provider")
]
PROVIDERS = ("finbox", "banqware", "setu")


def _source_id(value: str) -> str:
    if not is_valid_source_id(value):
        raise ValueError(
            "source id: lower-case letters, digits and '-' only, starting and ending with "
            "a letter or digit, at most 63 characters"
        )
    return value


SourceId = Annotated[str, AfterValidator(_source_id)]


def default_sources() -> dict[str, SourceConfig]:
    return {
        "finbox": FinboxSource(id="finbox", provider="finbox"),
        "banqware": BanqwareSource(id="banqware", provider="banqware"),
        "setu": SetuSource(id="setu", provider="setu"),
    }


def _default_sources_data() -> dict[str, Any]:
    # As plain data, so STATUSGATE_SOURCES__FINBOX__... variables merge into them.
    return {"sources": {p: {"provider": p} for p in PROVIDERS}}


# --- the gRPC door ------------------------------------------------------------------------


class GrpcTls(_Strict):
    """TLS on the gRPC port; with ``client_ca_file``, mutual TLS."""

    cert_file: ConfigPath
    key_file: ConfigPath
    # Require client certificates signed by this CA.
    client_ca_file: ConfigPath | None = None


Permission = Literal["read", "poll", "admin"]


class ClientConfig(_Strict):
    """One internal service allowed to call the gRPC API with a bearer token."""

    # Hex SHA-256 of the token (`printf %s TOKEN | sha256sum`): the token itself is
    # never in the config, so a leaked config file grants nothing.
    token_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    # Source ids this client may see; "*" for all.
    sources: list[str] = Field(min_length=1)
    # read: Get/List/Watch/Wait; poll: PollStatuses; admin: everything.
    permissions: list[Permission] = Field(default_factory=lambda: list[Permission](["read"]))
    # Concurrent WatchStatuses streams; more are refused with RESOURCE_EXHAUSTED.
    max_watch_streams: int = Field(default=16, gt=0)


class Retention(_Strict):
    # Raw deliveries older than this are deleted (statuses and events are kept forever).
    # 0 keeps deliveries forever.
    deliveries_days: float = Field(default=30.0, ge=0)
    # How often the pruning runs.
    interval_seconds: float = Field(default=3600.0, gt=0)


# --- the whole gateway -------------------------------------------------------------------


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="STATUSGATE_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
        hide_input_in_errors=True,
    )

    # HOST:PORT of the webhook front door and of the gRPC server.
    http: str = DEFAULT_HTTP
    grpc: str = DEFAULT_GRPC
    # sqlite:///path (embedded) or postgresql://... (shared by replicas).
    store: str = DEFAULT_STORE
    # Webhook bodies larger than this are refused with 413.
    max_body_bytes: int = Field(default=DEFAULT_MAX_BODY_BYTES, gt=0)
    # Seconds SIGTERM waits for in-flight requests and streams before closing them.
    shutdown_grace_seconds: float = Field(default=10.0, ge=0)
    # How often the reconciler looks for quiet, non-terminal subjects that are due a poll.
    reconciler_tick_seconds: float = Field(default=5.0, gt=0)
    # Source id -> source. Without a [sources] table in the config file: one source per
    # provider (finbox, banqware, setu), no auth. A [sources] table replaces them all.
    sources: dict[SourceId, SourceConfig] = Field(default_factory=default_sources)
    # TLS for the gRPC port; required when it is not bound to loopback, unless
    # allow_plaintext_grpc says otherwise (e.g. TLS ends at a sidecar).
    grpc_tls: GrpcTls | None = None
    allow_plaintext_grpc: bool = False
    # Client id -> credentials. With none, every caller may read everything, which is
    # allowed only when the gRPC listener is bound to loopback.
    clients: dict[str, ClientConfig] = Field(default_factory=dict)
    retention: Retention = Field(default_factory=Retention)

    # Set by load_settings; not a setting of its own.
    _config_file: Path | None = PrivateAttr(default=None)

    @property
    def config_file(self) -> Path | None:
        """The TOML file these settings were loaded from, if any."""
        return self._config_file

    @field_validator("sources")
    @classmethod
    def _name_sources(cls, value: dict[str, SourceConfig]) -> dict[str, SourceConfig]:
        named: dict[str, SourceConfig] = {}
        errors: list[InitErrorDetails] = []
        for source_id, source in value.items():
            if source.id and source.id != source_id:
                errors.append(
                    _error((source_id, "id"), f"must be empty or equal the key {source_id!r}")
                )
            named[source_id] = source.model_copy(update={"id": source_id})
        if errors:
            raise ValidationError.from_exception_data("Settings", errors)
        return named

    @field_validator("http", "grpc")
    @classmethod
    def _host_port(cls, value: str) -> str:
        split_host_port(value)
        return value

    @model_validator(mode="after")
    def _no_auth_only_on_loopback(self) -> Settings:
        host, _ = split_host_port(self.http)
        if is_loopback(host):
            return self
        # One error per open source, located at its auth, so every one is reported.
        errors = [
            _error(
                ("sources", source_id, "auth", "method"),
                f"'none' (no webhook authentication) is allowed only when the HTTP "
                f"listener is bound to loopback, and http = {self.http!r}",
            )
            for source_id, source in self.sources.items()
            if isinstance(source.auth, NoAuth)
        ]
        if errors:
            raise ValidationError.from_exception_data("Settings", errors)
        return self

    @model_validator(mode="after")
    def _grpc_door_closed_off_loopback(self) -> Settings:
        host, _ = split_host_port(self.grpc)
        if is_loopback(host):
            return self
        errors = []
        if self.grpc_tls is None and not self.allow_plaintext_grpc:
            errors.append(
                _error(
                    ("grpc_tls",),
                    f"TLS is required when grpc = {self.grpc!r} "
                    "is not loopback (or set allow_plaintext_grpc = true)",
                )
            )
        if not self.clients:
            errors.append(
                _error(
                    ("clients",),
                    f"client tokens are required when grpc = {self.grpc!r} is not loopback",
                )
            )
        if errors:
            raise ValidationError.from_exception_data("Settings", errors)
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Precedence: command-line flags (init) > STATUSGATE_* > the TOML file > defaults.
        # Layers are deep-merged, so STATUSGATE_SOURCES__X__AUTH__SECRET_ENV changes one
        # field of source x whether x comes from the file or from the defaults.
        toml_file = _CONFIG_FILE.get()
        layers: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        # Sources passed whole (Settings(sources=...), a flag) replace the defaults.
        declares_sources = "sources" in init_settings()
        if toml_file is not None:
            toml = TomlConfigSettingsSource(settings_cls, toml_file=toml_file)
            declares_sources = declares_sources or "sources" in toml()
            layers.append(toml)
        if not declares_sources:
            # The default sources as a layer rather than only as the field default, so
            # environment variables can adjust them. A file's [sources] replaces them.
            layers.append(InitSettingsSource(settings_cls, _default_sources_data()))
        return tuple(layers)


def _error(loc: tuple[str | int, ...], message: str) -> InitErrorDetails:
    return InitErrorDetails(type=PydanticCustomError("value_error", message), loc=loc, input=None)


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Settings from defaults, ``config_file`` (TOML), the environment and ``overrides``
    (command-line flags; None values are ignored).

    Raises ``ConfigError`` listing every problem (TOML syntax with line and column, or
    each validation error with its dotted location), ``FileNotFoundError`` for a missing
    file."""
    if config_file is not None and not config_file.is_file():
        raise FileNotFoundError(f"config file {config_file} does not exist")
    token = _CONFIG_FILE.set(config_file)
    try:
        settings = Settings(**{k: v for k, v in overrides.items() if v is not None})
    except tomllib.TOMLDecodeError as exc:
        # The message carries "(at line L, column C)"; it never holds a value.
        raise ConfigError([f"{config_file}: TOML syntax error: {exc}"]) from None
    except ValidationError as exc:
        # from None: the original error's repr would hold inputs; the problems do not.
        raise ConfigError(validation_problems(exc)) from None
    finally:
        _CONFIG_FILE.reset(token)
    settings._config_file = config_file
    return settings


# --- readable validation errors ---------------------------------------------------------

# Keys people write when they mean the *_env variant: the hint saves a trip to the docs.
_SECRET_KEY_HINTS = {
    "secret": "secret_env",
    "secrets": "secret_envs",
    "password": "password_env",
    "api_key": "api_key_env",
    "server_hash": "server_hash_env",
    "client_id": "client_id_env",
    "client_secret": "client_secret_env",
    "product_instance_id": "product_instance_id_env",
    "headers": "headers_env",
}


def validation_problems(exc: ValidationError) -> list[str]:
    """``"sources.x.auth.secret_env: message"`` for every error, without input values
    (a value could be a secret pasted in the wrong place)."""
    problems = []
    for error in exc.errors(include_input=False, include_url=False):
        loc = _clean_loc(error["loc"])
        message = error["msg"]
        ctx = error.get("ctx") or {}
        if error["type"] in ("union_tag_invalid", "union_tag_not_found"):
            discriminator = str(ctx.get("discriminator", "")).strip("'")
            loc = (*loc, discriminator)
            tags = PROVIDERS if discriminator == "provider" else AUTH_METHODS
            if error["type"] == "union_tag_not_found":
                message = "is required: one of " + ", ".join(repr(t) for t in tags)
        elif error["type"] == "extra_forbidden" and loc and loc[-1] in _SECRET_KEY_HINTS:
            hint = _SECRET_KEY_HINTS[str(loc[-1])]
            message += f" (secrets are named by environment variable: use {hint})"
        if message.startswith("Value error, "):
            message = message.removeprefix("Value error, ")
        where = ".".join(str(part) for part in loc) or "(top level)"
        problems.append(f"{where}: {message}")
    return problems


def _clean_loc(loc: tuple[int | str, ...]) -> tuple[int | str, ...]:
    """Drop the union tags pydantic inserts after a discriminated-union slot
    (``sources.x.finbox.auth.shared_secret.secret_env``), which are not keys a user
    wrote."""
    out: list[int | str] = []
    for part in loc:
        if out and part in _union_tags(out):
            continue
        out.append(part)
    return tuple(out)


def _union_tags(path: list[int | str]) -> tuple[str, ...]:
    if len(path) == 2 and path[0] == "sources":
        return PROVIDERS
    if path[-1] == "auth" or (len(path) >= 2 and path[-2] == "methods"):
        return AUTH_METHODS
    return ()


# --- addresses ----------------------------------------------------------------------------


def split_host_port(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"{value!r} is not HOST:PORT")
    return host.strip("[]") or "0.0.0.0", int(port)  # noqa: S104 - ":8080" means all


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
