"""The order of canonical states and stages: the rank of an update, and when a subject
is terminal."""

from __future__ import annotations

from statusgate.v1.status_pb2 import Kind, Stage, State

FAILURE_STATES: frozenset[State.ValueType] = frozenset(
    {
        State.STATE_FAILED,
        State.STATE_EXPIRED,
        State.STATE_REJECTED,
        State.STATE_REVOKED,
        State.STATE_CANCELLED,
    }
)
SUCCESS_STATES: frozenset[State.ValueType] = frozenset({State.STATE_COMPLETED, State.STATE_PARTIAL})
# A consent that is COMPLETED does not exist; ACTIVE/PAUSED can flip for its whole life.
CONSENT_TERMINAL_STATES: frozenset[State.ValueType] = frozenset(
    {State.STATE_REVOKED, State.STATE_EXPIRED, State.STATE_REJECTED, State.STATE_FAILED}
)

_STATE_RANK: dict[State.ValueType, int] = {
    State.STATE_UNSPECIFIED: 0,
    State.STATE_PENDING: 1,
    State.STATE_IN_PROGRESS: 2,
    State.STATE_ACTIVE: 3,
    State.STATE_PAUSED: 3,
    State.STATE_PARTIAL: 4,
    State.STATE_COMPLETED: 5,
    **{state: 6 for state in FAILURE_STATES},
}

# Stages are compared only within one provider's flow; the enum's numbering already
# follows each flow's order (UPLOAD < PROCESSING, AUTHENTICATION < ... <
# TRANSACTION_DETAILS), and flows never mix on one subject.
_STAGE_RANK: dict[Stage.ValueType, int] = {stage: int(stage) for stage in Stage.values()}


def rank(state: State.ValueType, stage: Stage.ValueType) -> tuple[int, int]:
    """(stage order, state rank), compared lexicographically."""
    return (_STAGE_RANK[stage], _STATE_RANK[state])


def is_terminal(
    kind: Kind.ValueType,
    state: State.ValueType,
    stage: Stage.ValueType,
    final_stage: Stage.ValueType | None,
) -> bool:
    """Rule 3: a failure state, or success at the final stage of the subject's flow.

    ``final_stage`` is None for subjects whose success never ends them (a consent, a
    entity that can take more statements).
    """
    if kind == Kind.KIND_CONSENT:
        return state in CONSENT_TERMINAL_STATES
    if state in FAILURE_STATES:
        return True
    return state in SUCCESS_STATES and final_stage is not None and stage == final_stage
