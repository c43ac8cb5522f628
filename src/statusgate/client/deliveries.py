"""``statusgate deliveries list|show|replay`` over AdminService."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from datetime import datetime
from typing import TextIO

import grpc

from statusgate.client.connection import Target
from statusgate.client.formatting import delivery_line, delivery_text, json_line, replay_lines
from statusgate.v1 import admin_service_pb2 as admin_pb
from statusgate.v1 import admin_service_pb2_grpc


def delivery_filter(
    *,
    sources: Sequence[str],
    verdicts: Sequence[str],
    received_after: datetime | None,
    received_before: datetime | None,
    name: str,
) -> admin_pb.DeliveryFilter:
    result = admin_pb.DeliveryFilter(sources=sources, name=name)
    for word in verdicts:
        result.verdicts.append(verdict_value(word))
    if received_after is not None:
        result.received_after.FromDatetime(received_after)
    if received_before is not None:
        result.received_before.FromDatetime(received_before)
    return result


def verdict_value(word: str) -> admin_pb.DeliveryVerdict.ValueType:
    name = word.strip().upper().removeprefix("DELIVERY_VERDICT_")
    try:
        return admin_pb.DeliveryVerdict.Value(f"DELIVERY_VERDICT_{name}")
    except ValueError:
        raise ValueError(f"{word!r} is not a verdict: mapped, unmapped or rejected") from None


async def list_deliveries(
    target: Target,
    request: admin_pb.ListDeliveriesRequest,
    *,
    every_page: bool,
    json_lines: bool,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
) -> int:
    async with target.channel() as channel:
        stub = admin_service_pb2_grpc.AdminServiceStub(channel)
        while True:
            try:
                page = await stub.ListDeliveries(request, metadata=target.metadata())
            except grpc.aio.AioRpcError as error:
                return _failed(error, err)
            for delivery in page.deliveries:
                print(json_line(delivery) if json_lines else delivery_line(delivery), file=out)
            if not page.next_page_token:
                return 0
            if not every_page:
                print(f"more: --page-token {page.next_page_token} (or --all)", file=err)
                return 0
            request.page_token = page.next_page_token


async def show_delivery(
    target: Target,
    delivery_id: str,
    *,
    json: bool,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
) -> int:
    async with target.channel() as channel:
        stub = admin_service_pb2_grpc.AdminServiceStub(channel)
        try:
            delivery = await stub.GetDelivery(
                admin_pb.GetDeliveryRequest(id=delivery_id), metadata=target.metadata()
            )
        except grpc.aio.AioRpcError as error:
            return _failed(error, err)
    print(json_line(delivery) if json else delivery_text(delivery), file=out)
    return 0


async def replay_deliveries(
    target: Target,
    request: admin_pb.ReplayDeliveriesRequest,
    *,
    every_page: bool,
    json_lines: bool,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
) -> int:
    """Prints one result per delivery; exit status 1 when any failed."""
    failed = False
    async with target.channel() as channel:
        stub = admin_service_pb2_grpc.AdminServiceStub(channel)
        while True:
            try:
                answer = await stub.ReplayDeliveries(request, metadata=target.metadata())
            except grpc.aio.AioRpcError as error:
                return _failed(error, err)
            for result in answer.results:
                failed |= result.HasField("error")
                if json_lines:
                    print(json_line(result), file=out)
                else:
                    for line in replay_lines(result, dry_run=request.dry_run):
                        print(line, file=out)
            if not answer.next_page_token:
                break
            if not every_page:
                print(f"more: --page-token {answer.next_page_token} (or --all)", file=err)
                break
            request.page_token = answer.next_page_token
    return 1 if failed else 0


def _failed(error: grpc.aio.AioRpcError, err: TextIO) -> int:
    print(f"statusgate: {error.code().name}: {error.details()}", file=err)
    return 1
