"""Staging a batch in memory, without a database: the apply rules, sequences, events and
rows of each request, and a request that cannot be staged failing alone."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from statusgate.store.base import (
    DeliveryVerdict,
    IngestResult,
    PollIngest,
    ReplayIngest,
    WebhookIngest,
)
from statusgate.store.staging import ReplayRow, Stager, replayed, stage_all, subjects
from statusgate.v1.status_pb2 import Origin, Stage, State, Status, StatusEvent
from tests.store.builders import delivery, poll, sequences, update, webhook

SESSION = "sources/finbox/sessions/s1"
ACCOUNT = f"{SESSION}/accounts/a1"
CONSENT = "sources/setu/consents/c1"
NOW = datetime(2025, 3, 1, 12, 0, 0, 250_000, tzinfo=UTC)


def stager(
    snapshots: Mapping[str, Status] | None = None,
    *,
    deliveries: tuple[str, ...] = (),
    sequence: int = 10,
) -> Stager:
    return Stager(snapshots or {}, deliveries=deliveries, sequence=sequence, now=NOW)


def stored(name: str, state: State.ValueType, stage: Stage.ValueType, sequence: int) -> Status:
    status = update(name, state, stage)
    status.version, status.sequence = 1, sequence
    return status


def broken_update(name: str) -> Status:
    """An update that makes ``core.apply`` raise (a bug) once its subject exists."""
    broken = update(name, State.STATE_IN_PROGRESS)
    broken.stage = 99  # type: ignore[assignment]
    return broken


def result(outcome: IngestResult | Exception) -> IngestResult:
    assert isinstance(outcome, IngestResult), outcome
    return outcome


def test_each_request_that_cannot_be_staged_fails_alone() -> None:
    staging = stager({SESSION: stored(SESSION, State.STATE_PENDING, Stage.STAGE_UPLOAD, 10)})
    good = webhook(update(ACCOUNT, State.STATE_PENDING))
    requests = [
        good,
        # A bug: its first update alone would apply.
        poll(update(CONSENT, State.STATE_ACTIVE), broken_update(SESSION)),
        # A key no store can hold.
        webhook(update(CONSENT, State.STATE_ACTIVE), Status(name="sources/setu/consents/\x00")),
        ReplayIngest("no-such-delivery", [update(CONSENT, State.STATE_ACTIVE)]),
        poll(update(CONSENT, State.STATE_ACTIVE), Status(state=State.STATE_ACTIVE)),
        poll(update(SESSION, State.STATE_COMPLETED, Stage.STAGE_UPLOAD)),
    ]

    outcomes, rows = stage_all(staging, requests)

    assert [type(outcome) for outcome in outcomes] == [
        IngestResult,
        KeyError,
        ValueError,
        LookupError,
        ValueError,
        IngestResult,
    ]
    assert sequences(result(outcomes[0]).events) == [11]
    assert sequences(result(outcomes[5]).events) == [12]
    assert staging.sequence == 12
    assert set(staging.statuses) == {ACCOUNT, SESSION}
    assert staging.current(CONSENT) is None
    # Only the requests that staged have rows.
    assert isinstance(good, WebhookIngest)
    assert [row.id for row in rows.deliveries] == [good.delivery.id]
    assert [row.sequence for row in rows.events] == [11, 12]
    assert set(rows.statuses) == {ACCOUNT, SESSION}
    assert rows.replays == {}


def test_stage_changes_nothing_until_accepted() -> None:
    staging = stager()
    plan = staging.stage(poll(update(SESSION, State.STATE_PENDING)))
    assert sequences(plan.result.events) == [11]
    assert (staging.sequence, staging.current(SESSION), staging.statuses) == (10, None, {})

    again = staging.stage(poll(update(SESSION, State.STATE_PENDING)))
    assert sequences(again.result.events) == [11]  # staged against the same batch
    staging.accept(plan)
    assert staging.sequence == 11
    assert staging.current(SESSION) == plan.result.events[0].status
    # Numbered and applied before ``plan`` was accepted: it would reuse sequence 11.
    with pytest.raises(RuntimeError):
        staging.accept(again)
    duplicate = staging.stage(poll(update(SESSION, State.STATE_PENDING)))
    assert duplicate.result.events == []


def test_updates_apply_in_order_against_the_batch_so_far() -> None:
    staging = stager({SESSION: stored(SESSION, State.STATE_IN_PROGRESS, Stage.STAGE_PROCESSING, 9)})
    outcomes, rows = stage_all(
        staging,
        [
            # Out of order: lower than what is stored.
            webhook(update(SESSION, State.STATE_COMPLETED, Stage.STAGE_UPLOAD)),
            poll(
                update(ACCOUNT, State.STATE_PENDING, Stage.STAGE_UPLOAD),
                update(ACCOUNT, State.STATE_PENDING, Stage.STAGE_UPLOAD),  # duplicate
                update(ACCOUNT, State.STATE_COMPLETED, Stage.STAGE_UPLOAD),
            ),
            webhook(update(ACCOUNT, State.STATE_PENDING, Stage.STAGE_UPLOAD)),  # late
            poll(update(SESSION, State.STATE_COMPLETED, Stage.STAGE_PROCESSING)),
        ],
    )

    events = [event for outcome in outcomes for event in result(outcome).events]
    assert [(e.sequence, e.status.name, e.status.version, e.previous_state) for e in events] == [
        (11, ACCOUNT, 1, State.STATE_UNSPECIFIED),
        (12, ACCOUNT, 2, State.STATE_PENDING),
        (13, SESSION, 2, State.STATE_IN_PROGRESS),
    ]
    assert [row.sequence for row in rows.events] == [11, 12, 13]
    assert [StatusEvent.FromString(row.data) for row in rows.events] == events
    # One upsert per subject, as it ends up.
    assert {name: row.sequence for name, row in rows.statuses.items()} == {
        ACCOUNT: 12,
        SESSION: 13,
    }
    assert Status.FromString(rows.statuses[ACCOUNT].data) == events[1].status
    assert len(rows.deliveries) == 2  # the late webhook's delivery is kept


def test_replays_point_at_stored_deliveries_or_ones_earlier_in_the_batch() -> None:
    staging = stager(deliveries=("kept",))
    earlier = WebhookIngest(delivery(verdict=DeliveryVerdict.UNMAPPED, id_="earlier"))
    outcomes, rows = stage_all(
        staging,
        [
            ReplayIngest("kept", [update(SESSION, State.STATE_PENDING)]),
            earlier,
            ReplayIngest("earlier", [update(ACCOUNT, State.STATE_PENDING)]),
            # A replay always writes its delivery's verdict: an unknown one fails alone.
            ReplayIngest("unknown", [], verdict=DeliveryVerdict.REJECTED, detail="still bad"),
        ],
    )

    assert [result(outcome).delivery_id for outcome in outcomes[:3]] == [
        "kept",
        "earlier",
        "earlier",
    ]
    assert isinstance(outcomes[3], LookupError)
    events = [event for outcome in outcomes[:3] for event in result(outcome).events]
    assert [(e.delivery_id, e.origin) for e in events] == [
        ("kept", Origin.ORIGIN_REPLAY),
        ("earlier", Origin.ORIGIN_REPLAY),
    ]
    assert [row.delivery_id for row in rows.events] == ["kept", "earlier"]
    assert list(rows.replays.values()) == [
        ReplayRow("kept", "mapped", ""),
        ReplayRow("earlier", "mapped", ""),
    ]
    assert [row.id for row in rows.deliveries] == ["earlier"]


def test_a_replay_of_a_failed_request_s_delivery_is_unknown() -> None:
    staging = stager({SESSION: stored(SESSION, State.STATE_PENDING, Stage.STAGE_UPLOAD, 10)})
    outcomes, rows = stage_all(
        staging,
        [
            WebhookIngest(delivery(id_="d1"), [broken_update(SESSION)]),
            ReplayIngest("d1", [update(ACCOUNT, State.STATE_PENDING)]),
        ],
    )
    assert [type(outcome) for outcome in outcomes] == [KeyError, LookupError]
    assert (rows.deliveries, rows.replays, rows.events) == ([], {}, [])


def test_every_change_gets_the_batch_time_and_events_the_time_of_their_source() -> None:
    polled_at = datetime(2025, 3, 1, 11, 0)  # naive: taken as UTC
    arrived = delivery(received_at=datetime(2025, 3, 1, 10, 0, 0, 5))
    outcomes, rows = stage_all(
        stager(deliveries=("kept",)),
        [
            WebhookIngest(arrived, [update(SESSION, State.STATE_PENDING)]),
            PollIngest([update(f"{SESSION}/accounts/a", State.STATE_PENDING)], polled_at),
            PollIngest([update(f"{SESSION}/accounts/b", State.STATE_PENDING)], by_reconciler=True),
            ReplayIngest("kept", [update(f"{SESSION}/accounts/c", State.STATE_PENDING)]),
        ],
    )

    events = [event for outcome in outcomes for event in result(outcome).events]
    assert [e.received_at.ToDatetime(UTC) for e in events] == [
        arrived.received_at.replace(tzinfo=UTC),
        polled_at.replace(tzinfo=UTC),
        NOW,
        NOW,
    ]
    assert [e.origin for e in events] == [
        Origin.ORIGIN_WEBHOOK,
        Origin.ORIGIN_POLL,
        Origin.ORIGIN_RECONCILE,
        Origin.ORIGIN_REPLAY,
    ]
    assert {e.status.updated_at.ToDatetime(UTC) for e in events} == {NOW}
    assert {row.updated_at for row in rows.statuses.values()} == {NOW}
    assert rows.deliveries[0].received_at == arrived.received_at.replace(tzinfo=UTC)


def test_delivery_rows_hold_text_every_store_can_keep() -> None:
    kept = dataclasses.replace(
        delivery(verdict=DeliveryVerdict.REJECTED),
        detail="quoted \x00 and \ud800",
        headers={"x-b": "bad\udcff \x00", "x-a": "ünï"},
    )
    [row] = stage_all(stager(), [WebhookIngest(kept)])[1].deliveries
    assert row.detail == "quoted \ufffd and ?"
    assert row.headers.isascii()
    assert json.loads(row.headers) == kept.headers
    assert list(json.loads(row.headers)) == ["x-a", "x-b"]
    assert row.verdict == "rejected"


@pytest.mark.parametrize(
    "request_",
    [
        WebhookIngest(delivery(id_="d\x00")),
        WebhookIngest(dataclasses.replace(delivery(), source="fin\x00box")),
        ReplayIngest("d\x00", [update(SESSION, State.STATE_PENDING)]),
        PollIngest([Status(name=SESSION, source="x\x00", state=State.STATE_PENDING)]),
        PollIngest([Status(name=SESSION, parent="p\x00", state=State.STATE_PENDING)]),
    ],
)
def test_keys_no_store_can_hold_are_refused(
    request_: WebhookIngest | PollIngest | ReplayIngest,
) -> None:
    with pytest.raises(ValueError, match="NUL"):
        stager().stage(request_)


def test_what_a_store_reads_for_a_batch() -> None:
    requests = [
        poll(update(SESSION, State.STATE_PENDING), update(ACCOUNT, State.STATE_PENDING)),
        webhook(update(SESSION, State.STATE_COMPLETED), Status(name="sources/x/sessions/\x00")),
        poll(Status(state=State.STATE_PENDING)),
        ReplayIngest("d1", [update(CONSENT, State.STATE_ACTIVE)]),
        ReplayIngest("d1", [update(CONSENT, State.STATE_ACTIVE)]),
        ReplayIngest("d2", []),
        ReplayIngest("d\x00", [update(CONSENT, State.STATE_ACTIVE)]),
    ]
    assert subjects(requests) == [SESSION, ACCOUNT, CONSENT]
    assert replayed(requests) == ["d1", "d2"]


def test_a_naive_batch_time_is_utc() -> None:
    naive = Stager({}, deliveries=(), sequence=0, now=NOW.replace(tzinfo=None))
    plan = naive.stage(poll(update(SESSION, State.STATE_PENDING)))
    assert plan.rows.statuses[SESSION].updated_at == NOW
    assert plan.result.events[0].status.updated_at.ToDatetime(UTC) == NOW


@pytest.mark.parametrize(
    "received_at",
    [
        datetime(1969, 12, 31, 23, 59, 59, 500_000, tzinfo=UTC),
        datetime(2025, 3, 1, 12, 0, 0, 1, tzinfo=timezone(timedelta(hours=5, minutes=30))),
        datetime(2025, 3, 1, 12, 0, 0, 999_999),
    ],
)
def test_times_convert_as_protobuf_converts_them(received_at: datetime) -> None:
    plan = stager().stage(PollIngest([update(SESSION, State.STATE_PENDING)], received_at))
    expected = Timestamp()
    expected.FromDatetime(received_at)
    assert plan.result.events[0].received_at == expected
