"""The operating commands of ``statusgate``, against a running gateway: ``tail``,
``deliveries list|show|replay`` and ``simulate``."""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime
from pathlib import Path

from statusgate import config
from statusgate.client.connection import add_target_flags, target_from
from statusgate.client.deliveries import (
    delivery_filter,
    list_deliveries,
    replay_deliveries,
    show_delivery,
)
from statusgate.client.simulate import scenario_lines, simulate
from statusgate.client.tail import tail
from statusgate.providers.registry import PROVIDERS
from statusgate.v1 import admin_service_pb2 as admin_pb
from statusgate.v1 import status_pb2 as pb

COMMANDS = ("tail", "deliveries", "simulate")


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    follow = commands.add_parser(
        "tail", help="follow status events of a running gateway, resuming by itself"
    )
    add_target_flags(follow)
    follow.add_argument("--source", action="append", default=[], help="only this source")
    follow.add_argument("--name", action="append", default=[], help="only this subject")
    follow.add_argument(
        "--prefix", action="append", default=[], help="this subject and its descendants"
    )
    follow.add_argument("--kind", action="append", default=[], help="e.g. session, account")
    follow.add_argument("--state", action="append", default=[], help="e.g. completed, failed")
    follow.add_argument("--terminal-only", action="store_true")
    follow.add_argument(
        "--after", type=int, help="replay every event after this sequence first (0: all)"
    )
    follow.add_argument("--json", action="store_true", help="one StatusEvent as JSON per line")

    deliveries = commands.add_parser(
        "deliveries", help="list, show and replay the raw deliveries a running gateway kept"
    )
    actions = deliveries.add_subparsers(
        dest="action", required=True, metavar="ACTION", help="list, show or replay"
    )
    listing = actions.add_parser("list", help="newest first")
    show = actions.add_parser("show", help="one delivery: headers, body, events")
    replay = actions.add_parser(
        "replay", help="run deliveries through today's adapters, while the gateway serves"
    )
    for parser in (listing, show, replay):
        add_target_flags(parser)
        parser.add_argument("--json", action="store_true", help="proto3 JSON, one per line")
    for parser in (listing, replay):
        parser.add_argument("--source", action="append", default=[], help="only this source")
        parser.add_argument(
            "--verdict", action="append", default=[], help="mapped, unmapped or rejected"
        )
        parser.add_argument("--received-after", type=_utc, help="ISO 8601, inclusive")
        parser.add_argument("--received-before", type=_utc, help="ISO 8601, exclusive")
        parser.add_argument("--name", default="", help="that produced events for this subject")
        parser.add_argument("--page-size", type=int, default=0)
        parser.add_argument("--page-token", default="")
        parser.add_argument("--all", action="store_true", help="every page")
    show.add_argument("id", help="the delivery id (as in the front door's answer or the list)")
    replay.add_argument("ids", nargs="*", help="delivery ids (else: the filter flags)")
    replay.add_argument(
        "--dry-run", action="store_true", help="print what would change, change nothing"
    )

    sim = commands.add_parser(
        "simulate",
        help="post a provider's realistic sequence of webhooks to a gateway",
        description="Post one of a provider's scenarios (simulate --list names them), "
        "with fresh ids, signed as the target source's authentication expects.",
    )
    sim.add_argument("provider", nargs="?", help="the provider whose webhooks to post (--list)")
    sim.add_argument("scenario", nargs="?", help="which of its scenarios (--list names them)")
    sim.add_argument("--list", action="store_true", help="print PROVIDER SCENARIO per line")
    sim.add_argument("--to", help="the source's webhook URL: http(s)://HOST/webhooks/<source>")
    sim.add_argument("--config", type=Path, help="the gateway's config (the source's auth)")
    sim.add_argument("--source", default="", help="the source (default: from --to)")
    sim.add_argument("--jws-key", type=Path, help="the provider's RSA private key (jws auth)")


def run(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(_run(args))
    except KeyboardInterrupt:
        return 130
    except ValueError as error:  # a bad flag value (an unknown kind, state or verdict)
        print(f"statusgate: {error}", file=sys.stderr)
        return 2


async def _run(args: argparse.Namespace) -> int:
    if args.command == "tail":
        status_filter = pb.StatusFilter(
            sources=args.source,
            names=args.name,
            name_prefixes=args.prefix,
            terminal_only=args.terminal_only,
        )
        status_filter.kinds.extend(_enum(pb.Kind, "KIND_", word) for word in args.kind)  # type: ignore[misc]
        status_filter.states.extend(_enum(pb.State, "STATE_", word) for word in args.state)  # type: ignore[misc]
        return await tail(target_from(args), status_filter, after=args.after, json_lines=args.json)
    if args.command == "deliveries":
        target = target_from(args)
        if args.action == "show":
            return await show_delivery(target, args.id, json=args.json)
        selection = delivery_filter(
            sources=args.source,
            verdicts=args.verdict,
            received_after=args.received_after,
            received_before=args.received_before,
            name=args.name,
        )
        if args.action == "list":
            request = admin_pb.ListDeliveriesRequest(
                filter=selection, page_size=args.page_size, page_token=args.page_token
            )
            return await list_deliveries(target, request, every_page=args.all, json_lines=args.json)
        replay = admin_pb.ReplayDeliveriesRequest(dry_run=args.dry_run)
        if args.ids:
            replay.ids.extend(args.ids)
        else:
            replay.filter.CopyFrom(selection)
            replay.page_size, replay.page_token = args.page_size, args.page_token
        return await replay_deliveries(target, replay, every_page=args.all, json_lines=args.json)
    return await _simulate(args)


async def _simulate(args: argparse.Namespace) -> int:
    if args.list:
        for line in scenario_lines(PROVIDERS):
            print(line)
        return 0
    if not (args.provider and args.scenario and args.to):
        print("statusgate: simulate PROVIDER SCENARIO --to URL (or --list)", file=sys.stderr)
        return 2
    try:
        settings = config.load_settings(PROVIDERS, args.config)
    except (ValueError, FileNotFoundError) as error:
        print(f"statusgate: invalid configuration:\n{error}", file=sys.stderr)
        return 2
    return await simulate(
        PROVIDERS,
        settings,
        args.provider,
        args.scenario,
        url=args.to,
        source_id=args.source,
        jws_key=args.jws_key,
    )


def _enum(enum: type, prefix: str, word: str) -> int:
    name = word.strip().upper().removeprefix(prefix)
    try:
        value: int = enum.Value(prefix + name)  # type: ignore[attr-defined]
    except ValueError:
        names = [n.removeprefix(prefix).lower() for n in enum.keys()[1:]]  # type: ignore[attr-defined]
        raise ValueError(f"{word!r} is not one of {', '.join(names)}") from None
    return value


def _utc(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=UTC)
