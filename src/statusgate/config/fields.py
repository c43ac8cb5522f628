"""Building blocks of the configuration: defaults, the strict base model, the
constrained strings every section uses, and reading secrets from the environment."""

from __future__ import annotations

import os
import re
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, SecretStr

from statusgate.logs import register_secret

DEFAULT_HTTP = "127.0.0.1:8080"
DEFAULT_GRPC = "127.0.0.1:50051"
DEFAULT_API = "127.0.0.1:8081"
DEFAULT_STORE = "sqlite:///./statusgate.db"
DEFAULT_MAX_BODY_BYTES = 1024 * 1024


class ConfigError(ValueError):
    """A configuration that cannot be loaded. ``problems`` are ``"location: message"``
    lines, safe to print: they never hold an input value (which could be a secret
    pasted where an environment variable name belongs)."""

    def __init__(self, problems: list[str], *, raw: dict[str, Any] | None = None) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems
        # The merged input the settings were validated from, when it got that far:
        # check-config examines its valid parts further. Never printed (it may hold a
        # secret pasted in the wrong place).
        self.raw = raw


class SetupError(ValueError):
    """A component cannot be built from valid settings: a secret's variable is unset, a
    key or certificate file is unreadable or unusable.

    ``problems`` are ``(location, message)`` pairs, the location relative to the table
    the component was built from (``secret_envs.1``) until ``located`` prefixes it
    (``sources.x.auth.secret_envs.1``). Messages name variables and files, never values.
    """

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__("\n".join(f"{loc}: {message}" for loc, message in problems))
        self.problems = problems

    def located(self, prefix: str) -> SetupError:
        return SetupError([(f"{prefix}{loc}", message) for loc, message in self.problems])


class SetupProblems:
    """Collects what building one component finds wrong, so that every problem is
    reported at once instead of one per start-up attempt."""

    def __init__(self) -> None:
        self.problems: list[tuple[str, str]] = []

    def add(self, loc: str, message: str) -> None:
        self.problems.append((loc, message))

    def secret(self, loc: str, env_name: str) -> SecretStr | None:
        """The secret named by ``env_name``; None (and a problem at ``loc``) when it
        is unset or empty."""
        try:
            return read_secret(env_name)
        except ValueError as exc:
            self.add(loc, str(exc))
            return None

    def readable(self, loc: str, path: Path) -> bool:
        try:
            with path.open("rb") as file:
                file.read(1)
        except OSError as exc:
            self.add(loc, f"cannot read {path}: {exc.strerror or exc}")
            return False
        return True

    def check(self) -> None:
        """Raise ``SetupError`` when anything was found."""
        if self.problems:
            raise SetupError(self.problems)


class StrictModel(BaseModel):
    # hide_input_in_errors: a secret pasted into the file by mistake must not be echoed
    # by the validation error that rejects it.
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


UNSET_VARIABLE = "the environment variable this setting names"


def read_secret(env_name: str) -> SecretStr:
    """The value of a secret named by environment variable; a missing one is an error
    at start-up, never an empty secret that would accept anything. The message names the
    setting's location (given by the caller), never the variable's name: a secret pasted
    where the name belongs would otherwise be printed."""
    value = os.environ.get(env_name)
    if value is None:
        raise ValueError(f"{UNSET_VARIABLE} is not set")
    if not value:
        raise ValueError(f"{UNSET_VARIABLE} is empty")
    # Whatever code path might print it later, the log redactor now knows it.
    register_secret(value)
    return SecretStr(value)


# --- constrained strings ------------------------------------------------------------------

_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# RFC 9110 token characters: what a header field name may contain.
_HEADER_NAME_RE = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")


def _env_name(value: str) -> str:
    if not _ENV_NAME_RE.match(value):
        # Most likely the secret itself was pasted here; say so without repeating it.
        raise ValueError(
            "must be the name of an environment variable (letters, digits and '_', not "
            "starting with a digit), not the secret itself"
        )
    return value


def _header_name(value: str) -> str:
    if not _HEADER_NAME_RE.match(value):
        raise ValueError("is not a valid HTTP header name")
    # Header names are case-insensitive; one spelling keeps comparisons simple.
    return value.lower()


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("must be an absolute http:// or https:// URL")
    # Stored without a trailing slash so callers can append "/path" unconditionally.
    return value.rstrip("/")


# The config file whose directory relative paths are resolved against (set by
# load_settings while it validates; pydantic builds sources from the class, so the file
# to read is passed aside rather than through __init__).
_CONFIG_FILE: ContextVar[Path | None] = ContextVar("statusgate_config_file", default=None)


def _config_path(value: Path) -> Path:
    value = value.expanduser()
    config_file = _CONFIG_FILE.get()
    if config_file is not None and not value.is_absolute():
        # Key and certificate files sit next to the config that names them, so a relative
        # path means "relative to the config file", not to wherever the gateway started.
        return config_file.parent / value
    return value


EnvName = Annotated[str, AfterValidator(_env_name)]
HeaderName = Annotated[str, AfterValidator(_header_name)]
HttpUrl = Annotated[str, AfterValidator(_http_url)]
ConfigPath = Annotated[Path, AfterValidator(_config_path)]
