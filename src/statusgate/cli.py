"""``statusgate``: serve the gateway, check a config, and operate it."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import ValidationError

from statusgate.app import Gateway
from statusgate.config import FinboxSource, Settings, load_settings
from statusgate.logs import configure_logging


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="statusgate", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the HTTP front door and the gRPC server")
    _add_settings_flags(serve)

    check = commands.add_parser("check-config", help="report every problem in a config file")
    check.add_argument("path", type=Path)

    replay = commands.add_parser(
        "replay",
        help="re-run stored unmapped and rejected deliveries through today's adapters",
    )
    _add_settings_flags(replay)
    replay.add_argument("--source", help="only this source's deliveries")
    replay.add_argument(
        "--since", type=_utc_datetime, help="only deliveries received at or after (ISO 8601)"
    )

    register = commands.add_parser(
        "register-webhook",
        help="register the gateway's webhook URL with the provider of a source (FinBox)",
    )
    _add_settings_flags(register)
    register.add_argument("--source", required=True, help="the source to register")
    register.add_argument(
        "--url", required=True, help="the public URL of this gateway's POST /webhooks/<source>"
    )

    args = parser.parse_args(argv)
    configure_logging(
        os.environ.get("STATUSGATE_LOG_LEVEL", "INFO"),
        json_lines=os.environ.get("STATUSGATE_LOG_FORMAT", "json") == "json",
    )
    if args.command == "serve":
        settings = _settings(args)
        if settings is None:
            return 2
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
    parser.add_argument("--store", help="sqlite:///path or postgresql://... store URL")


def _settings(args: argparse.Namespace) -> Settings | None:
    try:
        return load_settings(args.config, http=args.http, grpc=args.grpc, store=args.store)
    except (ValidationError, ValueError, FileNotFoundError) as error:
        print(f"statusgate: invalid configuration:\n{error}", file=sys.stderr)
        return None


async def _serve(settings: Settings) -> int:
    try:
        gateway = Gateway(settings)
    except ValueError as error:  # e.g. a secret's environment variable is not set
        print(f"statusgate: {error}", file=sys.stderr)
        return 2
    await gateway.start()
    # Everything built at start-up lives for the whole run: keep it out of the cyclic
    # collector's work, whose full passes otherwise stall the loop for tens of ms under
    # load without ever freeing any of it.
    gc.freeze()
    loop = asyncio.get_running_loop()
    stopping: asyncio.Task[None] | None = None

    def _on_signal() -> None:
        nonlocal stopping
        if stopping is None:
            logging.getLogger("statusgate").info("signal received, draining")
            stopping = loop.create_task(gateway.stop())

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, _on_signal)
    await gateway.wait_stopped()
    if stopping is not None:
        await stopping
    return 0


async def _replay(settings: Settings, source: str | None, since: datetime | None) -> int:
    from statusgate.core.hub import Hub
    from statusgate.core.pipeline import Pipeline
    from statusgate.replay import replay
    from statusgate.store.base import StoreUnavailableError
    from statusgate.store.factory import open_store

    if source is not None and source not in settings.sources:
        print(f"statusgate: no source {source!r} is configured", file=sys.stderr)
        return 2
    store = open_store(settings.store)
    try:
        await store.open()
    except StoreUnavailableError as error:
        print(f"statusgate: {error}", file=sys.stderr)
        return 1
    try:
        # Events reach running gateways' Watch streams through the store (PostgreSQL
        # NOTIFY); this process has no subscribers of its own.
        hub = Hub(store)
        await hub.start()
        report = await replay(Pipeline(store, hub), settings.sources, source=source, since=since)
    finally:
        await store.close()
    print(
        f"examined {report.examined}: mapped {report.mapped} ({report.events} events), "
        f"still unmapped {report.still_unmapped}, still rejected {report.still_rejected}, "
        f"unknown source {report.unknown_source}"
    )
    return 0


async def register_webhook(settings: Settings, source_id: str, url: str) -> int:
    """Point the provider of ``source_id`` at ``url``: FinBox through its API (session
    and entity flows, ``webhook_mode`` 1 always: leaving it out resets it to 0);
    Setu and banqware have no API for it, so say where it is done by hand."""
    from statusgate.poll.errors import PollError
    from statusgate.poll.http import CallScope
    from statusgate.providers.finbox.client import finbox_client

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
    if source.provider == "setu":
        print(
            "Setu has no API to register a webhook: set the notification URL of your FIU "
            f"product instance to {url} in Setu's dashboard (Bridge). Nothing was registered."
        )
        return 0
    if source.provider == "banqware":
        print(
            "banqware has no API to register callbacks: enter the address "
            f"{url} in banqware's developer portal. Nothing was registered."
        )
        return 0
    assert isinstance(source, FinboxSource)
    try:
        client = finbox_client(source)
    except ValueError as error:  # a named credential variable is unset
        print(f"statusgate: {error}", file=sys.stderr)
        return 2
    if client is None:
        print(
            f"statusgate: set sources.{source_id}.api.api_key_env and server_hash_env "
            "(FinBox API credentials) first",
            file=sys.stderr,
        )
        return 2
    failed = False
    try:
        flows: tuple[Literal["session", "entity"], ...] = ("session", "entity")
        for flow in flows:
            scope = CallScope.within(source.api.timeout_seconds * (source.api.retries + 1))
            try:
                answer = await client.register_webhook(flow, url, scope)
            except PollError as error:
                failed = True
                print(f"FinBox {flow} flow: not registered: {error.message}", file=sys.stderr)
            else:
                print(f"FinBox {flow} flow: registered {url} (webhook_mode 1): {answer}")
    finally:
        await client.http.close()
    return 1 if failed else 0


def _utc_datetime(text: str) -> datetime:
    value = datetime.fromisoformat(text)
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
