"""Whether an update moves a subject forward: the ordering rules.

Providers send duplicates, late and out-of-order updates. ``apply`` is the one place that
decides, as a pure function of the current snapshot and the update, so the SQLite and
PostgreSQL stores run the very same rules inside their transactions.
"""

from __future__ import annotations

from collections.abc import Iterable

from statusgate.core.states import FAILURE_STATES, SUCCESS_STATES, rank
from statusgate.v1.status_pb2 import State, Status

# Fields the gateway owns; an update never sets them and they never make two updates differ.
_GATEWAY_FIELDS = ("version", "sequence", "updated_at")


def apply(current: Status | None, update: Status) -> Status | None:
    """The subject's next snapshot, or None when the update changes nothing.

    The result carries ``version`` = current + 1; the store sets ``sequence`` and
    ``updated_at`` when it commits the event.
    """
    if current is None:
        new = _copy(update)
        new.version = 1
        return new
    if current.terminal:
        return None

    current_rank = rank(current.state, current.stage)
    update_rank = rank(update.state, update.stage)
    superseding = _supersedes_open_failure(current, update)
    if update_rank < current_rank and not superseding:
        return None
    if update_rank > current_rank or superseding or _is_newer(update, current):
        new = _replaced(current, update)
    else:
        new = _enriched(current, update)
    if _same_content(new, current):
        return None
    new.version = current.version + 1
    return new


def merge(updates: Iterable[Status]) -> list[Status]:
    """One update per subject, in the order the subjects first appear: what several
    answers said about a subject, folded by the very rules ``apply`` runs.

    A poll calls several endpoints that each describe part of a subject (an upload
    status, then the processing, then per-account verdicts). Applied one by one they
    would emit every step, including a state the provider never reported (COMPLETED at
    the first stage, then a provisional IN_PROGRESS at the next, then COMPLETED);
    merged, the subject makes the one change the provider's answers add up to.
    """
    merged: dict[str, Status] = {}
    for update in updates:
        so_far = merged.get(update.name)
        folded = _copy(update) if so_far is None else apply(so_far, update)
        if folded is not None:
            merged[update.name] = _copy(folded)
    return list(merged.values())


def _supersedes_open_failure(current: Status, update: Status) -> bool:
    """A failure its flow left open (an entity's failed attempt: the user may try
    again) is superseded by the outcome of the next attempt at the same stage."""
    return (
        current.state in FAILURE_STATES
        and not current.terminal
        and update.stage == current.stage
        and update.state in SUCCESS_STATES
    )


def previous_state(current: Status | None) -> State.ValueType:
    return current.state if current is not None else State.STATE_UNSPECIFIED


def _is_newer(update: Status, current: Status) -> bool:
    if not update.HasField("occurred_at"):
        return False
    if not current.HasField("occurred_at"):
        return True
    return update.occurred_at.ToNanoseconds() > current.occurred_at.ToNanoseconds()


def _replaced(current: Status, update: Status) -> Status:
    """A higher-ranked or newer update replaces everything but what it does not know:
    attributes accumulate, and provider time never goes backwards."""
    new = _copy(update)
    merged = dict(current.attributes)
    merged.update(update.attributes)
    new.attributes.clear()
    new.attributes.update(merged)
    if not new.HasField("occurred_at") and current.HasField("occurred_at"):
        new.occurred_at.CopyFrom(current.occurred_at)
    return new


def _enriched(current: Status, update: Status) -> Status:
    """An equal-ranked update that is not newer may only add information (rule 2):
    error details, more progress, new attributes, readiness. It never lowers anything."""
    new = _copy(current)
    if update.HasField("error") and not current.HasField("error"):
        new.error.CopyFrom(update.error)
    if update.HasField("progress") and (
        update.progress.done > current.progress.done
        or (update.progress.total and not current.progress.total)
    ):
        new.progress.done = max(update.progress.done, current.progress.done)
        new.progress.total = update.progress.total or current.progress.total
    for key, value in update.attributes.items():
        new.attributes.setdefault(key, value)
    if update.ready_to_fetch:
        new.ready_to_fetch = True
    if not new.provider_state:
        new.provider_state = update.provider_state
    return new


def _copy(status: Status) -> Status:
    new = Status()
    new.CopyFrom(status)
    for field in _GATEWAY_FIELDS:
        new.ClearField(field)  # type: ignore[arg-type]
    return new


def _same_content(a: Status, b: Status) -> bool:
    return _copy(a) == _copy(b)
