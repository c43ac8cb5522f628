"""A Setu source's settings: its FIU API credentials and login endpoint."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from statusgate.config import ApiConfig, EnvName, HttpUrl, SourceConfig

BASE_URL = "https://fiu-sandbox.setu.co"
LOGIN_URL = "https://orgservice-prod.setu.co/v1/users/login"


class SetuApi(ApiConfig):
    """Setu AA v2: a bearer token from ``login_url`` plus ``x-product-instance-id``."""

    # The sandbox by default; production is https://fiu.setu.co.
    base_url: HttpUrl = BASE_URL
    login_url: HttpUrl = LOGIN_URL
    client_id_env: EnvName | None = None
    client_secret_env: EnvName | None = None
    product_instance_id_env: EnvName | None = None


class SetuSource(SourceConfig):
    provider: Literal["setu"]
    api: SetuApi = Field(default_factory=SetuApi)
