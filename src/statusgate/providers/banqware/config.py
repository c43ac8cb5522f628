"""A banqware source's settings: its final stage, API host, headers and mTLS files."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from statusgate.config import ApiConfig, ConfigPath, EnvName, HeaderName, HttpUrl, SourceConfig

BanqwareStage = Literal[
    "Authentication", "Accounts", "AccountBalances", "Transactions", "TransactionDetails"
]


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
    # How the status endpoints are told which session: banqware does not document it, so the
    # query parameter's name is an assumption that can be changed here.
    session_id_param: str = Field(default="sessionId", pattern=r"^[A-Za-z0-9_.\-\[\]]{1,64}$")

    @model_validator(mode="after")
    def _key_needs_cert(self) -> BanqwareApi:
        if self.client_key_file is not None and self.client_cert_file is None:
            raise ValueError("client_key_file is set but client_cert_file is not")
        return self


class BanqwareSource(SourceConfig):
    provider: Literal["banqware"]
    # A session is done when this stage finished; which stages a client runs is its own
    # choice at banqware, so it is configuration.
    final_stage: BanqwareStage = "Transactions"
    api: BanqwareApi = Field(default_factory=BanqwareApi)
