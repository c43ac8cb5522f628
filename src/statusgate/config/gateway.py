"""The whole gateway's settings: listeners, store, sources, the gRPC door (TLS and
clients), retention; layered defaults → TOML → ``STATUSGATE_*`` → flags."""

from __future__ import annotations

import contextlib
import ipaddress
import tomllib
from collections.abc import Hashable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Protocol, Union

from pydantic import (
    Field,
    ModelWrapValidatorHandler,
    PrivateAttr,
    TypeAdapter,
    ValidationError,
    create_model,
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

from statusgate.config.auth import AUTH_METHODS
from statusgate.config.fields import (
    _CONFIG_FILE,
    DEFAULT_API,
    DEFAULT_GRPC,
    DEFAULT_HTTP,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_STORE,
    ConfigError,
    ConfigPath,
    StrictModel,
)
from statusgate.config.sources import SourceConfig, SourceId
from statusgate.core.filters import (
    DEFAULT_MAX_FILTER_NAMES,
    DEFAULT_MAX_FILTER_PREFIXES,
    MAX_FILTER_NAMES,
    MAX_FILTER_PREFIXES,
)


class SourceCatalog(Hashable, Protocol):
    """What the settings need to know of the providers; the provider registry is one."""

    @property
    def provider_names(self) -> tuple[str, ...]:
        """The ``provider`` values a source may have."""

    @property
    def source_models(self) -> tuple[type[SourceConfig], ...]:
        """One ``SourceConfig`` subclass per provider, discriminated on ``provider``."""

    @property
    def default_sources(self) -> Mapping[str, str]:
        """Source id -> provider of the sources a gateway with no config file has."""


# --- the gRPC door ------------------------------------------------------------------------


class GrpcTls(StrictModel):
    """TLS on the gRPC port (``[grpc_tls]``) or the API listener (``[api_tls]``); with
    ``client_ca_file``, mutual TLS."""

    cert_file: ConfigPath
    key_file: ConfigPath
    # Require client certificates signed by this CA.
    client_ca_file: ConfigPath | None = None


Permission = Literal["read", "poll", "admin"]


class ClientConfig(StrictModel):
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
    # Names and prefixes of the filters of all its open Watch streams together; a stream
    # that would pass it is refused with RESOURCE_EXHAUSTED.
    max_watch_filter_entries: int = Field(default=10_000, gt=0)
    # Subjects its WaitStatus calls may keep polled at once (clients with the poll
    # permission only); waits beyond it still end on webhooks and reconciler polls.
    max_polled_waits: int = Field(default=16, ge=0)


class GrpcLimits(StrictModel):
    """Bounds of what one gRPC request may ask for."""

    # Names and name prefixes of one StatusFilter (ListStatuses, WatchStatuses); more
    # are INVALID_ARGUMENT. Each prefix is one alternative in the store's SQL, which
    # SQLite caps, hence the upper bound.
    max_filter_names: int = Field(default=DEFAULT_MAX_FILTER_NAMES, gt=0, le=MAX_FILTER_NAMES)
    max_filter_prefixes: int = Field(
        default=DEFAULT_MAX_FILTER_PREFIXES, gt=0, le=MAX_FILTER_PREFIXES
    )


class FrontDoor(StrictModel):
    """Limits and timeouts of the HTTP front door (the webhook listener)."""

    # Webhook JSON nested deeper than this is refused with 400 and kept as rejected.
    max_json_depth: int = Field(default=64, gt=0, le=10_000)
    # From the first byte of a request to the end of its headers; slower senders are
    # disconnected.
    header_timeout_seconds: float = Field(default=10.0, gt=0)
    # From the end of the headers to the end of the body; slower bodies get 408.
    body_timeout_seconds: float = Field(default=30.0, gt=0)
    # An idle keep-alive connection (or one that never sends a byte) is closed after
    # this long.
    keepalive_timeout_seconds: float = Field(default=15.0, gt=0)
    # After refusing a request early (401, 413), how long its unread body is still read
    # and thrown away so the client sees the answer, before the connection is closed.
    lingering_seconds: float = Field(default=2.0, ge=0)
    # Open connections in total and per peer address. When a new connection would pass
    # either, the oldest connection without a request in progress is closed to make
    # room; when every one has a request in progress, the new one is closed at once.
    # The total is also kept below the process's open-file limit.
    max_connections: int = Field(default=1_000, gt=0)
    max_connections_per_peer: int = Field(default=256, gt=0)


class Retention(StrictModel):
    # Raw deliveries older than this are deleted (statuses and events are kept forever).
    # 0 keeps deliveries forever.
    deliveries_days: float = Field(default=30.0, ge=0)
    # How often the pruning runs.
    interval_seconds: float = Field(default=3600.0, gt=0)


class Tracing(StrictModel):
    """OpenTelemetry traces (``telemetry.tracing``). The standard ``OTEL_*`` variables
    win over these, as ``STATUSGATE_*`` ones win over the file."""

    # On, off, or (unset) on exactly when an OTLP endpoint is configured: ``endpoint``
    # below, OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT.
    enabled: bool | None = None
    # Base URL of an OTLP/HTTP receiver, as OTEL_EXPORTER_OTLP_ENDPOINT: spans go to
    # ``<endpoint>/v1/traces``. Empty: http://localhost:4318 when enabled.
    endpoint: str = ""
    # service.name of every span (OTEL_SERVICE_NAME wins).
    service_name: str = Field(default="statusgate", min_length=1)
    # The share of new traces kept (0 to 1), parent-based: a request whose caller's
    # traceparent says "sampled" is always kept (OTEL_TRACES_SAMPLER wins).
    sample_ratio: float = Field(default=1.0, ge=0, le=1)

    @field_validator("endpoint")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value


# --- the whole gateway -------------------------------------------------------------------


MAX_WORKERS = 256


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="STATUSGATE_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
        hide_input_in_errors=True,
    )

    # HOST:PORT of the webhook front door, of the gRPC server, and of the API listener
    # (the JSON API under /v1/ and /metrics).
    http: str = DEFAULT_HTTP
    grpc: str = DEFAULT_GRPC
    api: str = DEFAULT_API
    # sqlite:///path (embedded) or postgresql://... (shared by replicas).
    store: str = DEFAULT_STORE
    # Webhook bodies larger than this are refused with 413.
    max_body_bytes: int = Field(default=DEFAULT_MAX_BODY_BYTES, gt=0)
    # Seconds SIGTERM waits for in-flight requests and streams before closing them.
    shutdown_grace_seconds: float = Field(default=10.0, ge=0)
    # How often the reconciler looks for quiet, non-terminal subjects that are due a poll.
    reconciler_tick_seconds: float = Field(default=5.0, gt=0)
    # How often the gauges read from the store (subjects by state, the reconciler's
    # backlog, the head sequence...) and the process's own (store readiness, Watch lag,
    # circuit breakers) are refreshed for /metrics; a scrape never queries the store.
    metrics_refresh_seconds: float = Field(default=15.0, gt=0)
    # Worker processes of ``statusgate serve``, each a full replica behind the same
    # listeners; "auto" is one per CPU.
    workers: int | Literal["auto"] = 1
    # Source id -> source. Without a [sources] table in the config file: the providers'
    # default sources (one per provider), no auth. A [sources] table replaces them all.
    # ``settings_for`` narrows the type to the union of the providers' source models.
    sources: dict[SourceId, SourceConfig] = Field(default_factory=dict)
    # TLS for the gRPC port; required when it is not bound to loopback, unless
    # allow_plaintext_grpc says otherwise (e.g. TLS ends at a sidecar).
    grpc_tls: GrpcTls | None = None
    allow_plaintext_grpc: bool = False
    # TLS for the API listener, and its escape hatch: the same rule as the gRPC door's.
    api_tls: GrpcTls | None = None
    allow_plaintext_api: bool = False
    # A Server-Sent Events stream (Watch on the JSON API) with nothing to send sends a
    # comment this often, so proxies that drop quiet connections keep it open.
    sse_keepalive_seconds: float = Field(default=15.0, gt=0)
    # Client id -> credentials, for the gRPC door and the API listener alike. With none,
    # every caller may do everything, which is allowed only when both are bound to
    # loopback.
    clients: dict[str, ClientConfig] = Field(default_factory=dict)
    retention: Retention = Field(default_factory=Retention)
    front_door: FrontDoor = Field(default_factory=FrontDoor)
    grpc_limits: GrpcLimits = Field(default_factory=GrpcLimits)
    tracing: Tracing = Field(default_factory=Tracing)

    # Set by load_settings; not a setting of its own.
    _config_file: Path | None = PrivateAttr(default=None)
    # The providers this model was made for (``settings_for``).
    catalog: ClassVar[SourceCatalog | None] = None

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

    @field_validator("workers", mode="before")
    @classmethod
    def _worker_count(cls, value: object) -> object:
        if value == "auto":
            return value
        if isinstance(value, int | str) and not isinstance(value, bool):
            with contextlib.suppress(ValueError):
                if 1 <= int(value) <= MAX_WORKERS:
                    return int(value)
        raise ValueError(f"must be a number from 1 to {MAX_WORKERS}, or 'auto'")

    @field_validator("http", "grpc", "api")
    @classmethod
    def _host_port(cls, value: str) -> str:
        split_host_port(value)
        return value

    @model_validator(mode="wrap")
    @classmethod
    def _doors_closed_off_loopback(cls, data: Any, handler: ModelWrapValidatorHandler[Any]) -> Any:
        """The rules that span several options: no unauthenticated source, and no open
        gRPC door, off loopback. They are checked on the input itself, so that they are
        reported with every other problem even when some option is invalid (a check
        after validation would wait for those to be fixed first)."""
        captured = _INPUT.get()
        try:
            settings = handler(data)
        except ValidationError:
            if captured is not None and isinstance(data, Mapping):
                captured.raw = dict(data)
                captured.doors = _door_errors(data)
            raise
        errors = _door_errors(data)
        if errors:
            raise ValidationError.from_exception_data("Settings", errors)
        return settings

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
        catalog = getattr(settings_cls, "catalog", None)
        if not declares_sources and catalog is not None:
            # The default sources as a layer rather than as the field default, so
            # environment variables can adjust them. A file's [sources] replaces them.
            # As plain data, so STATUSGATE_SOURCES__X__... variables merge into them.
            defaults = {sid: {"provider": p} for sid, p in catalog.default_sources.items()}
            layers.append(InitSettingsSource(settings_cls, {"sources": defaults}))
        return tuple(layers)


def _door_errors(data: Any) -> list[InitErrorDetails]:
    """Errors of the cross-option rules, from the raw input (options that are
    themselves invalid are left to their own errors)."""
    if not isinstance(data, Mapping):
        return []
    errors: list[InitErrorDetails] = []
    http = data.get("http", DEFAULT_HTTP)
    with contextlib.suppress(ValueError, TypeError):
        if not is_loopback(split_host_port(str(http))[0]):
            sources = data.get("sources")
            for source_id, source in sources.items() if isinstance(sources, Mapping) else ():
                if _auth_method(source) == "none":
                    # One error per open source, located at its auth, so each is reported.
                    errors.append(
                        _error(
                            ("sources", source_id, "auth", "method"),
                            "'none' (no webhook authentication) is allowed only when the HTTP "
                            f"listener is bound to loopback, and http = {http!r}",
                        )
                    )
    # The gRPC door and the API listener serve the same RPCs: the same rule for both.
    needs_clients = []
    for key, default in (("grpc", DEFAULT_GRPC), ("api", DEFAULT_API)):
        address = data.get(key, default)
        with contextlib.suppress(ValueError, TypeError):
            if is_loopback(split_host_port(str(address))[0]):
                continue
            plaintext = str(data.get(f"allow_plaintext_{key}", False)).lower()
            if data.get(f"{key}_tls") is None and plaintext not in ("true", "1", "yes", "on"):
                errors.append(
                    _error(
                        (f"{key}_tls",),
                        f"TLS is required when {key} = {address!r} "
                        f"is not loopback (or set allow_plaintext_{key} = true)",
                    )
                )
            needs_clients.append(f"{key} = {address!r}")
    if needs_clients and not data.get("clients"):
        errors.append(
            _error(
                ("clients",),
                # One problem is enough: the same [clients] table serves both doors.
                f"client tokens are required when {needs_clients[0]} is not loopback",
            )
        )
    return errors


def _auth_method(source: Any) -> str | None:
    """The webhook authentication method a raw source names (``none`` by default)."""
    auth = source.get("auth") if isinstance(source, Mapping) else getattr(source, "auth", None)
    if auth is None:
        return "none"
    method = auth.get("method") if isinstance(auth, Mapping) else getattr(auth, "method", None)
    return method if isinstance(method, str) else None


@dataclass
class _Captured:
    """What load_settings keeps of an input that failed validation: the input itself
    (merged from every layer), so check-config can still examine its valid parts, and
    the cross-option errors, reported with the others."""

    raw: dict[str, Any] | None = None
    doors: list[InitErrorDetails] = field(default_factory=list)


# Set while load_settings validates. Passed aside like _CONFIG_FILE: pydantic-settings
# builds the model's input itself.
_INPUT: ContextVar[_Captured | None] = ContextVar("statusgate_input", default=None)


def _error(loc: tuple[str | int, ...], message: str) -> InitErrorDetails:
    return InitErrorDetails(type=PydanticCustomError("value_error", message), loc=loc, input=None)


@cache
def settings_for(catalog: SourceCatalog) -> type[Settings]:
    """The settings model whose sources are the union of ``catalog``'s source models."""
    models = catalog.source_models
    source: Any = (
        Annotated[Union[models], Field(discriminator="provider")]  # noqa: UP007
        if len(models) > 1
        else models[0]
    )
    model = create_model(
        "Settings", __base__=Settings, sources=(dict[SourceId, source], Field(default_factory=dict))
    )
    model.catalog = catalog
    return model


def load_settings(
    catalog: SourceCatalog, config_file: Path | None = None, **overrides: Any
) -> Settings:
    """Settings for the providers of ``catalog`` from defaults, ``config_file`` (TOML),
    the environment and ``overrides`` (command-line flags; None values are ignored).

    Raises ``ConfigError`` listing every problem (TOML syntax with line and column, or
    each validation error with its dotted location), ``FileNotFoundError`` for a missing
    file."""
    if config_file is not None and not config_file.is_file():
        raise FileNotFoundError(f"config file {config_file} does not exist")
    token = _CONFIG_FILE.set(config_file)
    captured = _Captured()
    input_token = _INPUT.set(captured)
    try:
        model = settings_for(catalog)
        settings = model(**{k: v for k, v in overrides.items() if v is not None})
    except tomllib.TOMLDecodeError as exc:
        # The message carries "(at line L, column C)"; it never holds a value.
        raise ConfigError([f"{config_file}: TOML syntax error: {exc}"]) from None
    except ValidationError as exc:
        # from None: the original error's repr would hold inputs; the problems do not.
        problems = validation_problems(exc, catalog.provider_names)
        if captured.doors:
            doors = ValidationError.from_exception_data("Settings", captured.doors)
            problems += validation_problems(doors, catalog.provider_names)
        raise ConfigError(problems, raw=captured.raw) from None
    finally:
        _INPUT.reset(input_token)
        _CONFIG_FILE.reset(token)
    settings._config_file = config_file
    return settings


def valid_parts(
    catalog: SourceCatalog, config_file: Path | None, raw: Mapping[str, Any]
) -> tuple[dict[str, SourceConfig], str | None, GrpcTls | None]:
    """The parts of an invalid configuration's input that are valid on their own: each
    source, the store URL, the gRPC TLS files. check-config builds them as ``serve``
    would, so that what only start-up finds is reported with the validation problems
    instead of after they are fixed."""
    model = settings_for(catalog)
    token = _CONFIG_FILE.set(config_file)  # relative paths as load_settings reads them
    try:
        sources: dict[str, SourceConfig] = {}
        raw_sources = raw.get("sources")
        if isinstance(raw_sources, Mapping):
            # The same type the settings give sources: the providers' union.
            annotation: Any = model.model_fields["sources"].annotation
            one: TypeAdapter[dict[str, SourceConfig]] = TypeAdapter(annotation)
            for source_id, source in raw_sources.items():
                with contextlib.suppress(ValidationError):
                    [valid] = one.validate_python({source_id: source}).values()
                    sources[source_id] = valid.model_copy(update={"id": source_id})
        store = raw.get("store", DEFAULT_STORE)
        tls: GrpcTls | None = None
        if raw.get("grpc_tls") is not None:
            with contextlib.suppress(ValidationError):
                tls = GrpcTls.model_validate(raw["grpc_tls"])
        return sources, store if isinstance(store, str) else None, tls
    finally:
        _CONFIG_FILE.reset(token)


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


def validation_problems(exc: ValidationError, providers: tuple[str, ...]) -> list[str]:
    """``"sources.x.auth.secret_env: message"`` for every error, without input values
    (a value could be a secret pasted in the wrong place)."""
    problems = []
    for error in exc.errors(include_input=False, include_url=False):
        loc = _clean_loc(error["loc"], providers)
        message = error["msg"]
        ctx = error.get("ctx") or {}
        if error["type"] in ("union_tag_invalid", "union_tag_not_found"):
            discriminator = str(ctx.get("discriminator", "")).strip("'")
            loc = (*loc, discriminator)
            tags = providers if discriminator == "provider" else AUTH_METHODS
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


def _clean_loc(loc: tuple[int | str, ...], providers: tuple[str, ...]) -> tuple[int | str, ...]:
    """Drop the union tags pydantic inserts after a discriminated-union slot
    (``sources.x.<provider>.auth.shared_secret.secret_env``), which are not keys a user
    wrote."""
    out: list[int | str] = []
    for part in loc:
        if out and part in _union_tags(out, providers):
            continue
        out.append(part)
    return tuple(out)


def _union_tags(path: list[int | str], providers: tuple[str, ...]) -> tuple[str, ...]:
    if len(path) == 2 and path[0] == "sources":
        return providers
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
