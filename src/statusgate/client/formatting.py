"""How the command line prints statuses, events and deliveries: one human line each,
or proto3 JSON (one object per line)."""

from __future__ import annotations

import base64
import json
from datetime import UTC

from google.protobuf import json_format
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from statusgate.v1 import admin_service_pb2 as admin_pb
from statusgate.v1 import status_pb2 as pb


def json_line(message: Message) -> str:
    return json.dumps(json_format.MessageToDict(message), separators=(",", ":"))


def when(stamp: Timestamp) -> str:
    if not stamp.seconds and not stamp.nanos:
        return "-"
    return stamp.ToDatetime(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def state(value: pb.State.ValueType) -> str:
    return str(pb.State.Name(value)).removeprefix("STATE_") if value else "(new)"


def verdict(value: admin_pb.DeliveryVerdict.ValueType) -> str:
    name = str(admin_pb.DeliveryVerdict.Name(value))
    return name.removeprefix("DELIVERY_VERDICT_").lower()


def event_line(event: pb.StatusEvent) -> str:
    """time, sequence, name, previous → new state, origin, then the trace context of
    the request that made it, when it had one."""
    origin = str(pb.Origin.Name(event.origin)).removeprefix("ORIGIN_").lower()
    status = event.status
    extra = ""
    if status.HasField("error") and status.error.reason:
        extra = "  " + str(pb.ErrorReason.Name(status.error.reason)).removeprefix("ERROR_REASON_")
    if status.ready_to_fetch:
        extra += "  ready_to_fetch"
    if event.trace_parent:
        extra += f"  trace {event.trace_parent}"
    return (
        f"{when(status.updated_at)}  #{event.sequence}  {status.name}  "
        f"{state(event.previous_state)} → {state(status.state)}  {origin}{extra}"
    )


def delivery_line(delivery: admin_pb.Delivery) -> str:
    detail = f"  {delivery.detail[:100]}" if delivery.detail else ""
    path = f"/{delivery.path}" if delivery.path else ""
    count = len(delivery.events)
    return (
        f"{delivery.id}  {when(delivery.received_at)}  {delivery.source}{path}  "
        f"{verdict(delivery.verdict)}  {count} event{'s' if count != 1 else ''}{detail}"
    )


def delivery_text(delivery: admin_pb.Delivery) -> str:
    lines = [
        f"id:          {delivery.id}",
        f"source:      {delivery.source}" + (f" (path {delivery.path})" if delivery.path else ""),
        f"received_at: {when(delivery.received_at)}",
        f"verdict:     {verdict(delivery.verdict)}",
    ]
    if delivery.detail:
        lines.append(f"detail:      {delivery.detail}")
    lines.append("headers:")
    lines.extend(f"  {key}: {value}" for key, value in sorted(delivery.headers.items()))
    lines.append("events:")
    lines.extend(f"  #{e.sequence}  {e.name}" for e in delivery.events)
    try:
        body = delivery.body.decode("utf-8")
        lines.append("body:")
    except UnicodeDecodeError:
        body = base64.b64encode(delivery.body).decode()
        lines.append("body (base64, not UTF-8):")
    lines.append(body if body else "(empty: pruned by retention, or sent empty)")
    return "\n".join(lines)


def replay_lines(result: admin_pb.ReplayResult, *, dry_run: bool) -> list[str]:
    if result.HasField("error"):
        return [f"{result.delivery_id}  error: {result.error.message}"]
    count = len(result.events)
    would = " would be" if dry_run else ""
    lines = [
        f"{result.delivery_id}  {verdict(result.verdict_before)} → "
        f"{verdict(result.verdict_after)}  {count} event{'s' if count != 1 else ''}{would} applied"
    ]
    lines.extend(
        f"    {e.status.name}  {state(e.previous_state)} → {state(e.status.state)}"
        for e in result.events
    )
    return lines
