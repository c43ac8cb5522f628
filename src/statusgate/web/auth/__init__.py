"""Webhook authentication: one verifier per source, built at start-up.

The front door builds a ``VerifiableRequest`` from each inbound webhook and calls
``verifier.verify(request)``; ``AuthenticationError.reason`` is safe to log. Verifiers
are built from the config by ``build_verifier``, which reads secrets from the
environment and key files from disk *then*, so a missing variable or an unreadable key
stops the gateway at start-up instead of failing every webhook later.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import assert_never

from statusgate.config import (
    AllOfAuth,
    AuthConfig,
    BasicAuth,
    HmacAuth,
    IpAllowlistAuth,
    JwsAuth,
    NoAuth,
    SetupError,
    SharedSecretAuth,
    read_secret,
)
from statusgate.logs import register_basic_credentials
from statusgate.web.auth.base import (
    AuthenticationError,
    VerifiableRequest,
    WebhookVerifier,
)
from statusgate.web.auth.jws import JwsVerifier, load_public_key
from statusgate.web.auth.network import IpAllowlistVerifier
from statusgate.web.auth.simple import (
    AllOfVerifier,
    BasicAuthVerifier,
    NoAuthVerifier,
    SharedSecretVerifier,
)
from statusgate.web.auth.standard_webhooks import StandardWebhooksVerifier, decode_hmac_secret

__all__ = [
    "AllOfVerifier",
    "AuthenticationError",
    "BasicAuthVerifier",
    "IpAllowlistVerifier",
    "JwsVerifier",
    "NoAuthVerifier",
    "SetupError",
    "SharedSecretVerifier",
    "StandardWebhooksVerifier",
    "VerifiableRequest",
    "WebhookVerifier",
    "build_verifier",
]

Clock = Callable[[], float]


def build_verifier(auth: AuthConfig, *, clock: Clock = time.time) -> WebhookVerifier:
    """The verifier for one source's ``auth`` table. Raises ``SetupError`` listing
    every problem (each unset variable, each unusable key file), located relative to
    the table. ``clock`` (unix seconds) is for the HMAC replay window."""
    match auth:
        case NoAuth():
            return NoAuthVerifier()
        case SharedSecretAuth():
            secret = _secret(auth.secret_env, "secret_env")
            return SharedSecretVerifier(auth.header, secret.encode("utf-8"))
        case BasicAuth():
            password = _secret(auth.password_env, "password_env")
            # The Authorization header carries them base64-encoded: mask that form too.
            register_basic_credentials(auth.username, password)
            return BasicAuthVerifier(auth.username.encode("utf-8"), password.encode("utf-8"))
        case HmacAuth():
            return _hmac(auth, clock)
        case JwsAuth():
            return _jws(auth)
        case IpAllowlistAuth():
            return IpAllowlistVerifier(
                auth.networks, auth.trusted_proxy_header, auth.trusted_proxies
            )
        case AllOfAuth():
            return _all_of(auth, clock)
        case _:
            assert_never(auth)


def _secret(env_name: str, loc: str) -> str:
    try:
        return read_secret(env_name).get_secret_value()
    except ValueError as exc:
        # read_secret's message names the variable, never a value.
        raise SetupError([(loc, str(exc))]) from None


def _hmac(auth: HmacAuth, clock: Clock) -> StandardWebhooksVerifier:
    keys: list[bytes] = []
    problems: list[tuple[str, str]] = []
    for index, env_name in enumerate(auth.secret_envs):
        loc = f"secret_envs.{index}"
        try:
            keys.append(decode_hmac_secret(_secret(env_name, loc)))
        except SetupError as exc:
            problems.extend(exc.problems)
        except ValueError:
            problems.append(
                (
                    loc,
                    "the environment variable this setting names holds a whsec_ secret "
                    "that is not valid base64",
                )
            )
    if problems:
        raise SetupError(problems)
    return StandardWebhooksVerifier(keys, auth.tolerance_seconds, clock)


def _jws(auth: JwsAuth) -> JwsVerifier:
    keys = []
    problems: list[tuple[str, str]] = []
    for index, path in enumerate(auth.public_key_files):
        try:
            keys.append(load_public_key(path))
        except ValueError as exc:
            problems.append((f"public_key_files.{index}", str(exc)))
    if problems:
        raise SetupError(problems)
    return JwsVerifier(keys, auth.header)


def _all_of(auth: AllOfAuth, clock: Clock) -> AllOfVerifier:
    members: list[WebhookVerifier] = []
    problems: list[tuple[str, str]] = []
    for index, member in enumerate(auth.methods):
        try:
            members.append(build_verifier(member, clock=clock))
        except SetupError as exc:
            problems.extend(exc.located(f"methods.{index}.").problems)
    if problems:
        raise SetupError(problems)
    return AllOfVerifier(members)
