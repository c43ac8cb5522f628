"""``statusgate check-config``: every problem of a config file, each with its location,
in one run.

It checks what ``serve`` would meet, in the same environment: the TOML syntax (nothing
further can be read past a syntax error), the settings model with ``STATUSGATE_*``
overrides applied, and what only start-up would find — unset secret variables,
unreadable or unusable key and certificate files, a store that cannot be opened, a
listener address that is not this machine's — by building the very components
``serve`` builds (``app.build``). When the model is invalid, each part that is valid on
its own (a source, the store, the TLS files) is still built, so fixing one problem
never reveals the next. It never prints a value (a value could be a secret), and never
starts anything: no port is taken (a running gateway may hold them), no store is
created or migrated, no lock is taken.
"""

from __future__ import annotations

import asyncio
import tomllib
from pathlib import Path

from statusgate.app import build, build_source, load_settings, tls_problems
from statusgate.config import (
    ConfigError,
    Settings,
    SetupError,
    check_bindable,
    split_host_port,
    valid_parts,
)
from statusgate.providers.registry import PROVIDERS, Registry
from statusgate.store.factory import probe_store


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
        found = list(exc.problems)
        if exc.raw is not None:
            found += _valid_parts_problems(exc.raw, path, registry)
        return _unique(found)
    problems: list[str] = []
    try:
        build(settings, registry)
    except SetupError as exc:
        problems += [f"{loc}: {message}" for loc, message in exc.problems]
    problems += _listener_problems(settings)
    if not any(p.startswith("store:") for p in problems):
        problems += _store_problems(settings.store)
    return problems


def _valid_parts_problems(raw: dict[str, object], path: Path, registry: Registry) -> list[str]:
    sources, store, tls = valid_parts(registry, path, raw)
    problems: list[tuple[str, str]] = []
    for source in sources.values():
        problems += build_source(source, registry).problems
    if tls is not None:
        problems += tls_problems(tls)
    found = [f"{loc}: {message}" for loc, message in problems]
    if store is not None:
        found += _store_problems(store)
    return found


def _listener_problems(settings: Settings) -> list[str]:
    """A listener host that is not an address of this machine (its port is not tried:
    the gateway being checked may be running and hold it)."""
    problems = []
    for option, what, address in (("http", "HTTP", settings.http), ("grpc", "gRPC", settings.grpc)):
        host, _ = split_host_port(address)
        try:
            check_bindable(what, f"[{host}]:0" if ":" in host else f"{host}:0", f"--{option}")
        except OSError as error:
            message = str(error.strerror or error).replace(f"{host}:0", address)
            problems.append(f"{option}: {message}")
    return problems


def _store_problems(url: str) -> list[str]:
    try:
        problem = asyncio.run(probe_store(url))
    except ValueError as exc:
        return [f"store: {exc}"]
    return [] if problem is None else [f"store: {problem}"]


def _unique(problems: list[str]) -> list[str]:
    return list(dict.fromkeys(problems))
