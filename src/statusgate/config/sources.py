"""Sources: a discriminated union on ``provider``, each with its webhook auth, rate
limit, provider API settings and reconciler schedule."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, model_validator

from statusgate.config.auth import AuthConfig, NoAuth
from statusgate.config.fields import (
    FINBOX_BASE_URL,
    SETU_BASE_URL,
    SETU_LOGIN_URL,
    ConfigPath,
    EnvName,
    HeaderName,
    HttpUrl,
    StrictModel,
)
from statusgate.core.names import is_valid_source_id

# --- sources --------------------------------------------------------------------------


class PollSchedule(StrictModel):
    """When the reconciler asks the provider about quiet, non-terminal subjects."""

    enabled: bool = True
    # A subject unchanged for this long is polled.
    quiet_seconds: float = Field(default=60.0, gt=0)
    # Backoff between polls of one subject: doubles up to max_interval_seconds.
    interval_seconds: float = Field(default=30.0, gt=0)
    max_interval_seconds: float = Field(default=900.0, gt=0)
    # Subjects older than this are left alone: the provider has forgotten them.
    max_age_seconds: float = Field(default=7 * 24 * 3600.0, gt=0)


class ApiConfig(StrictModel):
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


class RateLimit(StrictModel):
    """A token bucket per source: a flooding provider gets 429 + Retry-After, alone."""

    per_second: float = Field(gt=0)
    burst: int = Field(default=0, ge=0)  # 0: one second's worth


class _SourceBase(StrictModel):
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
