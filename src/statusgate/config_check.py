"""``statusgate check-config``: every problem of a config file, each with its location.

It checks what ``serve`` would meet, in the same environment: the TOML syntax, the
settings model (with ``STATUSGATE_*`` overrides applied), then, when the model is valid,
what only start-up would find — unset secret variables, unreadable or unusable key and
certificate files — by building the very verifiers ``serve`` builds. It never stops at
the first problem, and never prints a value (a value could be a secret).
"""

from __future__ import annotations

import ssl
import tomllib
from pathlib import Path

from pydantic import BaseModel

from statusgate.config import ConfigError, Settings, load_settings, read_secret
from statusgate.web.auth import AuthConfigError, build_verifier


def check_config(path: Path) -> list[str]:
    """``"location: message"`` for every problem in ``path``; empty when it is fine."""
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        return [f"cannot read the config file: {exc.strerror or exc}"]
    except UnicodeDecodeError:
        return ["the config file is not UTF-8 text"]
    try:
        tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # tomllib's message ends with "(at line L, column C)".
        return [f"TOML syntax error: {exc}"]

    try:
        settings = load_settings(path)
    except ConfigError as exc:
        return exc.problems
    return _start_up_problems(settings)


def _start_up_problems(settings: Settings) -> list[str]:
    # Source by source, so one source's problems read together.
    problems: list[str] = []
    for source_id, source in settings.sources.items():
        try:
            build_verifier(source.auth)
        except AuthConfigError as exc:
            located = exc.located(f"sources.{source_id}.auth.")
            problems.extend(f"{loc}: {message}" for loc, message in located.problems)
        problems.extend(_api_problems(f"sources.{source_id}.api", source.api))
    return problems


def _api_problems(loc: str, api: BaseModel) -> list[str]:
    """Named credential variables that are unset, and unusable TLS files. Credentials
    that are not named at all are the poller's business: a webhook-only source needs
    none."""
    problems = []
    for name in type(api).model_fields:
        value = getattr(api, name)
        if name.endswith("_env") and isinstance(value, str):
            problems.extend(_env_problem(f"{loc}.{name}", value))
        elif name == "headers_env":
            for header, env_name in value.items():
                problems.extend(_env_problem(f"{loc}.headers_env.{header}", env_name))
        elif name.endswith("_file") and isinstance(value, Path):
            problems.extend(_unreadable(f"{loc}.{name}", value))
    if not problems:
        problems.extend(_tls_problems(loc, api))
    return problems


def _env_problem(loc: str, env_name: str) -> list[str]:
    try:
        read_secret(env_name)
    except ValueError as exc:
        return [f"{loc}: {exc}"]
    return []


def _unreadable(loc: str, path: Path) -> list[str]:
    try:
        with path.open("rb") as file:
            file.read(1)
    except OSError as exc:
        return [f"{loc}: cannot read {path}: {exc.strerror or exc}"]
    return []


def _tls_problems(loc: str, api: BaseModel) -> list[str]:
    """Load the mTLS files the way the poller will, so a certificate that does not
    match its key, or a key that needs a passphrase, is found now."""
    problems = []
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    cert = getattr(api, "client_cert_file", None)
    if cert is not None:
        key = getattr(api, "client_key_file", None)
        try:
            # A password callback, so an encrypted key fails instead of prompting.
            context.load_cert_chain(cert, key, password=lambda: b"")
        except ssl.SSLError as exc:
            problems.append(
                f"{loc}.client_cert_file: not a usable PEM certificate and unencrypted "
                f"private key ({exc.reason or 'invalid'})"
            )
        except OSError as exc:
            problems.append(f"{loc}.client_cert_file: {exc.strerror or exc}")
    ca = getattr(api, "ca_file", None)
    if ca is not None:
        try:
            context.load_verify_locations(cafile=ca)
        except (ssl.SSLError, OSError):
            problems.append(f"{loc}.ca_file: {ca} holds no PEM CA certificate")
    return problems
