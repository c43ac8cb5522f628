"""Sign a simulated webhook the way the target source's ``auth`` expects, like the
provider would: the verifiers of ``web.auth``, run backwards.

Secrets come from the same environment variables the gateway's config names (so run
``simulate`` with the gateway's environment, or export the variables). A JWS needs the
provider's *private* key, which no gateway config holds: ``--jws-key``. An IP
allowlist needs nothing but to run from an allowed address.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from pathlib import Path
from typing import assert_never

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from statusgate.config import (
    AllOfAuth,
    AuthConfig,
    BasicAuth,
    HmacAuth,
    IpAllowlistAuth,
    JwsAuth,
    NoAuth,
    SharedSecretAuth,
    read_secret,
)
from statusgate.web.auth.base import b64url_encode
from statusgate.web.auth.standard_webhooks import decode_hmac_secret


class SigningError(Exception):
    """The source's authentication cannot be produced here; the message says why."""


def load_private_key(path: Path) -> RSAPrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError) as error:
        raise SigningError(f"cannot use {path} as a PEM private key: {error}") from None
    if not isinstance(key, RSAPrivateKey):
        raise SigningError(f"{path} is not an RSA private key (RS256 needs one)")
    return key


def sign(auth: AuthConfig, body: bytes, *, jws_key: RSAPrivateKey | None) -> dict[str, str]:
    """The headers that make ``body`` authentic for ``auth``."""
    try:
        return _sign(auth, body, jws_key)
    except ValueError as error:  # read_secret: a named variable is unset or empty
        raise SigningError(str(error)) from None


def _sign(auth: AuthConfig, body: bytes, jws_key: RSAPrivateKey | None) -> dict[str, str]:
    match auth:
        case NoAuth() | IpAllowlistAuth():
            return {}
        case SharedSecretAuth(header=header, secret_env=env):
            return {header: read_secret(env).get_secret_value()}
        case BasicAuth(username=username, password_env=env):
            pair = f"{username}:{read_secret(env).get_secret_value()}".encode()
            return {"Authorization": "Basic " + base64.b64encode(pair).decode()}
        case HmacAuth(secret_envs=envs):
            # The first secret: during a rotation it is the one a provider signs with.
            key = decode_hmac_secret(read_secret(envs[0]).get_secret_value())
            message_id = f"msg_{secrets.token_hex(12)}"
            timestamp = str(int(time.time()))
            signed = f"{message_id}.{timestamp}.".encode() + body
            signature = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest())
            return {
                "webhook-id": message_id,
                "webhook-timestamp": timestamp,
                "webhook-signature": "v1," + signature.decode(),
            }
        case JwsAuth(header=header):
            if jws_key is None:
                raise SigningError(
                    "the source checks a JWS (RS256): pass the provider's private key with "
                    "--jws-key"
                )
            protected = b64url_encode(json.dumps({"alg": "RS256"}).encode())
            signature = jws_key.sign(
                protected + b"." + b64url_encode(body), padding.PKCS1v15(), hashes.SHA256()
            )
            return {header: (protected + b".." + b64url_encode(signature)).decode()}
        case AllOfAuth(methods=methods):
            headers: dict[str, str] = {}
            for method in methods:
                headers.update(_sign(method, body, jws_key))
            return headers
        case _:
            assert_never(auth)
