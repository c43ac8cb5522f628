"""Webhook verifiers with real keys and signatures, made the way each sender makes them."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID
from multidict import CIMultiDict, CIMultiDictProxy
from pydantic import TypeAdapter

from statusgate.config import AuthConfig, SourceConfig
from statusgate.web.auth import (
    AuthenticationError,
    SetupError,
    VerifiableRequest,
    WebhookVerifier,
    build_verifier,
)

BODY = b'{"type":"CONSENT_STATUS_UPDATE","consentId":"c-1","data":{"status":"ACTIVE"}}'
NOW = 1_700_000_000
_AUTH = TypeAdapter(AuthConfig)
_SOURCE = TypeAdapter(SourceConfig)


def auth(**config: Any) -> AuthConfig:
    return _AUTH.validate_python(config)


def verifier(**config: Any) -> WebhookVerifier:
    return build_verifier(auth(**config), clock=lambda: NOW)


def request(
    headers: Mapping[str, str] | list[tuple[str, str]] | None = None,
    body: bytes = BODY,
    peer: str | None = "127.0.0.1",
) -> VerifiableRequest:
    # The front door passes aiohttp's CIMultiDictProxy; build the same type here.
    return VerifiableRequest(
        headers=CIMultiDictProxy(CIMultiDict(headers or {})), body=body, peer=peer
    )


def refused(v: WebhookVerifier, req: VerifiableRequest) -> str:
    with pytest.raises(AuthenticationError) as info:
        v.verify(req)
    return info.value.reason


# --- the request -------------------------------------------------------------------------


def test_request_headers_are_case_insensitive_even_from_a_dict() -> None:
    req = VerifiableRequest(headers={"X-Secret-Key": "a"}, body=b"", peer=None)
    assert req.header_values("x-secret-key") == ["a"]
    assert req.single_header("X-SECRET-KEY") == "a"


def test_request_repr_shows_neither_headers_nor_body() -> None:
    req = request({"x-secret-key": "hunter2"}, body=b"private body")
    assert "hunter2" not in repr(req)
    assert "private body" not in repr(req)


# --- none ----------------------------------------------------------------------------------


def test_none_accepts_everything() -> None:
    verifier(method="none").verify(request(peer=None))


# --- shared secret ------------------------------------------------------------------------


@pytest.fixture
def finbox_secret(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("FINBOX_SECRET", "s3cr3t-ünïcode")
    return "s3cr3t-ünïcode"


def test_shared_secret_right(finbox_secret: str) -> None:
    v = verifier(method="shared_secret", secret_env="FINBOX_SECRET")
    # aiohttp hands header values over as UTF-8 with surrogateescape.
    wire = finbox_secret.encode().decode("utf-8", "surrogateescape")
    v.verify(request({"X-Secret-Key": wire}))


def test_shared_secret_wrong_missing_repeated(finbox_secret: str) -> None:
    v = verifier(method="shared_secret", secret_env="FINBOX_SECRET")
    assert refused(v, request({"x-secret-key": "guess"})) == (
        "header x-secret-key does not match the secret"
    )
    assert refused(v, request({"x-secret-key": finbox_secret + "x"}))
    assert refused(v, request({"x-secret-key": ""}))
    assert refused(v, request()) == "missing header x-secret-key"
    repeated = [("x-secret-key", "guess"), ("x-secret-key", finbox_secret)]
    assert refused(v, request(repeated)) == "header x-secret-key appears 2 times"


def test_shared_secret_custom_header(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOKEN", "t")
    v = verifier(method="shared_secret", header="X-Webhook-Token", secret_env="TOKEN")
    v.verify(request({"x-webhook-token": "t"}))
    assert refused(v, request({"x-secret-key": "t"})) == "missing header x-webhook-token"


def test_shared_secret_missing_variable_fails_at_build_naming_it() -> None:
    with pytest.raises(SetupError) as info:
        verifier(method="shared_secret", secret_env="STATUSGATE_TEST_UNSET")
    assert info.value.problems == [
        ("secret_env", "the environment variable this setting names is not set")
    ]


def test_empty_secret_is_refused_at_build(monkeypatch: pytest.MonkeyPatch) -> None:
    # An empty secret would accept an empty header: never.
    monkeypatch.setenv("EMPTY", "")
    with pytest.raises(SetupError, match="names is empty"):
        verifier(method="shared_secret", secret_env="EMPTY")


def test_verifier_repr_never_shows_the_secret(finbox_secret: str) -> None:
    v = verifier(method="shared_secret", secret_env="FINBOX_SECRET")
    assert finbox_secret not in repr(v)
    assert "shared_secret" in repr(v)


# --- HMAC (Standard Webhooks) ---------------------------------------------------------------

KEY_OLD = b"old-key-0123456789abcdef"
KEY_NEW = bytes(range(32))
WHSEC_NEW = "whsec_" + base64.b64encode(KEY_NEW).decode()


def sign_hmac(key: bytes, msg_id: str, timestamp: int | str, body: bytes = BODY) -> str:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def hmac_headers(
    signature: str, msg_id: str = "msg_1", timestamp: int | str = NOW
) -> dict[str, str]:
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature,
    }


@pytest.fixture
def hmac_verifier(monkeypatch: pytest.MonkeyPatch) -> WebhookVerifier:
    # Mid-rotation: the new key as whsec_, the old one raw.
    monkeypatch.setenv("HMAC_NEW", WHSEC_NEW)
    monkeypatch.setenv("HMAC_OLD", KEY_OLD.decode())
    return verifier(method="hmac", secret_envs=["HMAC_NEW", "HMAC_OLD"], tolerance_seconds=300)


def test_hmac_valid_with_either_rotated_secret(hmac_verifier: WebhookVerifier) -> None:
    hmac_verifier.verify(request(hmac_headers(sign_hmac(KEY_NEW, "msg_1", NOW))))
    hmac_verifier.verify(request(hmac_headers(sign_hmac(KEY_OLD, "msg_1", NOW))))


def test_whsec_prefix_is_decoded_not_used_verbatim(hmac_verifier: WebhookVerifier) -> None:
    as_text = WHSEC_NEW.encode()
    reason = refused(hmac_verifier, request(hmac_headers(sign_hmac(as_text, "msg_1", NOW))))
    assert reason == "no webhook-signature matches a configured secret"


def test_hmac_several_signatures_in_the_header(hmac_verifier: WebhookVerifier) -> None:
    header = " ".join(
        [
            "v1a,c29tZSBlZDI1NTE5IHNpZ25hdHVyZQ==",  # another scheme: skipped
            "v1,not-base64!",  # malformed: skipped
            sign_hmac(b"someone else", "msg_1", NOW),
            sign_hmac(KEY_OLD, "msg_1", NOW),
        ]
    )
    hmac_verifier.verify(request(hmac_headers(header)))


def test_hmac_timestamp_window(hmac_verifier: WebhookVerifier) -> None:
    for ts in (NOW - 300, NOW + 300):
        hmac_verifier.verify(request(hmac_headers(sign_hmac(KEY_NEW, "msg_1", ts), timestamp=ts)))
    stale = NOW - 301
    reason = refused(
        hmac_verifier, request(hmac_headers(sign_hmac(KEY_NEW, "msg_1", stale), timestamp=stale))
    )
    assert reason == "webhook-timestamp is 301 s old (tolerance 300 s)"
    future = NOW + 3600
    reason = refused(
        hmac_verifier,
        request(hmac_headers(sign_hmac(KEY_NEW, "msg_1", future), timestamp=future)),
    )
    assert reason == "webhook-timestamp is 3600 s in the future (tolerance 300 s)"


def test_hmac_replay_with_fresh_timestamp_breaks_the_signature(
    hmac_verifier: WebhookVerifier,
) -> None:
    old_signature = sign_hmac(KEY_NEW, "msg_1", NOW - 3600)
    assert refused(hmac_verifier, request(hmac_headers(old_signature, timestamp=NOW)))


def test_hmac_signature_binds_body_and_id(hmac_verifier: WebhookVerifier) -> None:
    signature = sign_hmac(KEY_NEW, "msg_1", NOW)
    assert refused(hmac_verifier, request(hmac_headers(signature), body=BODY + b" "))
    assert refused(hmac_verifier, request(hmac_headers(signature, msg_id="msg_2")))


@pytest.mark.parametrize(
    ("drop", "reason"),
    [
        ("webhook-id", "missing header webhook-id"),
        ("webhook-timestamp", "missing header webhook-timestamp"),
        ("webhook-signature", "missing header webhook-signature"),
    ],
)
def test_hmac_missing_headers(hmac_verifier: WebhookVerifier, drop: str, reason: str) -> None:
    headers = hmac_headers(sign_hmac(KEY_NEW, "msg_1", NOW))
    del headers[drop]
    assert refused(hmac_verifier, request(headers)) == reason


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        (
            hmac_headers(sign_hmac(KEY_NEW, "msg_1", NOW), timestamp="2023-11-14T22:13:20Z"),
            "header webhook-timestamp is not unix seconds",
        ),
        (
            hmac_headers("v1,", timestamp=NOW),
            "header webhook-signature holds no valid v1 signature",
        ),
        (
            hmac_headers("garbage", timestamp=NOW),
            "header webhook-signature holds no valid v1 signature",
        ),
        (hmac_headers(sign_hmac(KEY_NEW, "", NOW), msg_id=""), "header webhook-id is empty"),
    ],
)
def test_hmac_malformed_headers(
    hmac_verifier: WebhookVerifier, headers: dict[str, str], reason: str
) -> None:
    assert refused(hmac_verifier, request(headers)) == reason


def test_hmac_build_reports_every_bad_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HMAC_BAD", "whsec_***not base64***")
    with pytest.raises(SetupError) as info:
        verifier(method="hmac", secret_envs=["HMAC_UNSET_1", "HMAC_BAD"])
    assert info.value.problems == [
        ("secret_envs.0", "the environment variable this setting names is not set"),
        (
            "secret_envs.1",
            "the environment variable this setting names holds a whsec_ secret that is not "
            "valid base64",
        ),
    ]
    assert "***" not in str(info.value)


# --- JWS (ReBIT / Setu) ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def other_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def public_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def sign_jws(
    key: rsa.RSAPrivateKey, body: bytes = BODY, header: dict[str, Any] | None = None
) -> str:
    """A detached JWS as a ReBIT AA signs a notification."""
    header = header if header is not None else {"alg": "RS256", "kid": "aa-1"}
    encoded_header = b64url(json.dumps(header).encode())
    payload = body if header.get("b64") is False else b64url(body).encode()
    signing_input = encoded_header.encode() + b"." + payload
    signature = key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    return f"{encoded_header}..{b64url(signature)}"


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.fixture
def jws_verifier(
    tmp_path: Path, rsa_key: rsa.RSAPrivateKey, other_rsa_key: rsa.RSAPrivateKey
) -> WebhookVerifier:
    # Two keys, as during a provider's key rotation.
    files = [
        write(tmp_path, "old.pem", public_pem(other_rsa_key)),
        write(tmp_path, "new.pem", public_pem(rsa_key)),
    ]
    return verifier(method="jws", public_key_files=files)


def test_jws_detached_b64_passes(jws_verifier: WebhookVerifier, rsa_key: rsa.RSAPrivateKey) -> None:
    jws_verifier.verify(request({"x-jws-signature": sign_jws(rsa_key)}))


def test_jws_unencoded_payload_rfc7797_passes(
    jws_verifier: WebhookVerifier, rsa_key: rsa.RSAPrivateKey
) -> None:
    header = {"alg": "RS256", "b64": False, "crit": ["b64"]}
    jws_verifier.verify(request({"x-jws-signature": sign_jws(rsa_key, header=header)}))
    # Some senders leave out crit; the header is signed either way.
    lenient = {"alg": "RS256", "b64": False}
    jws_verifier.verify(request({"x-jws-signature": sign_jws(rsa_key, header=lenient)}))


def test_jws_with_the_rotated_key_passes(
    jws_verifier: WebhookVerifier, other_rsa_key: rsa.RSAPrivateKey
) -> None:
    jws_verifier.verify(request({"X-JWS-Signature": sign_jws(other_rsa_key)}))


def test_jws_tampered_body_fails(jws_verifier: WebhookVerifier, rsa_key: rsa.RSAPrivateKey) -> None:
    for header in ({"alg": "RS256"}, {"alg": "RS256", "b64": False, "crit": ["b64"]}):
        signature = sign_jws(rsa_key, header=header)
        tampered = BODY.replace(b"ACTIVE", b"REVOKED")
        reason = refused(jws_verifier, request({"x-jws-signature": signature}, body=tampered))
        assert reason == "JWS signature does not verify with any configured key"


def test_jws_b64_flag_cannot_be_flipped(
    jws_verifier: WebhookVerifier, rsa_key: rsa.RSAPrivateKey
) -> None:
    # Signed as b64; the attacker re-labels the header: the header is signed too.
    signed = sign_jws(rsa_key, header={"alg": "RS256"})
    forged_header = b64url(json.dumps({"alg": "RS256", "b64": False}).encode())
    forged = forged_header + ".." + signed.split("..")[1]
    assert refused(jws_verifier, request({"x-jws-signature": forged}))


def test_jws_wrong_key_fails(tmp_path: Path, rsa_key: rsa.RSAPrivateKey) -> None:
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    v = verifier(method="jws", public_key_files=[write(tmp_path, "k.pem", public_pem(rsa_key))])
    assert refused(v, request({"x-jws-signature": sign_jws(stranger)})) == (
        "JWS signature does not verify with any configured key"
    )


def test_jws_alg_none_fails(jws_verifier: WebhookVerifier) -> None:
    unsigned = b64url(json.dumps({"alg": "none"}).encode()) + ".."
    assert refused(jws_verifier, request({"x-jws-signature": unsigned})) == (
        "JWS alg 'none' is not RS256"
    )


def test_jws_hs256_keyed_with_the_public_key_fails(
    jws_verifier: WebhookVerifier, rsa_key: rsa.RSAPrivateKey
) -> None:
    # The classic algorithm confusion: HMAC keyed with the (public) PEM bytes.
    encoded_header = b64url(json.dumps({"alg": "HS256"}).encode())
    signing_input = f"{encoded_header}.{b64url(BODY)}".encode()
    mac = hmac.new(public_pem(rsa_key), signing_input, hashlib.sha256).digest()
    forged = f"{encoded_header}..{b64url(mac)}"
    assert refused(jws_verifier, request({"x-jws-signature": forged})) == (
        "JWS alg 'HS256' is not RS256"
    )


def test_jws_missing_header_fails(jws_verifier: WebhookVerifier) -> None:
    assert refused(jws_verifier, request()) == "missing header x-jws-signature"


def test_jws_malformed_fails(jws_verifier: WebhookVerifier, rsa_key: rsa.RSAPrivateKey) -> None:
    good = sign_jws(rsa_key)
    encoded_header, signature = good.split("..")
    attached = f"{encoded_header}.{b64url(BODY)}.{signature}"
    cases = {
        "not-a-jws": "header x-jws-signature is not a compact JWS (header..signature)",
        attached: "header x-jws-signature is not a detached JWS",
        f"{encoded_header}..!!!": "JWS signature is not base64url",
        f"e30..{signature}": "JWS alg None is not RS256",  # {} as header
        f"bm90IGpzb24..{signature}": "JWS protected header is not base64url JSON",
        f"{b64url(b'[1]')}..{signature}": "JWS protected header is not a JSON object",
    }
    for value, reason in cases.items():
        assert refused(jws_verifier, request({"x-jws-signature": value})) == reason


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (
            {"alg": "RS256", "crit": ["exp"], "exp": 1},
            "JWS crit lists a header parameter we do not implement",
        ),
        ({"alg": "RS256", "crit": ["b64"]}, "JWS crit lists a header parameter that is absent"),
        ({"alg": "RS256", "crit": []}, "JWS header parameter crit is not a list of names"),
        ({"alg": "RS256", "b64": "false"}, "JWS header parameter b64 is not a boolean"),
    ],
)
def test_jws_header_parameters(
    jws_verifier: WebhookVerifier, rsa_key: rsa.RSAPrivateKey, header: dict[str, Any], reason: str
) -> None:
    signature = sign_jws(rsa_key, header=header)
    assert refused(jws_verifier, request({"x-jws-signature": signature})) == reason


def test_jws_keys_from_the_header_are_never_trusted(
    jws_verifier: WebhookVerifier,
) -> None:
    attacker = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    numbers = attacker.public_key().public_numbers()
    jwk = {
        "kty": "RSA",
        "n": b64url(numbers.n.to_bytes(256, "big")),
        "e": b64url(numbers.e.to_bytes(3, "big")),
    }
    signature = sign_jws(attacker, header={"alg": "RS256", "jwk": jwk})
    assert refused(jws_verifier, request({"x-jws-signature": signature}))


def test_jws_key_from_a_certificate(tmp_path: Path, rsa_key: rsa.RSAPrivateKey) -> None:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "aa.example")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(rsa_key.public_key())
        .serial_number(1)
        .not_valid_before(datetime(2024, 1, 1, tzinfo=UTC))
        .not_valid_after(datetime(2034, 1, 1, tzinfo=UTC))
        .sign(rsa_key, hashes.SHA256())
    )
    path = write(tmp_path, "aa.crt", cert.public_bytes(serialization.Encoding.PEM))
    verifier(method="jws", public_key_files=[path]).verify(
        request({"x-jws-signature": sign_jws(rsa_key)})
    )


def test_jws_build_reports_every_bad_key_file(tmp_path: Path, rsa_key: rsa.RSAPrivateKey) -> None:
    private = rsa_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    ec_key = ec.generate_private_key(ec.SECP256R1()).public_key()
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    files = [
        tmp_path / "missing.pem",
        write(tmp_path, "private.pem", private),
        write(tmp_path, "garbage.pem", b"hello"),
        write(
            tmp_path,
            "ec.pem",
            ec_key.public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            ),
        ),
        write(tmp_path, "small.pem", public_pem(small)),
        write(tmp_path, "good.pem", public_pem(rsa_key)),
    ]
    with pytest.raises(SetupError) as info:
        verifier(method="jws", public_key_files=files)
    problems = dict(info.value.problems)
    assert set(problems) == {f"public_key_files.{i}" for i in range(5)}
    assert problems["public_key_files.0"].startswith(f"cannot read {files[0]}")
    assert problems["public_key_files.1"] == (
        f"{files[1]} holds a private key; configure the provider's public key"
    )
    assert problems["public_key_files.2"] == f"{files[2]} is not a PEM public key or certificate"
    assert "RS256 needs an RSA key" in problems["public_key_files.3"]
    assert problems["public_key_files.4"] == (
        f"{files[4]} holds a 1024-bit RSA key; at least 2048 needed"
    )
    # A private key's bytes never appear in the message.
    assert "BEGIN" not in str(info.value)


# --- basic ---------------------------------------------------------------------------------


def basic(username: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@pytest.fixture
def basic_verifier(monkeypatch: pytest.MonkeyPatch) -> WebhookVerifier:
    monkeypatch.setenv("BASIC_PASSWORD", "pa:ss wörd")
    return verifier(method="basic", username="banqware", password_env="BASIC_PASSWORD")


def test_basic_right(basic_verifier: WebhookVerifier) -> None:
    # The password may contain ':' (only the user-id cannot); the scheme is case-blind.
    basic_verifier.verify(request(basic("banqware", "pa:ss wörd")))
    token = basic("banqware", "pa:ss wörd")["Authorization"].removeprefix("Basic ")
    basic_verifier.verify(request({"authorization": f"basic  {token}"}))


def test_basic_wrong(basic_verifier: WebhookVerifier) -> None:
    for headers in (basic("banqware", "nope"), basic("other", "pa:ss wörd"), basic("", "")):
        assert refused(basic_verifier, request(headers)) == "Basic credentials do not match"
    assert refused(basic_verifier, request()) == "missing header authorization"
    assert refused(basic_verifier, request({"Authorization": "Bearer abc"})) == (
        "authorization header is not of the Basic scheme"
    )
    assert refused(basic_verifier, request({"Authorization": "Basic ***"})) == (
        "Basic credentials are not base64"
    )
    no_colon = base64.b64encode(b"banqware").decode()
    assert refused(basic_verifier, request({"Authorization": f"Basic {no_colon}"})) == (
        "Basic credentials have no ':' separator"
    )


# --- IP allowlist ----------------------------------------------------------------------------


def test_ip_allowlist_direct_peer() -> None:
    v = verifier(method="ip_allowlist", networks=["203.0.113.0/24", "2001:db8::/32"])
    v.verify(request(peer="203.0.113.7"))
    v.verify(request(peer="::ffff:203.0.113.7"))  # an IPv4 client on a dual-stack socket
    v.verify(request(peer="2001:db8::1"))
    assert refused(v, request(peer="198.51.100.1")) == (
        "client address 198.51.100.1 is not in the allowlist"
    )
    assert refused(v, request(peer=None)) == "the client address is unknown"
    assert refused(v, request(peer="unix-socket")) == "the peer address is not an IP address"


def test_ip_allowlist_ignores_forwarding_headers_without_trusted_proxies() -> None:
    v = verifier(method="ip_allowlist", networks=["203.0.113.0/24"])
    spoofed = {"X-Forwarded-For": "203.0.113.7", "Forwarded": "for=203.0.113.7"}
    assert refused(v, request(spoofed, peer="198.51.100.1"))


@pytest.fixture
def proxied() -> WebhookVerifier:
    return verifier(
        method="ip_allowlist",
        networks=["203.0.113.0/24"],
        trusted_proxy_header="X-Forwarded-For",
        trusted_proxies=["10.0.0.0/8"],
    )


def test_ip_allowlist_behind_a_trusted_proxy(proxied: WebhookVerifier) -> None:
    proxied.verify(request({"X-Forwarded-For": "203.0.113.7"}, peer="10.0.0.2"))
    # Two of our proxies in a row: the right-most address not ours is the client.
    proxied.verify(request({"X-Forwarded-For": "203.0.113.7, 10.1.1.1"}, peer="10.0.0.2"))
    # Repeated headers are one list.
    proxied.verify(
        request(
            [("X-Forwarded-For", "203.0.113.7"), ("X-Forwarded-For", "10.1.1.1")], peer="10.0.0.2"
        )
    )
    assert refused(proxied, request({"X-Forwarded-For": "198.51.100.1"}, peer="10.0.0.2")) == (
        "client address 198.51.100.1 is not in the allowlist"
    )


def test_ip_allowlist_spoofed_forwarded_for_from_an_untrusted_peer(
    proxied: WebhookVerifier,
) -> None:
    # The header is text the sender wrote: from a peer that is not our proxy it is ignored.
    reason = refused(proxied, request({"X-Forwarded-For": "203.0.113.7"}, peer="198.51.100.1"))
    assert reason == "client address 198.51.100.1 is not in the allowlist"


def test_ip_allowlist_spoofed_left_entries_through_the_proxy(proxied: WebhookVerifier) -> None:
    # The client prepends an allowed address; our proxy appends the real one.
    reason = refused(
        proxied, request({"X-Forwarded-For": "203.0.113.7, 198.51.100.1"}, peer="10.0.0.2")
    )
    assert reason == "client address 198.51.100.1 is not in the allowlist"


def test_ip_allowlist_trusted_proxy_without_header_or_with_garbage(
    proxied: WebhookVerifier,
) -> None:
    assert refused(proxied, request(peer="10.0.0.2")) == (
        "trusted proxy 10.0.0.2 sent no x-forwarded-for header"
    )
    assert refused(proxied, request({"X-Forwarded-For": "203.0.113.7, junk"}, peer="10.0.0.2")) == (
        "header x-forwarded-for holds a non-address entry"
    )


def test_ip_allowlist_request_from_the_proxy_itself() -> None:
    v = verifier(
        method="ip_allowlist",
        networks=["10.0.0.0/8"],
        trusted_proxy_header="x-forwarded-for",
        trusted_proxies=["10.0.0.0/8"],
    )
    v.verify(request({"x-forwarded-for": "10.9.9.9, 10.1.1.1"}, peer="10.0.0.2"))


def test_ip_allowlist_forwarded_header_rfc7239() -> None:
    v = verifier(
        method="ip_allowlist",
        networks=["2001:db8::/32", "203.0.113.0/24"],
        trusted_proxy_header="Forwarded",
        trusted_proxies=["10.0.0.0/8"],
    )
    v.verify(request({"Forwarded": 'for="[2001:db8::5]:4711";proto=https'}, peer="10.0.0.2"))
    v.verify(request({"Forwarded": "for=203.0.113.7:80, for=10.0.0.9"}, peer="10.0.0.2"))
    assert refused(v, request({"Forwarded": "for=_hidden"}, peer="10.0.0.2"))
    assert refused(v, request({"Forwarded": "for=198.51.100.1"}, peer="10.0.0.2"))


# --- all_of ---------------------------------------------------------------------------------


def test_all_of_needs_every_member(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FINBOX_SECRET", "s")
    v = verifier(
        method="all_of",
        methods=[
            {"method": "ip_allowlist", "networks": ["203.0.113.0/24"]},
            {"method": "shared_secret", "secret_env": "FINBOX_SECRET"},
        ],
    )
    v.verify(request({"x-secret-key": "s"}, peer="203.0.113.7"))
    assert refused(v, request({"x-secret-key": "s"}, peer="198.51.100.1")) == (
        "client address 198.51.100.1 is not in the allowlist"
    )
    assert refused(v, request({"x-secret-key": "x"}, peer="203.0.113.7")) == (
        "header x-secret-key does not match the secret"
    )


def test_all_of_names_the_member_that_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FINBOX_SECRET", "s")
    v = verifier(
        method="all_of",
        methods=[
            {"method": "ip_allowlist", "networks": ["203.0.113.0/24"]},
            {"method": "shared_secret", "secret_env": "FINBOX_SECRET"},
        ],
    )
    for req, method in (
        (request({"x-secret-key": "s"}, peer="198.51.100.1"), "ip_allowlist"),
        (request({"x-secret-key": "x"}, peer="203.0.113.7"), "shared_secret"),
    ):
        with pytest.raises(AuthenticationError) as info:
            v.verify(req)
        assert info.value.method == method


def test_all_of_build_locates_member_problems() -> None:
    with pytest.raises(SetupError) as info:
        verifier(
            method="all_of",
            methods=[
                {"method": "ip_allowlist", "networks": ["203.0.113.0/24"]},
                {"method": "shared_secret", "secret_env": "STATUSGATE_TEST_UNSET"},
            ],
        )
    assert info.value.problems == [
        ("methods.1.secret_env", "the environment variable this setting names is not set")
    ]


# --- every source at once ----------------------------------------------------------------------
