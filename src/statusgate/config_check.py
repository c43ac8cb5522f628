"""``statusgate check-config``: every problem of a config file, each with its location.

It checks what ``serve`` would meet, in the same environment: the TOML syntax, the
settings model (with ``STATUSGATE_*`` overrides applied), then, when the model is valid,
what only start-up would find — unset secret variables, unreadable or unusable key and
certificate files — by building the very components ``serve`` builds (``app.build``).
It never stops at the first problem, and never prints a value (a value could be a
secret).
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from statusgate.app import build, load_settings
from statusgate.config import ConfigError, SetupError
from statusgate.providers.registry import PROVIDERS, Registry


def check_config(path: Path, registry: Registry = PROVIDERS) -> list[str]:
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
        settings = load_settings(path, registry=registry)
    except ConfigError as exc:
        return exc.problems
    try:
        build(settings, registry)
    except SetupError as exc:
        return [f"{loc}: {message}" for loc, message in exc.problems]
    return []
