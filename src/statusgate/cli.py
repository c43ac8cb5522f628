"""``statusgate``: serve the gateway, check a config, and operate it (against a running
gateway: ``tail``, ``deliveries``, ``simulate``, in ``client.commands``)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import importlib.metadata
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import ValidationError

from statusgate.app import Gateway, StartupError, build, load_settings
from statusgate.client import commands as operating
from statusgate.config import ConfigError, Settings, SetupError
from statusgate.config.workers import WorkerRole, worker_count
from statusgate.logs import configure_logging, log_format, log_level, mark_worker
from statusgate.providers.registry import PROVIDERS
from statusgate.providers.spec import ManualRegistration, RegistrationError
from statusgate.supervisor import Supervisor

log = logging.getLogger("statusgate")

SINCE_FORMATS = (
    "an ISO 8601 time (2026-01-01T00:00:00Z, 2026-01-01T05:30:00+05:30) or date (2026-01-01)"
)


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="statusgate",
        description="One canonical, durable, streamable status for every bank-data "
        "aggregation provider: serve the gateway, check a config, and operate it.",
        epilog="Logs go to stderr: STATUSGATE_LOG_FORMAT=json|text, "
        "STATUSGATE_LOG_LEVEL=debug|info|warning|error|critical (any case).",
    )
    parser.add_argument(
        "--version",
        action="version",
        version=f"statusgate {importlib.metadata.version('statusgate')}",
    )
    commands = parser.add_subparsers(
        dest="command",
        required=True,
        metavar="COMMAND",
        help="what to do; statusgate COMMAND --help lists its options",
    )

    serve = commands.add_parser("serve", help="run the HTTP front door and the gRPC server")
    _add_settings_flags(serve)
    serve.add_argument(
        "--workers",
        type=_workers,
        help="worker processes behind the same listeners: a number, or auto (one per CPU)",
    )
    # Set by the supervisor for the processes it starts; not for people.
    serve.add_argument("--worker-role", type=WorkerRole.from_json, help=argparse.SUPPRESS)

    check = commands.add_parser(
        "check-config",
        help="report every problem in a config file, without starting the gateway",
    )
    check.add_argument(
        "path", type=Path, metavar="FILE", help="the TOML config file to check (as serve --config)"
    )

    replay = commands.add_parser(
        "replay",
        help="re-run stored unmapped and rejected deliveries through today's adapters",
    )
    _add_settings_flags(replay)
    replay.add_argument("--source", help="only this source's deliveries")
    replay.add_argument(
        "--since",
        type=_utc_datetime,
        metavar="TIME",
        help=f"only deliveries received at or after TIME: {SINCE_FORMATS}; without a zone, UTC",
    )

    register = commands.add_parser(
        "register-webhook",
        help="register the gateway's webhook URL with the provider of a source (or say "
        "where its dashboard sets it)",
    )
    _add_settings_flags(register)
    register.add_argument("--source", required=True, help="the source to register")
    register.add_argument(
        "--url", required=True, help="the public URL of this gateway's POST /webhooks/<source>"
    )

    operating.add_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command in operating.COMMANDS:
        # Their output is for a person or a pipe: no JSON log lines in between.
        logging.basicConfig(level=logging.WARNING, format="statusgate: %(message)s")
        return operating.run(args)
    try:
        level = log_level(os.environ.get("STATUSGATE_LOG_LEVEL", "info"))
        json_lines = log_format(os.environ.get("STATUSGATE_LOG_FORMAT", "json")) == "json"
    except ValueError as error:  # before logging exists: a plain line
        print(f"statusgate: {error}", file=sys.stderr)
        return 2
    configure_logging(level, json_lines=json_lines)
    if args.command == "serve":
        settings = _settings(args, workers=args.workers)
        if settings is None:
            return 2
        if args.worker_role is not None:
            mark_worker(args.worker_role.index)
            return asyncio.run(_serve(settings, args.worker_role))
        count = worker_count(settings.workers)
        if count > 1:
            flags = [
                f"--{name}={value}"
                for name in ("config", "store")
                if (value := getattr(args, name))
            ]
            return asyncio.run(Supervisor(settings, count, flags).run())
        return asyncio.run(_serve(settings))
    if args.command == "check-config":
        return _check_config(args.path)
    if args.command == "replay":
        settings = _settings(args)
        if settings is None:
            return 2
        return asyncio.run(_replay(settings, args.source, args.since))
    if args.command == "register-webhook":
        settings = _settings(args)
        if settings is None:
            return 2
        return asyncio.run(register_webhook(settings, args.source, args.url))
    return 2  # pragma: no cover - argparse requires a command


def _add_settings_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="TOML config file")
    parser.add_argument("--http", help="HOST:PORT of the webhook front door (127.0.0.1:8080)")
    parser.add_argument("--grpc", help="HOST:PORT of the gRPC server (127.0.0.1:50051)")
    parser.add_argument(
        "--api", help="HOST:PORT of the JSON API, OpenAPI document and metrics (127.0.0.1:8081)"
    )
    parser.add_argument("--store", help="sqlite:///path or postgresql://... store URL")


def _workers(text: str) -> int | str:
    if text == "auto":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number or auto: {text!r}") from None


def _settings(args: argparse.Namespace, **flags: Any) -> Settings | None:
    """The settings, or None after one log line per problem."""
    try:
        return load_settings(
            args.config, http=args.http, grpc=args.grpc, api=args.api, store=args.store, **flags
        )
    except ConfigError as error:
        for problem in error.problems:
            log.error("invalid configuration: %s", problem)
    except FileNotFoundError as error:
        log.error("%s: give the path of an existing TOML file to --config", error)
    except (ValidationError, ValueError) as error:
        for line in str(error).splitlines():
            log.error("invalid configuration: %s", line)
    return None


async def _serve(settings: Settings, role: WorkerRole | None = None) -> int:
    try:
        gateway = Gateway(settings, role=role)
    except SetupError as error:  # e.g. a secret's environment variable is not set
        for location, message in error.problems:
            log.error("cannot start: %s: %s", location, message)
        return 2
    try:
        await gateway.start()
    except StartupError as error:
        log.error("cannot start: %s", error)
        return 1
    # Everything built at start-up lives for the whole run: keep it out of the cyclic
    # collector's work, whose full passes otherwise stall the loop for tens of ms under
    # load without ever freeing any of it.
    gc.freeze()
    loop = asyncio.get_running_loop()
    stopping: asyncio.Task[None] | None = None

    def _on_signal() -> None:
        nonlocal stopping
        if stopping is None:
            log.info("signal received, draining")
            stopping = loop.create_task(gateway.stop())

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, _on_signal)
    if role is not None:
        # SIGINT from a terminal reaches the whole process group; the supervisor
        # forwards what it gets, so a worker ignores its own copy of it.
        loop.remove_signal_handler(signal.SIGINT)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        _report_to_supervisor(role, loop, _on_signal)
    await gateway.wait_stopped()
    if stopping is not None:
        await stopping
    return 0


def _report_to_supervisor(
    role: WorkerRole, loop: asyncio.AbstractEventLoop, stop: Callable[[], None]
) -> None:
    """Say "ready" to the supervisor, and drain when it is gone (its pipe closes)."""

    def parent_gone() -> None:
        loop.remove_reader(role.parent_fd)
        logging.getLogger("statusgate").warning("the supervisor is gone, draining")
        stop()

    loop.add_reader(role.parent_fd, parent_gone)
    # Gone already: the pipe says so too.
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as control, contextlib.suppress(OSError):
        control.sendto(f"ready {role.index} {os.getpid()}".encode(), str(role.control_socket))


async def _replay(settings: Settings, source: str | None, since: datetime | None) -> int:
    from statusgate.replay import replay
    from statusgate.store.base import StoreUnavailableError

    if source is not None and source not in settings.sources:
        print(f"statusgate: no source {source!r} is configured", file=sys.stderr)
        return 2
    try:
        parts = build(settings)
    except SetupError as error:
        print(f"statusgate: {error}", file=sys.stderr)
        return 2
    try:
        await parts.store.open()
    except StoreUnavailableError as error:
        print(f"statusgate: {error}", file=sys.stderr)
        return 1
    try:
        # Events reach running gateways' Watch streams through the store (PostgreSQL
        # NOTIFY); this process has no subscribers of its own.
        await parts.hub.start()
        report = await replay(parts.ingest, settings.sources, source=source, since=since)
    finally:
        await parts.store.close()
    print(
        f"examined {report.examined}: mapped {report.mapped} ({report.events} events), "
        f"still unmapped {report.still_unmapped}, still rejected {report.still_rejected}, "
        f"unknown source {report.unknown_source}"
    )
    return 0


async def register_webhook(settings: Settings, source_id: str, url: str) -> int:
    """Point the provider of ``source_id`` at ``url`` through its API, or say where the
    provider's dashboard sets it (the provider's spec knows which)."""
    source = settings.sources.get(source_id)
    if source is None:
        print(f"statusgate: no source {source_id!r} is configured", file=sys.stderr)
        return 2
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        print(f"statusgate: --url must be an absolute http(s) URL, not {url!r}", file=sys.stderr)
        return 2
    if not parts.path.rstrip("/").endswith(f"/webhooks/{source_id}"):
        print(f"note: the gateway receives this source's webhooks at /webhooks/{source_id}")
    registration = PROVIDERS.for_source(source).registration
    if isinstance(registration, ManualRegistration):
        print(registration.describe(url) + " Nothing was registered.")
        return 0
    try:
        steps = await registration(source, url)
    except SetupError as error:  # a named credential variable is unset
        located = error.located(f"sources.{source_id}.api.")
        print(f"statusgate: {located}", file=sys.stderr)
        return 2
    except RegistrationError as error:
        print(f"statusgate: {error}", file=sys.stderr)
        return 2
    for step in steps:
        print(f"{step.label}: {step.detail}", file=sys.stdout if step.ok else sys.stderr)
    return 0 if all(step.ok for step in steps) else 1


def _utc_datetime(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {SINCE_FORMATS}, not {text!r}") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _check_config(path: Path) -> int:
    from statusgate.config_check import check_config

    problems = check_config(path)
    for problem in problems:
        print(f"{path}: {problem}")
    if problems:
        return 1
    print(f"{path}: OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
