"""Settings: TOML, environment overrides, precise locations, and check-config."""

from __future__ import annotations

import os
import re
import shutil
import socket
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from pydantic import BaseModel

from statusgate.app import load_settings
from statusgate.config import (
    AllOfAuth,
    BasicAuth,
    ClientConfig,
    ConfigError,
    FrontDoor,
    GrpcLimits,
    GrpcTls,
    HmacAuth,
    IpAllowlistAuth,
    JwsAuth,
    NoAuth,
    PollSchedule,
    RateLimit,
    Retention,
    Settings,
    SharedSecretAuth,
)
from statusgate.config_check import check_config
from statusgate.providers.banqware import BanqwareApi, BanqwareSource
from statusgate.providers.finbox import FinboxApi, FinboxSource
from statusgate.providers.registry import PROVIDERS
from statusgate.providers.setu import SetuApi

ROOT = Path(__file__).parent.parent.parent
EXAMPLE = ROOT / "examples" / "statusgate.toml"
DOCS = ROOT / "docs" / "configuration.md"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # The developer's own STATUSGATE_* variables must not leak into these tests.
    for name in list(os.environ):
        if name.upper().startswith("STATUSGATE_"):
            monkeypatch.delenv(name)


def toml(tmp_path: Path, text: str, name: str = "statusgate.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def problems_of(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    return info.value.problems


# --- defaults and the file ------------------------------------------------------------------


def test_defaults_without_a_file() -> None:
    settings = load_settings()
    assert settings.http == "127.0.0.1:8080"
    assert settings.grpc == "127.0.0.1:50051"
    assert settings.store == "sqlite:///./statusgate.db"
    assert settings.max_body_bytes == 1024 * 1024
    assert settings.config_file is None
    assert {sid: s.provider for sid, s in settings.sources.items()} == {
        "finbox": "finbox",
        "banqware": "banqware",
        "setu": "setu",
        "rebit": "rebit",
    }
    assert all(isinstance(s.auth, NoAuth) for s in settings.sources.values())
    assert all(sid == s.id for sid, s in settings.sources.items())


def test_toml_file(tmp_path: Path) -> None:
    path = toml(
        tmp_path,
        """
        http = "0.0.0.0:9000"
        store = "sqlite:///data/sg.db"
        max_body_bytes = 2048

        [sources.finbox-main]
        provider = "finbox"
        [sources.finbox-main.auth]
        method = "shared_secret"
        secret_env = "FINBOX_SECRET"
        [sources.finbox-main.api]
        api_key_env = "FINBOX_API_KEY"

        [sources.bq]
        provider = "banqware"
        final_stage = "TransactionDetails"
        [sources.bq.auth]
        method = "ip_allowlist"
        networks = ["203.0.113.0/24"]
        [sources.bq.api]
        base_url = "https://hub.example.com/api/"
        headers_env = { "X-Api-Key" = "BQ_KEY" }
        client_cert_file = "tls/client.pem"
        """,
    )
    settings = load_settings(path)
    assert settings.config_file == path
    assert settings.http == "0.0.0.0:9000"
    assert settings.max_body_bytes == 2048
    # Declaring [sources] replaces the defaults.
    assert set(settings.sources) == {"finbox-main", "bq"}
    finbox = settings.sources["finbox-main"]
    assert isinstance(finbox, FinboxSource)
    assert finbox.id == "finbox-main"
    assert finbox.auth == SharedSecretAuth(method="shared_secret", secret_env="FINBOX_SECRET")
    assert finbox.api.base_url == "https://apis.bankconnect.finbox.in/bank-connect/v1"
    assert finbox.api.api_key_env == "FINBOX_API_KEY"
    assert finbox.api.server_hash_env is None
    banqware = settings.sources["bq"]
    assert isinstance(banqware, BanqwareSource)
    assert banqware.final_stage == "TransactionDetails"
    assert banqware.api.base_url == "https://hub.example.com/api"  # trailing slash dropped
    assert banqware.api.headers_env == {"x-api-key": "BQ_KEY"}
    # Relative to the config file, not to the working directory.
    assert banqware.api.client_cert_file == tmp_path / "tls" / "client.pem"


def test_file_without_sources_keeps_the_defaults(tmp_path: Path) -> None:
    settings = load_settings(toml(tmp_path, 'store = "sqlite:///x.db"\n'))
    assert set(settings.sources) == {"finbox", "banqware", "setu", "rebit"}


def test_empty_sources_table_means_no_sources(tmp_path: Path) -> None:
    assert load_settings(toml(tmp_path, "[sources]\n")).sources == {}


def test_setu_api_defaults() -> None:
    api = SetuApi()
    assert api.base_url == "https://fiu-sandbox.setu.co"
    assert api.login_url == "https://orgservice-prod.setu.co/v1/users/login"
    assert api.timeout_seconds == 10


def test_missing_file() -> None:
    with pytest.raises(FileNotFoundError):
        load_settings(Path("/nonexistent/statusgate.toml"))


def test_toml_syntax_error_has_line_and_column(tmp_path: Path) -> None:
    path = toml(tmp_path, 'http = "127.0.0.1:8080"\n[sources.x\nprovider = "finbox"\n')
    (problem,) = problems_of(path)
    assert problem.startswith(f"{path}: TOML syntax error: ")
    assert "line 2" in problem
    assert "column" in problem


# --- environment overrides -------------------------------------------------------------------


def test_environment_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = toml(
        tmp_path,
        """
        http = "127.0.0.1:9000"
        store = "sqlite:///file.db"
        [sources.setu-main]
        provider = "setu"
        [sources.setu-main.auth]
        method = "hmac"
        secret_envs = ["A"]
        """,
    )
    monkeypatch.setenv("STATUSGATE_HTTP", "127.0.0.1:9100")
    monkeypatch.setenv("STATUSGATE_STORE", "postgresql://db/statusgate")
    # Nested keys with "__"; a list as JSON; the rest of the source still from the file.
    monkeypatch.setenv("STATUSGATE_SOURCES__SETU-MAIN__AUTH__SECRET_ENVS", '["B", "A"]')
    monkeypatch.setenv("STATUSGATE_SOURCES__SETU-MAIN__API__BASE_URL", "https://fiu.setu.co")
    settings = load_settings(path)
    assert settings.http == "127.0.0.1:9100"
    assert settings.store == "postgresql://db/statusgate"
    setu = settings.sources["setu-main"]
    assert isinstance(setu.auth, HmacAuth)
    assert setu.auth.secret_envs == ["B", "A"]
    assert setu.api.base_url == "https://fiu.setu.co"
    # Flags beat the environment.
    assert load_settings(path, http="127.0.0.1:1", store=None).http == "127.0.0.1:1"


def test_environment_adjusts_the_default_sources(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STATUSGATE_SOURCES__FINBOX__AUTH__METHOD", "shared_secret")
    monkeypatch.setenv("STATUSGATE_SOURCES__FINBOX__AUTH__SECRET_ENV", "FINBOX_SECRET")
    settings = load_settings()
    assert set(settings.sources) == {"finbox", "banqware", "setu", "rebit"}
    assert isinstance(settings.sources["finbox"].auth, SharedSecretAuth)


def test_sources_passed_whole_replace_the_defaults() -> None:
    settings = load_settings(sources={"only": {"provider": "setu"}})
    assert set(settings.sources) == {"only"}


# --- precise locations ----------------------------------------------------------------------


def test_unknown_provider_and_method_are_located(tmp_path: Path) -> None:
    path = toml(
        tmp_path,
        """
        [sources.x]
        provider = "foo"
        [sources.y]
        provider = "finbox"
        [sources.y.auth]
        method = "magic"
        [sources.z]
        api = {}
        """,
    )
    assert problems_of(path) == [
        "sources.x.provider: Input tag 'foo' found using 'provider' does not match any of "
        "the expected tags: 'finbox', 'banqware', 'setu', 'rebit'",
        "sources.y.auth.method: Input tag 'magic' found using 'method' does not match any "
        "of the expected tags: 'none', 'shared_secret', 'hmac', 'jws', 'basic', "
        "'ip_allowlist', 'all_of'",
        "sources.z.provider: is required: one of 'finbox', 'banqware', 'setu', 'rebit'",
    ]


def test_nested_errors_are_located_without_union_tags(tmp_path: Path) -> None:
    path = toml(
        tmp_path,
        """
        [sources.finbox]
        provider = "finbox"
        [sources.finbox.auth]
        method = "shared_secret"
        heder = "x-secret-key"
        [sources.finbox.poll]
        quiet_seconds = -1
        [sources.s]
        provider = "setu"
        [sources.s.auth]
        method = "all_of"
        [[sources.s.auth.methods]]
        method = "ip_allowlist"
        networks = ["10.0.0.0/33"]
        [[sources.s.auth.methods]]
        method = "none"
        """,
    )
    problems = problems_of(path)
    assert problems[:3] == [
        "sources.finbox.auth.secret_env: Field required",
        "sources.finbox.auth.heder: Extra inputs are not permitted",
        "sources.finbox.poll.quiet_seconds: Input should be greater than 0",
    ]
    assert problems[3].startswith("sources.s.auth.methods.0.networks: ")
    assert problems[4].startswith("sources.s.auth.methods.1.method: Input tag 'none'")
    assert len(problems) == 5


def test_inline_secret_is_never_echoed(tmp_path: Path) -> None:
    path = toml(
        tmp_path,
        """
        [sources.finbox]
        provider = "finbox"
        [sources.finbox.auth]
        method = "shared_secret"
        secret = "hunter2-inline"
        secret_env = "hunter2-in-the-wrong-place!"
        """,
    )
    problems = problems_of(path)
    assert problems == [
        "sources.finbox.auth.secret_env: must be the name of an environment variable "
        "(letters, digits and '_', not starting with a digit), not the secret itself",
        "sources.finbox.auth.secret: Extra inputs are not permitted (secrets are named by "
        "environment variable: use secret_env)",
    ]
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert "hunter2" not in str(info.value)
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__


def test_source_ids_and_addresses(tmp_path: Path) -> None:
    path = toml(
        tmp_path,
        """
        http = "localhost"
        [sources.Bad_Id]
        provider = "finbox"
        [sources.ok]
        provider = "finbox"
        id = "other"
        """,
    )
    problems = problems_of(path)
    assert problems[0] == "http: 'localhost' is not HOST:PORT"
    assert problems[1].startswith("sources.Bad_Id.[key]: source id: lower-case letters")
    # The id check runs once the sources themselves are valid.
    path = toml(tmp_path, '[sources.ok]\nprovider = "finbox"\nid = "other"\n')
    assert problems_of(path) == ["sources.ok.id: must be empty or equal the key 'ok'"]


def test_ip_allowlist_proxy_options_come_in_pairs() -> None:
    with pytest.raises(ValueError, match="trusted_proxies is empty"):
        IpAllowlistAuth(method="ip_allowlist", networks=["::/0"], trusted_proxy_header="x-real-ip")
    with pytest.raises(ValueError, match="trusted_proxy_header is not"):
        IpAllowlistAuth(method="ip_allowlist", networks=["::/0"], trusted_proxies=["10.0.0.0/8"])


def test_api_validation() -> None:
    with pytest.raises(ValueError, match="client_key_file is set but client_cert_file is not"):
        BanqwareApi(client_key_file=Path("k.pem"))
    with pytest.raises(ValueError, match="absolute http"):
        FinboxApi(base_url="apis.bankconnect.finbox.in")
    with pytest.raises(ValueError, match="not a valid HTTP header name"):
        BanqwareApi(headers_env={"bad header": "X"})
    with pytest.raises(ValueError, match="must not contain ':'"):
        BasicAuth(method="basic", username="a:b", password_env="P")


# --- none only on loopback ------------------------------------------------------------------


@pytest.mark.parametrize("http", ["127.0.0.1:8080", "[::1]:8080", "localhost:8080", "127.0.0.2:1"])
def test_none_auth_allowed_on_loopback(http: str) -> None:
    assert load_settings(http=http).http == http


@pytest.mark.parametrize("http", ["0.0.0.0:8080", ":8080", "[::]:8080", "10.1.2.3:8080"])
def test_none_auth_refused_beyond_loopback(http: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(http=http)
    assert [p.split(":")[0] for p in info.value.problems] == [
        "sources.finbox.auth.method",
        "sources.banqware.auth.method",
        "sources.setu.auth.method",
        "sources.rebit.auth.method",
    ]
    assert "allowed only when the HTTP listener is bound to loopback" in info.value.problems[0]


def test_authenticated_sources_may_listen_everywhere(tmp_path: Path) -> None:
    path = toml(
        tmp_path,
        """
        http = "0.0.0.0:8080"
        [sources.a]
        provider = "finbox"
        auth = { method = "shared_secret", secret_env = "S" }
        [sources.b]
        provider = "setu"
        auth = { method = "none" }
        """,
    )
    assert problems_of(path) == [
        "sources.b.auth.method: 'none' (no webhook authentication) is allowed only when the "
        "HTTP listener is bound to loopback, and http = '0.0.0.0:8080'"
    ]


# --- the example and the reference cover every option -----------------------------------------


def _option_names() -> set[str]:
    # Every provider's source model and its API model, from the registry.
    providers: list[type[BaseModel]] = [spec.source_model for spec in PROVIDERS]
    apis = [model.model_fields["api"].annotation for model in providers]
    models: list[type[BaseModel]] = [
        Settings,
        *providers,
        *(api for api in apis if isinstance(api, type) and issubclass(api, BaseModel)),
        SharedSecretAuth,
        HmacAuth,
        JwsAuth,
        BasicAuth,
        IpAllowlistAuth,
        AllOfAuth,
        PollSchedule,
        RateLimit,
        GrpcTls,
        ClientConfig,
        Retention,
        FrontDoor,
        GrpcLimits,
    ]
    return {name for model in models for name in model.model_fields} - {"id"}


def test_example_shows_every_option() -> None:
    text = EXAMPLE.read_text()
    missing = {n for n in _option_names() if not re.search(rf"\b{n}\b", text)}
    assert not missing


def test_reference_documents_every_option() -> None:
    text = DOCS.read_text()
    missing = {n for n in _option_names() | {"id"} if f"`{n}`" not in text}
    assert not missing


EXAMPLE_ENV = [
    "FINBOX_WEBHOOK_SECRET",
    "FINBOX_API_KEY",
    "FINBOX_SERVER_HASH",
    "FINBOX_LEGACY_WEBHOOK_SECRET",
    "BANQWARE_API_KEY",
    "BANQWARE_RELAY_PASSWORD",
    "SETU_CLIENT_ID",
    "SETU_CLIENT_SECRET",
    "SETU_PRODUCT_INSTANCE_ID",
    "SETU_RELAY_SECRET",
    "SETU_RELAY_SECRET_PREVIOUS",
    "FINVU_AA_API_KEY",
    "FIU_ENTITY_ID",
    "FIU_ENTITY_SECRET",
]


def _self_signed(key: rsa.RSAPrivateKey) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "statusgate-test")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(datetime(2024, 1, 1, tzinfo=UTC))
        .not_valid_after(datetime(2034, 1, 1, tzinfo=UTC))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


def _private_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def test_example_is_valid_once_its_secrets_and_files_exist(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rsa_key: rsa.RSAPrivateKey
) -> None:
    path = tmp_path / "statusgate.toml"
    shutil.copy(EXAMPLE, path)
    # Before: every variable and file is reported, all at once, source by source.
    problems = check_config(path)
    assert [p.partition(": ")[0] for p in problems] == [
        "sources.finbox-main.auth.secret_env",
        "sources.finbox-main.api.api_key_env",
        "sources.finbox-main.api.server_hash_env",
        "sources.finbox-legacy.auth.methods.1.secret_env",
        "sources.finbox-legacy.api.api_key_env",
        "sources.finbox-legacy.api.server_hash_env",
        "sources.banqware.api.headers_env.x-api-key",
        "sources.banqware.api.client_cert_file",
        "sources.banqware.api.client_key_file",
        "sources.banqware.api.ca_file",
        "sources.banqware-relay.auth.password_env",
        "sources.setu.auth.public_key_files.0",
        "sources.setu.api.client_id_env",
        "sources.setu.api.client_secret_env",
        "sources.setu.api.product_instance_id_env",
        "sources.setu-relay.auth.secret_envs.0",
        "sources.setu-relay.auth.secret_envs.1",
        "sources.finvu.auth.methods.0.public_key_files.0",
        "sources.finvu.auth.methods.0.public_key_files.1",
        "sources.finvu.auth.methods.1.secret_env",
        "sources.finvu.signing.private_key_file",
        "sources.finvu.api.client_id_env",
        "sources.finvu.api.client_secret_env",
        "grpc_tls.cert_file",
        "grpc_tls.key_file",
        "grpc_tls.client_ca_file",
    ]
    assert problems[0] == (
        "sources.finbox-main.auth.secret_env: the environment variable "
        "this setting names is not set"
    )
    assert problems[11] == (
        f"sources.setu.auth.public_key_files.0: cannot read {tmp_path / 'keys/setu-aa.pem'}: "
        "No such file or directory"
    )

    for name in EXAMPLE_ENV:
        monkeypatch.setenv(name, "whsec_" + "QUJD" * 8 if "RELAY_SECRET" in name else "value")
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "setu-aa.pem").write_bytes(
        rsa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    for name in ("finvu-aa.pem", "finvu-aa-previous.pem"):
        (tmp_path / "keys" / name).write_bytes(
            rsa_key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
    (tmp_path / "keys" / "fiu-signing.pem").write_bytes(_private_pem(rsa_key))
    (tmp_path / "tls").mkdir()
    (tmp_path / "tls" / "banqware-client.crt").write_bytes(_self_signed(rsa_key))
    (tmp_path / "tls" / "banqware-client.key").write_bytes(_private_pem(rsa_key))
    (tmp_path / "tls" / "banqware-ca.pem").write_bytes(_self_signed(rsa_key))
    (tmp_path / "tls" / "statusgate.crt").write_bytes(_self_signed(rsa_key))
    (tmp_path / "tls" / "statusgate.key").write_bytes(_private_pem(rsa_key))
    (tmp_path / "tls" / "internal-ca.pem").write_bytes(_self_signed(rsa_key))
    assert check_config(path) == []


# --- check-config ---------------------------------------------------------------------------


def test_check_config_reports_every_validation_problem(tmp_path: Path) -> None:
    path = toml(
        tmp_path,
        """
        http = "0.0.0.0:8080"
        bogus = 1
        [sources.x]
        provider = "foo"
        [sources.y]
        provider = "setu"
        [sources.y.auth]
        method = "hmac"
        secret_envs = []
        """,
    )
    assert check_config(path) == [
        "sources.x.provider: Input tag 'foo' found using 'provider' does not match any of "
        "the expected tags: 'finbox', 'banqware', 'setu', 'rebit'",
        "sources.y.auth.secret_envs: List should have at least 1 item after validation, not 0",
        "bogus: Extra inputs are not permitted",
        # The rule across options is checked although other options are invalid.
        "sources.x.auth.method: 'none' (no webhook authentication) is allowed only when the "
        "HTTP listener is bound to loopback, and http = '0.0.0.0:8080'",
    ]


def test_check_config_reports_every_problem_in_one_run(tmp_path: Path) -> None:
    """No phases: an invalid option, a rule across options, an unset secret, unreadable
    TLS files, a store that cannot open and a foreign address, all at once."""
    path = toml(
        tmp_path,
        """
        http = "0.0.0.0:8080"
        store = "sqlite:///./no-such-dir/g.db"
        [sources.fb]
        provider = "finbox"
        [sources.fb.auth]
        method = "shared_secret"
        secret_env = "UNSET_FB_SECRET_FOR_CHECK"
        [sources.bad]
        provider = "setu"
        [sources.bad.auth]
        method = "hmac"
        secret_envs = []
        [sources.open]
        provider = "banqware"
        [grpc_tls]
        cert_file = "nope.crt"
        key_file = "nope.key"
        """,
    )
    expected = [
        "sources.bad.auth.secret_envs: List should have at least 1 item after validation, not 0",
        "sources.open.auth.method: 'none' (no webhook authentication) is allowed only when the "
        "HTTP listener is bound to loopback, and http = '0.0.0.0:8080'",
        "sources.fb.auth.secret_env: the environment variable this setting names is not set",
        f"grpc_tls.cert_file: cannot read {tmp_path / 'nope.crt'}: No such file or directory",
        f"grpc_tls.key_file: cannot read {tmp_path / 'nope.key'}: No such file or directory",
        "store: cannot open the SQLite store ./no-such-dir/g.db: the directory ./no-such-dir "
        "does not exist; create it, or point the store elsewhere (--store, STATUSGATE_STORE)",
    ]
    assert check_config(path) == expected

    # With the model valid, the same start-up problems, and a listener address that is
    # not this machine's (TEST-NET-1: nothing is sent to it).
    text = path.read_text().replace("secret_envs = []", 'secret_envs = ["UNSET_B_FOR_CHECK"]')
    text = text.replace('[sources.open]\nprovider = "banqware"\n', "")
    path.write_text('grpc = "192.0.2.1:50051"\nallow_plaintext_grpc = true\n' + text)
    (tmp_path / "nope.crt").write_text("x")
    problems = check_config(path)
    assert problems == [
        "clients: client tokens are required when grpc = '192.0.2.1:50051' is not loopback"
    ]
    path.write_text(
        path.read_text() + f'[clients.a]\ntoken_sha256 = "{"0" * 64}"\nsources = ["*"]\n'
    )
    assert check_config(path) == [
        "sources.fb.auth.secret_env: the environment variable this setting names is not set",
        "sources.bad.auth.secret_envs.0: the environment variable this setting names is not set",
        f"grpc_tls.key_file: cannot read {tmp_path / 'nope.key'}: No such file or directory",
        "grpc: cannot listen for gRPC on 192.0.2.1:50051: it is not an address of this machine; "
        "choose one that is (--grpc)",
        "store: cannot open the SQLite store ./no-such-dir/g.db: the directory ./no-such-dir "
        "does not exist; create it, or point the store elsewhere (--store, STATUSGATE_STORE)",
    ]


def test_check_config_reports_every_start_up_problem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rsa_key: rsa.RSAPrivateKey
) -> None:
    monkeypatch.setenv("FINBOX_SECRET", "ok")
    monkeypatch.setenv("EMPTY_SECRET", "")
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (tmp_path / "cert.pem").write_bytes(_self_signed(rsa_key))
    (tmp_path / "other.key").write_bytes(_private_pem(other))
    (tmp_path / "not-a-key.pem").write_text("hello")
    path = toml(
        tmp_path,
        """
        http = "0.0.0.0:8080"
        [sources.finbox-main]
        provider = "finbox"
        auth = { method = "shared_secret", secret_env = "FINBOX_SECRET" }
        api = { api_key_env = "FINBOX_API_KEY" }
        [sources.setu]
        provider = "setu"
        auth = { method = "jws", public_key_files = ["missing.pem", "not-a-key.pem"] }
        [sources.relay]
        provider = "setu"
        auth = { method = "hmac", secret_envs = ["EMPTY_SECRET", "UNSET_SECRET"] }
        [sources.bq]
        provider = "banqware"
        auth = { method = "basic", username = "u", password_env = "BQ_PASSWORD" }
        [sources.bq.api]
        headers_env = { "x-api-key" = "BQ_KEY" }
        [sources.bq-mtls]
        provider = "banqware"
        auth = { method = "ip_allowlist", networks = ["10.0.0.0/8"] }
        api = { client_cert_file = "cert.pem", client_key_file = "other.key" }
        """,
    )
    problems = check_config(path)
    assert problems[:7] == [
        "sources.finbox-main.api.api_key_env: the environment variable "
        "this setting names is not set",
        f"sources.setu.auth.public_key_files.0: cannot read {tmp_path / 'missing.pem'}: "
        "No such file or directory",
        f"sources.setu.auth.public_key_files.1: {tmp_path / 'not-a-key.pem'} is not a PEM "
        "public key or certificate",
        "sources.relay.auth.secret_envs.0: the environment variable this setting names is empty",
        "sources.relay.auth.secret_envs.1: the environment variable this setting names is not set",
        "sources.bq.auth.password_env: the environment variable this setting names is not set",
        "sources.bq.api.headers_env.x-api-key: the environment variable "
        "this setting names is not set",
    ]
    # The certificate does not belong to the key: found now, not at the first poll.
    assert problems[7].startswith(
        "sources.bq-mtls.api.client_cert_file: not a usable PEM certificate and unencrypted "
        "private key"
    )
    assert len(problems) == 8


def test_check_config_syntax_error_and_unreadable_file(tmp_path: Path) -> None:
    path = toml(tmp_path, "http = \n")
    (problem,) = check_config(path)
    assert re.fullmatch(r"TOML syntax error: .*\(at line 1, column \d+\)", problem)
    (problem,) = check_config(tmp_path / "absent.toml")
    assert problem == "cannot read the config file: No such file or directory"


def test_check_config_good_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FINBOX_SECRET", "s")
    path = toml(
        tmp_path,
        """
        http = "0.0.0.0:8080"
        [sources.finbox]
        provider = "finbox"
        auth = { method = "shared_secret", secret_env = "FINBOX_SECRET" }
        """,
    )
    assert check_config(path) == []


def test_grpc_beyond_loopback_needs_tls_and_client_tokens() -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(None, grpc="0.0.0.0:50051")
    text = str(raised.value)
    assert "grpc_tls" in text and "clients" in text
    client = {"token_sha256": "a" * 64, "sources": ["*"]}
    allowed = load_settings(
        None, grpc="0.0.0.0:50051", allow_plaintext_grpc=True, clients={"svc": client}
    )
    assert allowed.clients["svc"].permissions == ["read"]


def test_the_api_listener_follows_the_grpc_door_s_rule() -> None:
    client = {"token_sha256": "a" * 64, "sources": ["*"]}
    with pytest.raises(ConfigError) as raised:
        load_settings(None, api="0.0.0.0:8081")
    text = str(raised.value)
    assert "api_tls: TLS is required when api = '0.0.0.0:8081'" in text
    assert "clients: client tokens are required when api = '0.0.0.0:8081'" in text
    with pytest.raises(ConfigError, match="api_tls"):
        load_settings(None, api="0.0.0.0:8081", clients={"svc": client})
    allowed = load_settings(
        None, api="0.0.0.0:8081", allow_plaintext_api=True, clients={"svc": client}
    )
    assert allowed.api == "0.0.0.0:8081" and allowed.api_tls is None
    assert load_settings(None).api == "127.0.0.1:8081"


def test_check_config_finds_an_unreachable_postgresql_without_starting(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens there
    path = toml(tmp_path, f'store = "postgresql://gw:hunter2@127.0.0.1:{port}/gw"\n')
    [problem] = check_config(path)
    assert problem.startswith(f"store: cannot reach PostgreSQL at 127.0.0.1:{port} (")
    assert "hunter2" not in problem


def test_workers_is_a_count_or_auto(monkeypatch: pytest.MonkeyPatch) -> None:
    from statusgate.config.workers import worker_count

    assert load_settings(None).workers == 1
    monkeypatch.setenv("STATUSGATE_WORKERS", "auto")
    assert worker_count(load_settings(None).workers) == len(os.sched_getaffinity(0))
    assert load_settings(None, workers=4).workers == 4
    for wrong in (0, 257, "many"):
        with pytest.raises(ConfigError) as info:
            load_settings(None, workers=wrong)
        assert [p.split(":")[0] for p in info.value.problems] == ["workers"]
