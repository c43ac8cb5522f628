"""The store contract for one group-commit batch that mixes webhooks, polls and replays
with duplicates, out-of-order updates and failing requests: every backend of
``conftest.BACKENDS`` commits it alike, on the set-based path and when a write refused
by the database sends it down the request-by-request path."""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from statusgate.core.deliveries import Delivery
from statusgate.store.base import (
    DeliveryVerdict,
    IngestRequest,
    IngestResult,
    PollIngest,
    ReplayIngest,
    Store,
    StoreUnavailableError,
    WebhookIngest,
)
from statusgate.store.factory import open_store
from statusgate.v1.status_pb2 import Origin, Stage, State, Status, StatusEvent
from tests.store.builders import delivery, poll, sequences, update, webhook

SESSION = "sources/finbox/sessions/s1"
ACCOUNT = f"{SESSION}/accounts/a1"
SESSION2 = "sources/finbox/sessions/s2"
CONSENT = "sources/setu/consents/c1"
NEVER = ["sources/finbox/sessions/x1", "sources/finbox/sessions/x2", "sources/finbox/sessions/x3"]
T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Outcome:
    results: list[IngestResult | BaseException]
    commits: int
    events: list[StatusEvent]
    statuses: dict[str, Status]
    deliveries: list[Delivery]


async def mixed_batch(store: Store, *, refused: bool) -> Outcome:
    """Commits two requests on their own, then one batch of ten; ``refused``: one
    request of the batch reuses a stored delivery id, which only the database knows."""
    await store.ingest(WebhookIngest(unmapped("kept")))
    await store.ingest(
        webhook(
            update(SESSION, State.STATE_IN_PROGRESS, Stage.STAGE_PROCESSING),
            delivery_id="d0",
            received_at=T0,
        )
    )
    broken = Status()
    broken.CopyFrom(update(SESSION, State.STATE_IN_PROGRESS))
    broken.stage = 99  # type: ignore[assignment]  # no such stage: apply() raises
    consent = update(CONSENT, State.STATE_ACTIVE, Stage.STAGE_CONSENT, occurred_at=T0)
    batch: list[IngestRequest] = [
        # 0: the session's update is older than what is stored; the account is new.
        webhook(
            update(SESSION, State.STATE_COMPLETED, Stage.STAGE_UPLOAD),
            update(ACCOUNT, State.STATE_PENDING, Stage.STAGE_UPLOAD),
            delivery_id="d1",
            received_at=T0,
        ),
        # 1: a duplicate of what request 0 did, then a step forward.
        poll(
            update(ACCOUNT, State.STATE_PENDING, Stage.STAGE_UPLOAD),
            update(ACCOUNT, State.STATE_COMPLETED, Stage.STAGE_UPLOAD),
        ),
        # 2: a stored delivery, mapped at last.
        ReplayIngest("kept", [consent]),
        # 3: a replay of a delivery that is not stored.
        ReplayIngest("missing", [update(NEVER[0], State.STATE_PENDING)]),
        # 4: a delivery id that is taken (refused by the database), or a new one.
        webhook(
            update(NEVER[1], State.STATE_PENDING),
            delivery_id="d0" if refused else "d4",
            received_at=T0,
        ),
        # 5: provider time older than the consent's.
        webhook(
            update(CONSENT, State.STATE_PAUSED, Stage.STAGE_CONSENT, occurred_at=T0 - timedelta(1)),
            source="setu",
            delivery_id="d5",
            received_at=T0,
        ),
        # 6: a bug in the rules, after an update that alone would apply.
        poll(update(NEVER[2], State.STATE_PENDING), broken),
        # 7, 8: a delivery, and its replay in the same batch.
        WebhookIngest(unmapped("late")),
        ReplayIngest("late", [update(SESSION2, State.STATE_PENDING)]),
        # 9: the reconciler learns what the replay said.
        PollIngest([consent], by_reconciler=True),
    ]
    commits: int = store.commits  # type: ignore[attr-defined]
    results = await asyncio.gather(*map(store.ingest, batch), return_exceptions=True)
    return Outcome(
        results=results,
        commits=store.commits - commits,  # type: ignore[attr-defined]
        events=await store.read_events(after_sequence=0, limit=100),
        statuses=await store.get_statuses([SESSION, ACCOUNT, SESSION2, CONSENT, *NEVER]),
        deliveries=await store.list_deliveries([], limit=100),
    )


def unmapped(delivery_id: str) -> Delivery:
    return delivery(verdict=DeliveryVerdict.UNMAPPED, id_=delivery_id, received_at=T0)


def ok(outcome: IngestResult | BaseException) -> IngestResult:
    assert isinstance(outcome, IngestResult), outcome
    return outcome


@pytest.mark.parametrize("refused", [False, True], ids=["set-based", "one-by-one"])
async def test_a_mixed_batch_commits_once_and_each_request_as_the_rules_say(
    store: Store, refused: bool
) -> None:
    outcome = await mixed_batch(store, refused=refused)
    results = outcome.results

    assert outcome.commits == 1
    assert isinstance(results[3], LookupError)
    assert isinstance(results[6], KeyError)
    if refused:
        assert isinstance(results[4], Exception)
        assert not isinstance(results[4], StoreUnavailableError)
    else:
        assert ok(results[4]).delivery_id == "d4"
    ok_indexes = [0, 1, 2, 5, 7, 8, 9] + ([] if refused else [4])
    changes = {
        index: [
            (e.sequence, e.status.name, e.status.version, e.previous_state, e.origin)
            for e in ok(results[index]).events
        ]
        for index in ok_indexes
    }
    webhook_, poll_, replay = Origin.ORIGIN_WEBHOOK, Origin.ORIGIN_POLL, Origin.ORIGIN_REPLAY
    pending, unspecified = State.STATE_PENDING, State.STATE_UNSPECIFIED
    expected = {
        0: [(2, ACCOUNT, 1, unspecified, webhook_)],
        1: [(3, ACCOUNT, 2, pending, poll_)],
        2: [(4, CONSENT, 1, unspecified, replay)],
        5: [],
        7: [],
        8: [(5 if refused else 6, SESSION2, 1, unspecified, replay)],
        9: [],
    }
    if not refused:
        expected[4] = [(5, NEVER[1], 1, unspecified, webhook_)]
    assert changes == expected
    assert [ok(results[i]).delivery_id for i in (2, 7, 8, 9)] == ["kept", "late", "late", ""]
    assert [e.delivery_id for e in ok(results[2]).events + ok(results[8]).events] == [
        "kept",
        "late",
    ]

    # What ingest returned is what was committed, and nothing else.
    returned = [e for i in ok_indexes for e in ok(results[i]).events]
    assert outcome.events[1:] == sorted(returned, key=lambda e: e.sequence)
    assert sequences(outcome.events) == list(range(1, 6 if refused else 7))
    assert await store.last_sequence() == len(outcome.events)
    statuses = outcome.statuses
    assert {name: (s.state, s.version) for name, s in statuses.items()} == {
        SESSION: (State.STATE_IN_PROGRESS, 1),
        ACCOUNT: (State.STATE_COMPLETED, 2),
        CONSENT: (State.STATE_ACTIVE, 1),
        SESSION2: (State.STATE_PENDING, 1),
        **({} if refused else {NEVER[1]: (State.STATE_PENDING, 1)}),
    }
    verdicts = {d.id: (d.verdict, d.detail) for d in outcome.deliveries}
    assert verdicts["kept"] == verdicts["late"] == (DeliveryVerdict.MAPPED, "")
    assert sorted(verdicts) == sorted(
        ["kept", "d0", "d1", "d5", "late", *([] if refused else ["d4"])]
    )


async def test_a_mixed_batch_has_the_same_outcome_on_both_stores(
    postgres_url: str, tmp_path: Path
) -> None:
    outcomes = []
    for url in (f"sqlite:///{tmp_path}/s.db", postgres_url):
        store = open_store(url)
        await store.open()
        try:
            outcomes.append(comparable(await mixed_batch(store, refused=True)))
        finally:
            await store.close()
    sqlite, postgres = outcomes
    assert sqlite == postgres


def comparable(outcome: Outcome) -> dict[str, object]:
    """``outcome`` without what differs by nature: random event ids, the commit's time
    (also the arrival time of polls and replays), the driver's class of a refused write."""

    def event(e: StatusEvent) -> StatusEvent:
        copy = StatusEvent()
        copy.CopyFrom(e)
        copy.ClearField("event_id")
        copy.status.ClearField("updated_at")
        if e.origin != Origin.ORIGIN_WEBHOOK:
            copy.ClearField("received_at")
        return copy

    def status(s: Status) -> Status:
        copy = Status()
        copy.CopyFrom(s)
        copy.ClearField("updated_at")
        return copy

    def result(r: IngestResult | BaseException) -> object:
        if isinstance(r, LookupError | KeyError):
            return type(r).__name__
        if isinstance(r, BaseException):
            return "refused"
        return (r.delivery_id, [event(e) for e in r.events])

    return {
        "results": [result(r) for r in outcome.results],
        "commits": outcome.commits,
        "events": [event(e) for e in outcome.events],
        "statuses": {name: status(s) for name, s in outcome.statuses.items()},
        "deliveries": outcome.deliveries,
    }


# --- what only some databases refuse is refused by every store ------------------------


async def test_a_name_postgres_cannot_hold_fails_its_request_alone(store: Store) -> None:
    """PostgreSQL text cannot hold NUL, which JSON can carry in a provider id (protobuf
    already refuses unpaired surrogates). Such a request fails alone, before any SQL,
    on every store (so a deployment can move between them); the rest of the batch
    commits."""
    bad = [
        webhook(Status(name=f"sources/finbox/sessions/{bad_id}", state=State.STATE_PENDING))
        for bad_id in ("nul\x00", "x\x00y")
    ]
    commits = store.commits  # type: ignore[attr-defined]
    good1, *failures, good2 = await asyncio.gather(
        store.ingest(webhook(update(SESSION, State.STATE_PENDING))),
        *map(store.ingest, bad),
        store.ingest(webhook(update(CONSENT, State.STATE_ACTIVE), source="setu")),
        return_exceptions=True,
    )
    assert all(isinstance(failure, ValueError) for failure in failures), failures
    assert not isinstance(good1, BaseException) and not isinstance(good2, BaseException)
    assert sequences(good1.events) + sequences(good2.events) == [1, 2]
    assert store.commits - commits == 1  # type: ignore[attr-defined]
    assert len(await store.list_deliveries([])) == 2


async def test_delivery_text_round_trips_whatever_it_holds(store: Store) -> None:
    kept = dataclasses.replace(
        delivery(verdict=DeliveryVerdict.UNMAPPED),
        headers={"user-agent": "bad\udcff bytes \x00 and ünïcode"},
        body=b"\x00\xff",
    )
    await store.ingest(WebhookIngest(kept))
    [stored] = await store.list_deliveries([])
    assert stored == kept


async def test_a_nul_in_a_delivery_detail_is_kept_readable(store: Store) -> None:
    kept = dataclasses.replace(delivery(verdict=DeliveryVerdict.UNMAPPED), detail="a\x00b")
    await store.ingest(WebhookIngest(kept))
    [stored] = await store.list_deliveries([])
    assert (stored.id, stored.detail) == (kept.id, "a\ufffdb")
