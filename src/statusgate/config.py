"""Configuration: commented defaults, then a TOML file, then ``STATUSGATE_*`` variables.

Sources are a discriminated union on ``provider`` and their webhook authentication a
discriminated union on ``method``, so a typo in either is a precise validation error
rather than a silently ignored key. Secrets are never values here: a config names the
environment variable that holds each one.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from statusgate.core.names import is_valid_source_id

DEFAULT_HTTP = "127.0.0.1:8080"
DEFAULT_GRPC = "127.0.0.1:50051"
DEFAULT_STORE = "sqlite:///./statusgate.db"
DEFAULT_MAX_BODY_BYTES = 1024 * 1024


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def read_secret(env_name: str) -> SecretStr:
    """The value of a secret named by environment variable; a missing one is an error
    at start-up, never an empty secret that would accept anything."""
    value = os.environ.get(env_name)
    if not value:
        raise ValueError(f"environment variable {env_name} is not set")
    return SecretStr(value)


# --- webhook authentication (DESIGN.md §6) -----------------------------------------


class NoAuth(_Strict):
    """No authentication: refused unless the HTTP listener is bound to loopback."""

    method: Literal["none"] = "none"


class SharedSecretAuth(_Strict):
    """A static header whose value the client chose, e.g. FinBox's ``x-secret-key``."""

    method: Literal["shared_secret"]
    header: str = "x-secret-key"
    secret_env: str


class HmacAuth(_Strict):
    """HMAC-SHA256 over the raw body, Standard Webhooks style."""

    method: Literal["hmac"]
    # Several secrets so a rotation never rejects a valid delivery.
    secret_envs: list[str] = Field(min_length=1)
    tolerance_seconds: int = Field(default=300, gt=0)


class JwsAuth(_Strict):
    """Detached JWS (RS256) in ``x-jws-signature``, as ReBIT specifies for Setu."""

    method: Literal["jws"]
    # Path to the provider's PEM public key(s); several for rotation.
    public_key_files: list[Path] = Field(min_length=1)
    header: str = "x-jws-signature"


class BasicAuth(_Strict):
    method: Literal["basic"]
    username: str
    password_env: str


class IpAllowlistAuth(_Strict):
    method: Literal["ip_allowlist"]
    networks: list[str] = Field(min_length=1)
    # Only this header is trusted for the client address, and only from these proxies.
    trusted_proxy_header: str | None = None
    trusted_proxies: list[str] = Field(default_factory=list)

    @field_validator("networks", "trusted_proxies")
    @classmethod
    def _valid_networks(cls, value: list[str]) -> list[str]:
        for network in value:
            ipaddress.ip_network(network, strict=False)
        return value


AuthConfig = Annotated[
    NoAuth | SharedSecretAuth | HmacAuth | JwsAuth | BasicAuth | IpAllowlistAuth,
    Field(discriminator="method"),
]


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

    base_url: str | None = None
    timeout_seconds: float = Field(default=10.0, gt=0)


class _SourceBase(_Strict):
    # Filled from the key under [sources]; also the webhook path /webhooks/{id}.
    id: str = ""
    auth: AuthConfig = Field(default_factory=NoAuth)
    poll: PollSchedule = Field(default_factory=PollSchedule)


class FinboxSource(_SourceBase):
    provider: Literal["finbox"]
    api: ApiConfig = Field(default_factory=ApiConfig)


BanqwareStage = Literal[
    "Authentication", "Accounts", "AccountBalances", "Transactions", "TransactionDetails"
]


class BanqwareSource(_SourceBase):
    provider: Literal["banqware"]
    # A session is done when this stage finished; which stages a client runs is its own
    # choice at banqware, so it is configuration (DESIGN.md §4 rule 3).
    final_stage: BanqwareStage = "Transactions"
    api: ApiConfig = Field(default_factory=ApiConfig)


class SetuSource(_SourceBase):
    provider: Literal["setu"]
    api: ApiConfig = Field(default_factory=ApiConfig)


SourceConfig = Annotated[
    FinboxSource | BanqwareSource | SetuSource, Field(discriminator="provider")
]


def default_sources() -> dict[str, SourceConfig]:
    return {
        "finbox": FinboxSource(id="finbox", provider="finbox"),
        "banqware": BanqwareSource(id="banqware", provider="banqware"),
        "setu": SetuSource(id="setu", provider="setu"),
    }


# --- the whole gateway -------------------------------------------------------------------


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="STATUSGATE_", env_nested_delimiter="__", extra="forbid", frozen=True
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
    # Source id -> source. With no config file: one source per provider, no auth.
    sources: dict[str, SourceConfig] = Field(default_factory=default_sources)

    # Set by load_settings from --config; not a setting of its own.
    _config_file: Path | None = None

    @field_validator("sources")
    @classmethod
    def _valid_source_ids(cls, value: dict[str, SourceConfig]) -> dict[str, SourceConfig]:
        named: dict[str, SourceConfig] = {}
        for source_id, source in value.items():
            if not is_valid_source_id(source_id):
                raise ValueError(
                    f"source id {source_id!r}: lower-case letters, digits and '-' only"
                )
            if source.id and source.id != source_id:
                raise ValueError(f"source {source_id!r} says id = {source.id!r}")
            named[source_id] = source.model_copy(update={"id": source_id})
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
        open_sources = [sid for sid, s in self.sources.items() if isinstance(s.auth, NoAuth)]
        if open_sources:
            raise ValueError(
                f"sources {open_sources} have no webhook authentication, which is allowed "
                f"only when the HTTP listener is bound to loopback (http = {self.http!r})"
            )
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
        toml_file = _CONFIG_FILE.get("path")
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if toml_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_file))
        return tuple(sources)


# pydantic-settings builds sources from the class, so the file to read is passed aside.
_CONFIG_FILE: dict[str, Path | None] = {}


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Settings from defaults, ``config_file`` (TOML), the environment and ``overrides``
    (command-line flags; None values are ignored)."""
    if config_file is not None and not config_file.is_file():
        raise FileNotFoundError(f"config file {config_file} does not exist")
    _CONFIG_FILE["path"] = config_file
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    finally:
        _CONFIG_FILE.pop("path", None)


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
