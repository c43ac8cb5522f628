"""``statusgate``: serve the gateway, check a config, and operate it."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path

from pydantic import ValidationError

from statusgate.app import Gateway
from statusgate.config import Settings, load_settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="statusgate", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the HTTP front door and the gRPC server")
    _add_settings_flags(serve)

    check = commands.add_parser("check-config", help="report every problem in a config file")
    check.add_argument("path", type=Path)

    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if args.command == "serve":
        settings = _settings(args)
        if settings is None:
            return 2
        return asyncio.run(_serve(settings))
    if args.command == "check-config":
        return _check_config(args.path)
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
