"""A FinBox source's settings: its BankConnect API credentials."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from statusgate.config import ApiConfig, EnvName, HttpUrl, SourceConfig

BASE_URL = "https://apis.bankconnect.finbox.in/bank-connect/v1"


class FinboxApi(ApiConfig):
    """FinBox BankConnect: every call carries ``x-api-key`` and ``server-hash``."""

    base_url: HttpUrl = BASE_URL
    api_key_env: EnvName | None = None
    server_hash_env: EnvName | None = None


class FinboxSource(SourceConfig):
    provider: Literal["finbox"]
    api: FinboxApi = Field(default_factory=FinboxApi)
