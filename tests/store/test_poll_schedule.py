"""The reconciler's schedule in the store: ``claim_due_polls`` and ``finish_poll``.

Runs against every backend of ``conftest.BACKENDS``. Statuses get ``updated_at`` = the
commit time, so the tests place ``now`` and ``quiet_before`` relative to the real clock.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from statusgate.store.base import Store
from statusgate.v1.status_pb2 import Stage, State
from tests.store.builders import update, webhook

A = "sources/finbox/sessions/a"
B = "sources/finbox/sessions/b"
DONE = "sources/finbox/sessions/done"
OTHER = "sources/setu/consents/c"
HOUR = timedelta(hours=1)


async def seed(store: Store) -> None:
    await store.ingest(webhook(update(A, State.STATE_PENDING, Stage.STAGE_UPLOAD)))
    await store.ingest(webhook(update(B, State.STATE_IN_PROGRESS, Stage.STAGE_UPLOAD)))
    await store.ingest(
        webhook(update(DONE, State.STATE_EXPIRED, Stage.STAGE_UPLOAD, terminal=True))
    )
    await store.ingest(
        webhook(update(OTHER, State.STATE_PENDING, Stage.STAGE_CONSENT), source="setu")
    )


async def claim(
    store: Store,
    owner: str = "r1",
    *,
    now: datetime | None = None,
    quiet_before: datetime | None = None,
    changed_after: datetime | None = None,
    lease: timedelta = HOUR,
    limit: int = 10,
) -> list[str]:
    now = now or datetime.now(UTC) + timedelta(seconds=1)
    claims = await store.claim_due_polls(
        "finbox",
        now=now,
        quiet_before=quiet_before or now,
        changed_after=changed_after or now - 24 * HOUR,
        owner=owner,
        lease_until=now + lease,
        limit=limit,
    )
    return sorted(c.name for c in claims)


async def test_claims_quiet_non_terminal_subjects_of_the_source(store: Store) -> None:
    await seed(store)
    assert await claim(store) == [A, B]


async def test_a_subject_that_is_not_quiet_yet_is_left(store: Store) -> None:
    await seed(store)
    long_ago = datetime.now(UTC) - HOUR
    assert await claim(store, quiet_before=long_ago) == []


async def test_abandoned_subjects_are_left(store: Store) -> None:
    await seed(store)
    assert await claim(store, changed_after=datetime.now(UTC) + timedelta(seconds=1)) == []


async def test_a_leased_subject_is_not_claimed_again_until_the_lease_ends(store: Store) -> None:
    await seed(store)
    assert await claim(store, "r1", limit=1) == [A]
    assert await claim(store, "r2") == [B]
    assert await claim(store, "r3") == []
    later = datetime.now(UTC) + 2 * HOUR
    assert await claim(store, "r3", now=later) == [A, B]


async def test_finish_schedules_the_next_poll(store: Store) -> None:
    await seed(store)
    [first] = await store.claim_due_polls(
        "finbox",
        now=datetime.now(UTC) + timedelta(seconds=1),
        quiet_before=datetime.now(UTC) + timedelta(seconds=1),
        changed_after=datetime.now(UTC) - HOUR,
        owner="r1",
        lease_until=datetime.now(UTC) + HOUR,
        limit=1,
    )
    assert (first.name, first.attempts, first.last_polled_at) == (A, 0, None)
    await store.finish_poll(A, owner="r1", next_poll_at=datetime.now(UTC) + HOUR, attempts=3)
    await store.finish_poll(B, owner="r1", next_poll_at=datetime.now(UTC) + HOUR, attempts=1)

    assert await claim(store, "r2") == [B]  # B was never leased by r1: still due
    claims = await store.claim_due_polls(
        "finbox",
        now=datetime.now(UTC) + 2 * HOUR,
        quiet_before=datetime.now(UTC) + 2 * HOUR,
        changed_after=datetime.now(UTC) - HOUR,
        owner="r3",
        lease_until=datetime.now(UTC) + 3 * HOUR,
        limit=10,
    )
    # Never-polled subjects come first, then the longest unpolled.
    assert [c.name for c in claims] == [B, A]
    again = claims[1]
    assert again.attempts == 3
    assert again.last_polled_at is not None


async def test_a_change_since_the_last_poll_makes_it_due_and_resets_attempts(store: Store) -> None:
    await seed(store)
    assert await claim(store, "r1") == [A, B]
    far = datetime.now(UTC) + 24 * HOUR
    await store.finish_poll(A, owner="r1", next_poll_at=far, attempts=4)
    await store.finish_poll(B, owner="r1", next_poll_at=far, attempts=4)
    assert await claim(store, "r2") == []

    await store.ingest(webhook(update(A, State.STATE_COMPLETED, Stage.STAGE_UPLOAD)))
    now = datetime.now(UTC) + timedelta(seconds=1)
    claims = await store.claim_due_polls(
        "finbox",
        now=now,
        quiet_before=now,
        changed_after=now - HOUR,
        owner="r2",
        lease_until=now + HOUR,
        limit=10,
    )
    assert [(c.name, c.attempts) for c in claims] == [(A, 0)]


async def test_finish_by_a_former_owner_is_ignored(store: Store) -> None:
    await seed(store)
    assert await claim(store, "r1", limit=1) == [A]
    later = datetime.now(UTC) + 2 * HOUR
    assert await claim(store, "r2", now=later, limit=1) == [A]  # r1's lease ran out
    await store.finish_poll(A, owner="r1", next_poll_at=later + 24 * HOUR, attempts=9)
    # r2 still holds it: nobody else may claim it before r2's lease ends.
    assert A not in await claim(store, "r3", now=later)
