"""The in-memory step of a group-commit batch, the same for both stores.

A store opens the batch's transaction, reads what staging needs (the current snapshot
of every subject the batch touches, which of the deliveries its replays point at are
stored, the last sequence) and hands it to a ``Stager`` with the batch's time. The
stager runs ``core.apply`` for each request against the batch as accepted so far,
numbers its events with the next sequences and builds the rows it writes (``Rows``);
the store then only writes those rows with its own SQL.

``stage`` leaves the stager as it was and ``accept`` makes a staged request part of the
batch, so a request that fails in Python (a bug, a key that not every store can hold,
a replay of an unknown delivery) fails alone before any SQL runs, and a store that must
write the batch again request by request accepts exactly the requests whose rows its
savepoints kept: later requests never see what a failed one would have changed.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import NamedTuple, assert_never

from google.protobuf.timestamp_pb2 import Timestamp

from statusgate.core.apply import apply, previous_state
from statusgate.store.base import (
    IngestRequest,
    IngestResult,
    PollIngest,
    ReplayIngest,
    WebhookIngest,
)
from statusgate.v1.status_pb2 import Status, StatusEvent

log = logging.getLogger(__name__)

Outcome = IngestResult | Exception


class DeliveryRow(NamedTuple):
    id: str
    source: str
    received_at: datetime  # timezone-aware
    verdict: str
    detail: str
    # A JSON object, ASCII-escaped: header values may hold NUL or undecodable bytes (as
    # surrogates), which must round-trip through a text column of either store.
    headers: str
    body: bytes
    idempotency_key: str | None
    path: str


class ReplayRow(NamedTuple):
    """A replayed delivery's new verdict and detail."""

    id: str
    verdict: str
    detail: str


class EventRow(NamedTuple):
    sequence: int
    event_id: str
    name: str
    delivery_id: str | None  # None for polls and reconciles
    data: bytes  # the serialized StatusEvent
    trace_parent: str  # also in data; a column so SQL can find a trace's events


class StatusRow(NamedTuple):
    name: str
    source: str
    parent: str
    kind: int
    state: int
    terminal: bool
    updated_at: datetime  # timezone-aware
    sequence: int
    data: bytes  # the serialized Status


@dataclass(slots=True)
class Rows:
    """What a request, or a whole batch, writes; a store writes the parts in this order,
    which is the order of the foreign keys."""

    deliveries: list[DeliveryRow] = field(default_factory=list)
    # Stored deliveries that were replayed, by id: they take today's verdict and detail
    # (the last replay of one in a batch wins, as if each had committed alone).
    replays: dict[str, ReplayRow] = field(default_factory=dict)
    events: list[EventRow] = field(default_factory=list)
    # By name, as the subject ends up: one upsert per subject, because PostgreSQL's
    # ON CONFLICT DO UPDATE may not touch a row twice in one statement.
    statuses: dict[str, StatusRow] = field(default_factory=dict)

    def extend(self, other: Rows) -> None:
        self.deliveries.extend(other.deliveries)
        self.replays.update(other.replays)
        self.events.extend(other.events)
        self.statuses.update(other.statuses)


@dataclass(frozen=True, slots=True)
class Plan:
    """One staged request: what ``ingest`` returns for it, the rows it writes and the
    snapshots it leaves behind."""

    result: IngestResult
    rows: Rows
    statuses: dict[str, Status]
    # The stager's generation it was staged against (see ``Stager.accept``).
    generation: int


def is_storable(text: str) -> bool:
    """Whether a text column of every store can hold ``text``: PostgreSQL refuses NUL,
    and an unpaired surrogate (JSON "\\ud800" decodes to one) is not UTF-8 at all."""
    if "\x00" in text:
        return False
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _storable_text(text: str) -> str:
    return text.replace("\x00", "\ufffd").encode("utf-8", "replace").decode("utf-8")


def subjects(requests: Iterable[IngestRequest]) -> list[str]:
    """The names whose current snapshots the batch needs. A name no store can hold is
    left out: it could not be looked up either, and its request fails in ``stage``."""
    return list(
        dict.fromkeys(
            update.name
            for request in requests
            for update in request.updates
            if update.name and is_storable(update.name)
        )
    )


def replayed(requests: Iterable[IngestRequest]) -> list[str]:
    """The stored deliveries the batch's replays point at, which the store must say
    exist."""
    return list(
        dict.fromkeys(
            request.delivery_id
            for request in requests
            if isinstance(request, ReplayIngest) and is_storable(request.delivery_id)
        )
    )


def failed_alone(exc: Exception) -> Exception:
    log.warning("ingest request failed and was rolled back alone: %r", exc)
    return exc


class Stager:
    """A batch being staged: ``snapshots`` are the committed snapshots of the subjects
    it touches (those that exist), ``deliveries`` the stored deliveries its replays may
    point at, ``sequence`` the last sequence committed before it, ``now`` its time
    (every status it changes gets it as ``updated_at``)."""

    def __init__(
        self,
        snapshots: Mapping[str, Status],
        *,
        deliveries: Iterable[str],
        sequence: int,
        now: datetime,
    ) -> None:
        self._snapshots = snapshots
        self._deliveries = set(deliveries)
        self._now = _aware(now)
        self._now_timestamp = _timestamp(self._now)
        self._generation = 0
        # The last sequence of the accepted requests.
        self.sequence = sequence
        # The snapshots the accepted requests leave, by name.
        self.statuses: dict[str, Status] = {}

    def current(self, name: str) -> Status | None:
        if name in self.statuses:
            return self.statuses[name]
        return self._snapshots.get(name)

    def stage(self, request: IngestRequest) -> Plan:
        """Apply ``request`` after the accepted ones, in memory only; raises, leaving
        the stager as it was, when the request cannot be stored."""
        rows = Rows()
        keys = [text for u in request.updates for text in (u.name, u.source, u.parent)]
        replay: ReplayRow | None = None
        match request:
            case WebhookIngest(delivery=delivery):
                delivery_id = delivery.id
                keys += [
                    delivery.id,
                    delivery.source,
                    delivery.idempotency_key or "",
                    delivery.path,
                ]
                row = DeliveryRow(
                    id=delivery.id,
                    source=delivery.source,
                    received_at=_aware(delivery.received_at),
                    verdict=str(delivery.verdict),
                    # Our own prose about the body, which may quote it: made storable.
                    detail=_storable_text(delivery.detail),
                    headers=_encode_headers(delivery.headers),
                    body=delivery.body,
                    idempotency_key=delivery.idempotency_key,
                    path=delivery.path,
                )
                rows.deliveries.append(row)
                received = _timestamp(row.received_at)
            case PollIngest(received_at=polled_at):
                delivery_id = ""
                received = self._now_timestamp if polled_at is None else _timestamp(polled_at)
            case ReplayIngest(delivery_id=delivery_id, verdict=verdict, detail=detail):
                keys.append(delivery_id)
                replay = ReplayRow(delivery_id, str(verdict), _storable_text(detail))
                received = self._now_timestamp
            case _:
                assert_never(request)
        # One check for all: joining texts cannot make or hide a NUL or a surrogate.
        if not is_storable("".join(keys)):
            bad = next(text for text in keys if not is_storable(text))
            raise ValueError(f"{bad!r} holds NUL or an unpaired surrogate")
        if replay is not None:
            if replay.id not in self._deliveries:
                raise LookupError(f"replay of unknown delivery {replay.id!r}")
            rows.replays[replay.id] = replay

        statuses: dict[str, Status] = {}
        events: list[StatusEvent] = []
        sequence = self.sequence
        for update in request.updates:
            name = update.name
            if not name:
                raise ValueError("a status update without a name")
            previous = statuses[name] if name in statuses else self.current(name)
            new = apply(previous, update)
            if new is None:
                continue
            sequence += 1
            new.sequence = sequence
            new.updated_at.CopyFrom(self._now_timestamp)
            event = StatusEvent(
                sequence=sequence,
                # 128 random bits, like uuid4().hex but a fraction of its cost.
                event_id=os.urandom(16).hex(),
                previous_state=previous_state(previous),
                origin=request.origin,
                delivery_id=delivery_id,
                trace_parent=request.trace_parent,
            )
            event.status.CopyFrom(new)
            event.received_at.CopyFrom(received)
            # Positional: this runs for every event, and keywords cost twice as much.
            rows.events.append(
                EventRow(
                    sequence,
                    event.event_id,
                    name,
                    delivery_id or None,
                    event.SerializeToString(deterministic=True),
                    request.trace_parent,
                )
            )
            rows.statuses[name] = StatusRow(
                name,
                new.source,
                new.parent,
                int(new.kind),
                int(new.state),
                new.terminal,
                self._now,
                sequence,
                new.SerializeToString(deterministic=True),
            )
            statuses[name] = new
            events.append(event)
        result = IngestResult(delivery_id=delivery_id, events=events)
        return Plan(result, rows, statuses, self._generation)

    def accept(self, plan: Plan) -> None:
        """Make a staged request part of the batch, once its rows are written (or are
        about to be, with the whole batch's). Only the last plan staged can be accepted:
        any other was numbered and applied against a batch that has changed since."""
        if plan.generation != self._generation:
            raise RuntimeError("a plan staged before another was accepted")
        self._generation += 1
        if plan.result.events:
            self.sequence = plan.result.events[-1].sequence
        self.statuses.update(plan.statuses)
        self._deliveries.update(row.id for row in plan.rows.deliveries)


def stage_all(stager: Stager, requests: Sequence[IngestRequest]) -> tuple[list[Outcome], Rows]:
    """Stage and accept every request in turn: one outcome per request (its result, or
    the exception it failed with, alone) and the rows of all that staged, to be written
    at once."""
    outcomes: list[Outcome] = []
    rows = Rows()
    for request in requests:
        try:
            plan = stager.stage(request)
        except Exception as exc:
            outcomes.append(failed_alone(exc))
            continue
        stager.accept(plan)
        rows.extend(plan.rows)
        outcomes.append(plan.result)
    return outcomes, rows


def preview(stager: Stager, requests: Sequence[IngestRequest]) -> list[Outcome]:
    """A dry run: the outcome each request would have in one batch, nothing written."""
    outcomes, _ = stage_all(stager, requests)
    return outcomes


# json.dumps(..., sort_keys=True) builds a new encoder per call; this is the same encoder.
_encode_headers = json.JSONEncoder(sort_keys=True, ensure_ascii=True).encode


def _aware(value: datetime) -> datetime:
    """A naive datetime is taken as UTC, never as local time."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def _timestamp(value: datetime) -> Timestamp:
    """``Timestamp.FromDatetime`` at a fraction of its cost (the same floor division, so
    times before the epoch get the same seconds and positive nanos)."""
    seconds, micros = divmod((_aware(value) - _EPOCH) // _MICROSECOND, 1_000_000)
    return Timestamp(seconds=seconds, nanos=micros * 1000)
