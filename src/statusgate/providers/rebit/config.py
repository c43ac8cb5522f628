"""A ReBIT source's settings: one Account Aggregator, as the FIU knows it.

The AA's public keys are the source's ``jws`` webhook authentication (and its API key
the ``shared_secret`` one, on header ``aa_api_key``); what is ReBIT's own is here: the
FIU's signing key, the AA's id, the versions and the clock window the notifications
are held to, and the AA's API for polling (``POST /Consent/handle``) with the token
service that authorises it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, ValidationInfo, field_validator

from statusgate.config import (
    ApiConfig,
    ConfigPath,
    EnvName,
    HttpUrl,
    NoAuth,
    SourceConfig,
    StrictModel,
)

# The API version of the FIU callback API and of the AA API this package speaks.
VERSION = "2.0.0"
# Sahamati's token service (entity tokens: an id and a secret, answered with a bearer
# token valid for 24 hours).
SAHAMATI_TOKEN_URL = "https://api.sahamati.org.in/iam/v1/entity/token/generate"  # noqa: S105


class RebitSigning(StrictModel):
    """The FIU's own key: it signs every answer to the AA and every request to it."""

    # PEM private key (PKCS#8 or PKCS#1, unencrypted), RSA of at least 2048 bits.
    private_key_file: ConfigPath
    # The ``kid`` of the signatures: the id under which the AA (or Sahamati's Central
    # Registry) knows the matching public key.
    key_id: str = Field(min_length=1, max_length=256)


class RebitApi(ApiConfig):
    """The AA's API (``POST /Consent/handle``), authorised by a token from
    ``token_url`` in the ``client_api_key`` header; requests are signed."""

    # The AA's base URL, e.g. "https://aa.example.in/api/v2"; required for polling.
    base_url: HttpUrl | None = None
    token_url: HttpUrl = SAHAMATI_TOKEN_URL
    # "sahamati": a form with ``id`` and ``secret`` (Sahamati's token service);
    # "oauth2": ``grant_type=client_credentials`` with HTTP basic client credentials.
    token_request: Literal["sahamati", "oauth2"] = "sahamati"  # noqa: S105
    client_id_env: EnvName | None = None
    client_secret_env: EnvName | None = None

    @property
    def named(self) -> bool:
        """Whether any polling setting is given (then signing is needed too)."""
        return bool(self.base_url or self.client_id_env or self.client_secret_env)


class RebitSource(SourceConfig):
    provider: Literal["rebit"]
    api: RebitApi = Field(default_factory=RebitApi)
    # The AA's id in the AA ecosystem (Sahamati's Central Registry): notifications must
    # name it as their Notifier, and requests carry it as x-request-meta recipient-id.
    # Unset: any notifier id is accepted and no x-request-meta is sent.
    aa_id: str | None = Field(default=None, min_length=1, max_length=256)
    # Accepted ``ver`` of notifications; any other is refused with NoSuchVersion (404).
    versions: list[str] = Field(default_factory=lambda: [VERSION], min_length=1)
    # A notification whose ``timestamp`` is further than this from our clock is
    # refused (InvalidRequest): the standard's 15 minutes by default.
    timestamp_tolerance_seconds: float = Field(default=900.0, gt=0)
    # Checked last (after auth and api): see _signed.
    signing: RebitSigning | None = Field(default=None, validate_default=True)

    @field_validator("signing")
    @classmethod
    def _signed(cls, value: RebitSigning | None, info: ValidationInfo) -> RebitSigning | None:
        # The standard signs every answer and every request. Unsigned answers are left
        # to a source without authentication (loopback only: local development).
        if value is not None:
            return value
        auth, api = info.data.get("auth"), info.data.get("api")
        if auth is not None and not isinstance(auth, NoAuth):
            raise ValueError(
                "is required: a ReBIT source with webhook authentication signs its answers"
            )
        if isinstance(api, RebitApi) and api.named:
            raise ValueError("is required: polling the AA signs its requests")
        return value
