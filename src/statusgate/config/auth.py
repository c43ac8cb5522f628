"""Webhook authentication of a source: a discriminated union on
``method``, verified by ``statusgate.web.auth``."""

from __future__ import annotations

import ipaddress
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from statusgate.config.fields import ConfigPath, EnvName, HeaderName, StrictModel

# --- webhook authentication ----------------------------------------------------------


class NoAuth(StrictModel):
    """No authentication: refused unless the HTTP listener is bound to loopback."""

    method: Literal["none"] = "none"


class SharedSecretAuth(StrictModel):
    """A static header whose value the client chose (``x-secret-key`` by default)."""

    method: Literal["shared_secret"]
    header: HeaderName = "x-secret-key"
    secret_env: EnvName


class HmacAuth(StrictModel):
    """HMAC-SHA256 over id, timestamp and raw body, Standard Webhooks style."""

    method: Literal["hmac"]
    # Several secrets so a rotation never rejects a valid delivery. Each variable holds
    # "whsec_<base64 key>" or the raw key.
    secret_envs: list[EnvName] = Field(min_length=1)
    # Replay protection: webhook-timestamp may be at most this far from our clock.
    tolerance_seconds: int = Field(default=300, gt=0)


class JwsAuth(StrictModel):
    """Detached JWS (RS256) in ``x-jws-signature``, as the Indian Account Aggregator
    standard specifies."""

    method: Literal["jws"]
    # The provider's PEM public key(s) or certificate(s); several for rotation.
    public_key_files: list[ConfigPath] = Field(min_length=1)
    header: HeaderName = "x-jws-signature"


class BasicAuth(StrictModel):
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


class IpAllowlistAuth(StrictModel):
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


class AllOfAuth(StrictModel):
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
