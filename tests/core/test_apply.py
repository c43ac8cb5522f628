"""The ordering and deduplication rules, as a pure function: updates move a subject
forward only, a terminal subject never changes, duplicates change nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from statusgate.core.apply import apply, merge
from statusgate.core.names import parse_name
from statusgate.providers.common import build_status, status_error
from statusgate.v1.status_pb2 import ErrorReason, Provider, Stage, State, Status

T0 = datetime(2026, 1, 1, tzinfo=UTC)
SESSION = parse_name("sources/finbox/sessions/s1")
CONSENT = parse_name("sources/setu/consents/c1")


def finbox(state: int, stage: int, **kwargs: object) -> Status:
    return build_status(
        SESSION,
        Provider.PROVIDER_FINBOX,
        state,
        stage,
        final_stage=Stage.STAGE_PROCESSING,
        **kwargs,  # type: ignore[arg-type]
    )


def consent(state: int, at: datetime | None = None, **kwargs: object) -> Status:
    return build_status(
        CONSENT,
        Provider.PROVIDER_SETU,
        state,
        Stage.STAGE_CONSENT,
        final_stage=None,
        occurred_at=at,
        **kwargs,  # type: ignore[arg-type]
    )


def test_first_update_is_version_one() -> None:
    new = apply(None, finbox(State.STATE_PENDING, Stage.STAGE_UPLOAD))
    assert new is not None
    assert (new.state, new.version) == (State.STATE_PENDING, 1)


def test_higher_rank_applies_and_lower_rank_does_not() -> None:
    pending = apply(None, finbox(State.STATE_PENDING, Stage.STAGE_UPLOAD))
    assert pending is not None
    done = apply(pending, finbox(State.STATE_COMPLETED, Stage.STAGE_UPLOAD))
    assert done is not None
    assert (done.state, done.version, done.terminal) == (State.STATE_COMPLETED, 2, False)
    # A late IN_PROGRESS after COMPLETED changes nothing.
    assert apply(done, finbox(State.STATE_IN_PROGRESS, Stage.STAGE_UPLOAD)) is None


def test_stage_outranks_state() -> None:
    uploaded = apply(None, finbox(State.STATE_COMPLETED, Stage.STAGE_UPLOAD))
    assert uploaded is not None
    processing = apply(uploaded, finbox(State.STATE_IN_PROGRESS, Stage.STAGE_PROCESSING))
    assert processing is not None and processing.stage == Stage.STAGE_PROCESSING
    assert apply(processing, finbox(State.STATE_COMPLETED, Stage.STAGE_UPLOAD)) is None


def test_terminal_never_changes() -> None:
    expired = apply(None, finbox(State.STATE_EXPIRED, Stage.STAGE_UPLOAD))
    assert expired is not None and expired.terminal
    assert apply(expired, finbox(State.STATE_COMPLETED, Stage.STAGE_PROCESSING)) is None


def test_identical_update_is_not_applied_twice() -> None:
    update = finbox(State.STATE_IN_PROGRESS, Stage.STAGE_UPLOAD, occurred_at=T0)
    first = apply(None, update)
    assert first is not None
    assert apply(first, update) is None


def test_equal_rank_newer_time_lets_a_consent_pause_and_resume() -> None:
    active = apply(None, consent(State.STATE_ACTIVE, T0))
    assert active is not None
    paused = apply(active, consent(State.STATE_PAUSED, T0 + timedelta(minutes=1)))
    assert paused is not None and paused.state == State.STATE_PAUSED
    resumed = apply(paused, consent(State.STATE_ACTIVE, T0 + timedelta(minutes=2)))
    assert resumed is not None and resumed.state == State.STATE_ACTIVE
    assert resumed.version == 3
    # The late PAUSED from between them is older than what we have: ignored.
    assert apply(resumed, consent(State.STATE_PAUSED, T0 + timedelta(seconds=90))) is None


def test_equal_rank_without_newer_time_only_adds_information() -> None:
    bare = apply(None, consent(State.STATE_PENDING, T0))
    assert bare is not None
    cancelled = consent(
        State.STATE_PENDING,
        T0,
        error=status_error(ErrorReason.ERROR_REASON_USER_CANCELLED, "UserCancelled"),
        attributes={"notification_id": "n1"},
    )
    enriched = apply(bare, cancelled)
    assert enriched is not None
    assert enriched.error.reason == ErrorReason.ERROR_REASON_USER_CANCELLED
    assert enriched.attributes["notification_id"] == "n1"
    assert enriched.state == State.STATE_PENDING and enriched.version == 2
    # ...and never lowers: an equal-rank update with less progress or readiness is a no-op.
    ready = finbox(
        State.STATE_IN_PROGRESS, Stage.STAGE_UPLOAD, progress=(2, 3), ready_to_fetch=True
    )
    current = apply(None, ready)
    assert current is not None
    assert (
        apply(current, finbox(State.STATE_IN_PROGRESS, Stage.STAGE_UPLOAD, progress=(1, 3))) is None
    )


def test_higher_rank_keeps_attributes_and_provider_time() -> None:
    first = apply(
        None,
        finbox(
            State.STATE_PENDING,
            Stage.STAGE_UPLOAD,
            occurred_at=T0,
            attributes={"bank_name": "HDFC"},
        ),
    )
    assert first is not None
    later = apply(first, finbox(State.STATE_IN_PROGRESS, Stage.STAGE_UPLOAD))
    assert later is not None
    assert later.attributes["bank_name"] == "HDFC"
    assert later.occurred_at.ToDatetime(tzinfo=UTC) == T0


def test_a_failure_its_flow_left_open_is_superseded_by_the_next_success() -> None:
    entity = parse_name("sources/finbox/entities/e1")

    def attempt(state: int) -> Status:
        status = build_status(entity, Provider.PROVIDER_FINBOX, state, final_stage=None)
        status.terminal = False  # a FinBox entity's failure is one attempt, not the end
        return status

    failed = apply(None, attempt(State.STATE_FAILED))
    assert failed is not None and not failed.terminal
    retried = apply(failed, attempt(State.STATE_COMPLETED))
    assert retried is not None and retried.state == State.STATE_COMPLETED
    # A terminal failure stays final whatever follows.
    final = apply(None, finbox(State.STATE_FAILED, Stage.STAGE_UPLOAD))
    assert final is not None and final.terminal
    assert apply(final, finbox(State.STATE_COMPLETED, Stage.STAGE_UPLOAD)) is None


def test_merge_folds_one_subjects_updates_into_one() -> None:
    account = parse_name("sources/finbox/sessions/s1/accounts/a1")
    upload_account = build_status(
        account,
        Provider.PROVIDER_FINBOX,
        State.STATE_COMPLETED,
        Stage.STAGE_UPLOAD,
        final_stage=Stage.STAGE_PROCESSING,
        attributes={"bank_name": "HDFC"},
    )
    updates = [
        upload_account,
        finbox(State.STATE_COMPLETED, Stage.STAGE_UPLOAD),
        finbox(State.STATE_IN_PROGRESS, Stage.STAGE_PROCESSING, progress=(1, 2)),
        finbox(State.STATE_COMPLETED, Stage.STAGE_PROCESSING, ready_to_fetch=True),
    ]
    merged = merge(updates)
    # One update per subject, in the order the subjects first appeared.
    assert [u.name for u in merged] == [str(account), str(SESSION)]
    assert merged[0] == upload_account
    session = merged[1]
    assert (session.state, session.stage, session.terminal) == (
        State.STATE_COMPLETED,
        Stage.STAGE_PROCESSING,
        True,
    )
    assert session.ready_to_fetch and not session.version  # the store numbers versions
    # Applying the merge is applying the updates one by one, in a single step.
    one_by_one: Status | None = None
    for update in updates[1:]:
        one_by_one = apply(one_by_one, update) or one_by_one
    assert one_by_one is not None
    one_by_one.ClearField("version")
    assert session == one_by_one


def test_merge_stops_at_a_terminal_state_and_drops_what_changes_nothing() -> None:
    expired = finbox(State.STATE_EXPIRED, Stage.STAGE_UPLOAD)
    later = finbox(State.STATE_COMPLETED, Stage.STAGE_PROCESSING)
    assert merge([expired, later, expired]) == [expired]
    assert merge([]) == []
