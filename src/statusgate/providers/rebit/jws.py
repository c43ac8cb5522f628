"""The FIU's detached JWS: how the gateway signs its answers and its requests.

``x-jws-signature: base64url(protected header) ".." base64url(signature)``, RS256 over
``base64url(header) "." body``, the body unencoded (RFC 7797): ReBIT's FAQ makes
``alg``, ``kid`` and ``b64: false`` the claims of a detached signature, and RFC 7797
asks ``crit: ["b64"]`` with it. A receiver verifies it over the exact bytes of the body
(the gateway's own webhook authentication, ``jws``, accepts it, and both forms).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from statusgate.config import SetupError
from statusgate.providers.rebit.config import RebitSigning

ALGORITHM = "RS256"
MIN_KEY_BITS = 2048


class Signer:
    """Signs bodies with one RSA key under one key id."""

    def __init__(self, key: RSAPrivateKey, key_id: str, *, unencoded: bool = True) -> None:
        if key.key_size < MIN_KEY_BITS:
            raise ValueError(f"a {key.key_size}-bit RSA key; at least {MIN_KEY_BITS} needed")
        self._key = key
        self.key_id = key_id
        self._unencoded = unencoded
        header: dict[str, object] = {"alg": ALGORITHM, "kid": key_id}
        if unencoded:
            header |= {"b64": False, "crit": ["b64"]}
        self._header = _b64url(json.dumps(header, separators=(",", ":")).encode())

    def sign(self, body: bytes) -> str:
        """The ``x-jws-signature`` value for ``body``."""
        payload = body if self._unencoded else _b64url(body)
        signature = self._key.sign(
            self._header + b"." + payload, padding.PKCS1v15(), hashes.SHA256()
        )
        return f"{self._header.decode()}..{_b64url(signature).decode()}"

    def __repr__(self) -> str:  # never the key
        return f"<Signer kid={self.key_id!r}>"


def load_private_key(path: Path) -> RSAPrivateKey:
    """An RSA private key from a PEM file. Raises ValueError with a message that names
    the file, never its contents."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise ValueError(f"{path} holds an encrypted key; it must be unencrypted") from None
    except ValueError:
        raise ValueError(f"{path} is not a PEM private key") from None
    if not isinstance(key, RSAPrivateKey):
        raise ValueError(f"{path} holds a {type(key).__name__}; RS256 needs an RSA key")
    if key.key_size < MIN_KEY_BITS:
        raise ValueError(f"{path} holds a {key.key_size}-bit RSA key; at least 2048 needed")
    return key


def load_signer(signing: RebitSigning) -> Signer:
    """The source's signer. Raises SetupError located at ``signing.private_key_file``."""
    try:
        return Signer(load_private_key(signing.private_key_file), signing.key_id)
    except ValueError as exc:
        raise SetupError([("signing.private_key_file", str(exc))]) from None


def _b64url(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")
