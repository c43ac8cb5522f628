"""The ReBIT package's parts: the FIU's signer, the answers' vocabulary, the source's
settings and the notifications a simulation builds."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from statusgate.app import load_settings
from statusgate.cli import main
from statusgate.config import ConfigError
from statusgate.config_check import check_config
from statusgate.providers.rebit import SPEC
from statusgate.providers.rebit.answers import RebitAcknowledgement
from statusgate.providers.rebit.config import RebitSource
from statusgate.providers.rebit.jws import Signer, load_private_key
from statusgate.providers.rebit.notifications import (
    FipAccount,
    consent_notification,
    fi_notification,
    signed,
)
from statusgate.providers.spec import WebhookReply
from statusgate.v1 import status_pb2 as pb
from statusgate.web.auth import JwsVerifier, VerifiableRequest
from tests.fakes.rebit import private_pem, public_pem, rsa_key

# --- the signer -------------------------------------------------------------------------------


@pytest.mark.parametrize("unencoded", [True, False])
def test_the_signer_makes_a_detached_jws_the_gateway_itself_accepts(unencoded: bool) -> None:
    key = rsa_key("fiu")
    body = b'{"ver":"2.0.0","txnid":"t"}'
    value = Signer(key, "kid-1", unencoded=unencoded).sign(body)
    _, payload, _ = value.split(".")
    assert payload == ""  # detached
    JwsVerifier([key.public_key()]).verify(
        VerifiableRequest(headers={"x-jws-signature": value}, body=body)
    )
    with pytest.raises(Exception, match="does not verify"):
        JwsVerifier([key.public_key()]).verify(
            VerifiableRequest(headers={"x-jws-signature": value}, body=body + b" ")
        )


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_private_key_files_are_checked_and_named(tmp_path: Path) -> None:
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    encrypted = rsa_key("fiu").private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"pw"),
    )
    cases = {
        tmp_path / "missing.pem": "cannot read",
        _write(tmp_path, "public.pem", public_pem(rsa_key("fiu"))): "is not a PEM private key",
        _write(tmp_path, "enc.pem", encrypted): "encrypted key",
        _write(
            tmp_path,
            "ec.pem",
            ec_key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
        ): "needs an RSA key",
        _write(tmp_path, "small.pem", private_pem(small)): "1024-bit",
    }
    for path, words in cases.items():
        with pytest.raises(ValueError, match=words) as raised:
            load_private_key(path)
        assert str(path) in str(raised.value)
        assert "BEGIN" not in str(raised.value)
    assert (
        load_private_key(_write(tmp_path, "ok.pem", private_pem(rsa_key("fiu")))).key_size == 2048
    )


# --- the answers ------------------------------------------------------------------------------


def encode(
    reply: WebhookReply, request: dict[str, Any] | None = None
) -> tuple[int, dict[str, Any]]:
    ack = RebitAcknowledgement(Signer(rsa_key("fiu"), "k"), ["2.0.0", "2.1.0"])
    body = json.dumps(request).encode() if request is not None else None
    encoded = ack.encode(body, reply)
    JwsVerifier([rsa_key("fiu").public_key()]).verify(
        VerifiableRequest(headers=encoded.headers, body=encoded.body)
    )
    return encoded.status, json.loads(encoded.body)


def _refusal(status: int, **fields: Any) -> WebhookReply:
    return WebhookReply(status, {"error": {"code": "x", "message": "why"}}, **fields)


@pytest.mark.parametrize(
    ("reply", "status", "code"),
    [
        (_refusal(400), 400, "InvalidRequest"),
        (_refusal(400, provider_code="InvalidFIStatus"), 400, "InvalidFIStatus"),
        (_refusal(400, provider_code="NoSuchVersion"), 404, "NoSuchVersion"),
        (_refusal(401, failed_check="jws"), 400, "SignatureDoesNotMatch"),
        (_refusal(401, failed_check="shared_secret"), 401, "Unauthorized"),
        (_refusal(401, failed_check="ip_allowlist"), 401, "Unauthorized"),
        (_refusal(404), 404, "InvalidURI"),
        (_refusal(409), 409, "IdempotencyError"),
        (_refusal(413), 413, "InvalidRequest"),
        (_refusal(429, headers={"Retry-After": "2"}), 503, "ServiceUnavailable"),
        (_refusal(503, headers={"Retry-After": "5"}), 503, "ServiceUnavailable"),
        (_refusal(500), 500, "InternalError"),
    ],
)
def test_every_refusal_has_the_standards_code(reply: WebhookReply, status: int, code: str) -> None:
    got_status, body = encode(reply, {"ver": "2.1.0", "txnid": "t-1"})
    assert (got_status, body["errorCode"]) == (status, code)
    assert (body["ver"], body["txnid"], body["errorMsg"]) == ("2.1.0", "t-1", "why")


def test_success_and_unmapped_are_ok_and_echo_what_can_be_echoed() -> None:
    for gateway_status in (200, 202):
        status, body = encode(WebhookReply(gateway_status, {}), {"ver": "9", "txnid": "t-2"})
        assert status == 200
        assert body == {
            "ver": "2.0.0",  # not supported: our first version
            "timestamp": body["timestamp"],
            "txnid": "t-2",
            "response": "OK",
        }
    _, body = encode(WebhookReply(200, {}), None)
    assert body["txnid"] == ""
    _, body = encode(WebhookReply(200, {}), {"txnid": "x" * 1000})
    assert body["txnid"] == ""


def test_a_retry_after_is_kept_and_nothing_else() -> None:
    ack = RebitAcknowledgement(None, ["2.0.0"])
    encoded = ack.encode(None, _refusal(503, headers={"Retry-After": "5", "X-Other": "1"}))
    assert encoded.headers == {"Content-Type": "application/json", "Retry-After": "5"}


# --- the source's settings ----------------------------------------------------------------------


def _toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "statusgate.toml"
    path.write_text(textwrap.dedent(text))
    return path


def test_an_authenticated_source_must_sign_its_answers(tmp_path: Path) -> None:
    path = _toml(
        tmp_path,
        """
        [sources.aa]
        provider = "rebit"
        auth = { method = "jws", public_key_files = ["aa.pem"] }
        [sources.polled]
        provider = "rebit"
        api = { base_url = "https://aa.example.in" }
        """,
    )
    with pytest.raises(ConfigError) as raised:
        load_settings(path)
    assert raised.value.problems == [
        "sources.aa.signing: is required: a ReBIT source with webhook authentication signs "
        "its answers",
        "sources.polled.signing: is required: polling the AA signs its requests",
    ]


def test_check_config_names_an_unusable_signing_key_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(tmp_path, "aa.pem", public_pem(rsa_key("aa")))
    monkeypatch.setenv("FIU_ID", "id")
    monkeypatch.setenv("FIU_SECRET", "secret")
    path = _toml(
        tmp_path,
        """
        [sources.aa]
        provider = "rebit"
        auth = { method = "jws", public_key_files = ["aa.pem"] }
        signing = { private_key_file = "fiu.pem", key_id = "fiu-1" }
        [sources.aa.api]
        base_url = "https://aa.example.in"
        client_id_env = "FIU_ID"
        client_secret_env = "FIU_SECRET"
        """,
    )
    assert check_config(path) == [
        f"sources.aa.signing.private_key_file: cannot read {tmp_path / 'fiu.pem'}: "
        "No such file or directory"
    ]
    _write(tmp_path, "fiu.pem", private_pem(rsa_key("fiu")))
    assert check_config(path) == []


def test_the_defaults() -> None:
    source = RebitSource(provider="rebit", id="aa")
    assert (source.versions, source.timestamp_tolerance_seconds, source.aa_id) == (
        ["2.0.0"],
        900,
        None,
    )
    assert source.api.token_url == "https://api.sahamati.org.in/iam/v1/entity/token/generate"
    assert source.api.token_request == "sahamati"
    # The source a gateway without config gets: open on loopback, unsigned answers.
    assert load_settings().sources["rebit"].signing is None


# --- notifications for simulations --------------------------------------------------------------


def test_built_notifications_are_what_the_adapter_maps() -> None:
    source = RebitSource(provider="rebit", id="aa", aa_id="AA-9")
    consent = consent_notification("h", "ACTIVE", consent_id="c", aa_id="AA-9")
    fi = fi_notification("s", "COMPLETED", [FipAccount("F", "L", "READY")], aa_id="AA-9")
    assert SPEC.adapter.normalize(source, consent)[0].attributes["consent_id"] == "c"
    assert [s.state for s in SPEC.adapter.normalize(source, fi)] == [
        pb.STATE_COMPLETED,
        pb.STATE_COMPLETED,
    ]
    assert signed(consent, rsa_key("aa")).path == "Consent/Notification"
    notification = signed(fi, rsa_key("aa"), api_key="k", recipient_id="FIU-1")
    assert notification.path == "FI/Notification"
    assert notification.headers["aa_api_key"] == "k"
    assert notification.message == fi
    with pytest.raises(ValueError, match="not a consent or FI notification"):
        signed({"ver": "2.0.0"}, rsa_key("aa"))


def test_register_webhook_says_where_the_url_goes(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    url = "https://gateway.example.com/webhooks/rebit"
    assert main(["register-webhook", "--source", "rebit", "--url", url]) == 0
    out = capsys.readouterr().out
    assert "FIU's base URL" in out and url in out and "/Consent/Notification" in out
    assert "Nothing was registered" in out
