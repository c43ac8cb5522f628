"""Helpers every adapter uses to build canonical statuses from provider values."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from statusgate.core.names import ResourceName
from statusgate.core.states import is_terminal
from statusgate.v1.status_pb2 import ErrorReason, Provider, Stage, State, Status, StatusError


def build_status(
    name: ResourceName,
    provider: Provider.ValueType,
    state: State.ValueType,
    stage: Stage.ValueType = Stage.STAGE_UNSPECIFIED,
    *,
    final_stage: Stage.ValueType | None,
    provider_state: str = "",
    error: StatusError | None = None,
    progress: tuple[int, int] | None = None,
    ready_to_fetch: bool = False,
    occurred_at: datetime | None = None,
    attributes: Mapping[str, str | None] | None = None,
) -> Status:
    """One canonical update. ``final_stage`` is the stage at which success ends the
    subject's flow (None: success never does); empty attribute values are dropped."""
    status = Status(
        name=str(name),  # ids are valid UTF-8: core.names refuses lone surrogates
        source=name.source,
        provider=provider,
        kind=name.kind,
        parent=name.parent,
        state=state,
        stage=stage,
        terminal=is_terminal(name.kind, state, stage, final_stage),
        provider_state=utf8(provider_state),
        ready_to_fetch=ready_to_fetch,
    )
    if error is not None:
        status.error.CopyFrom(error)
        status.error.message = utf8(error.message)
        status.error.provider_code = utf8(error.provider_code)
    if progress is not None:
        status.progress.done, status.progress.total = progress
    if occurred_at is not None:
        status.occurred_at.FromDatetime(occurred_at)
    for key, value in (attributes or {}).items():
        if value:
            status.attributes[utf8(key)] = utf8(value)
    return status


def utf8(text: str) -> str:
    """JSON may carry lone surrogates ("\\ud800"), which protobuf strings refuse; a
    provider's free text must never lose the status it describes, so replace them."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")
    return text


def status_error(
    reason: ErrorReason.ValueType,
    provider_code: str = "",
    message: str = "",
    *,
    retryable: bool = False,
) -> StatusError:
    return StatusError(
        reason=reason, provider_code=provider_code, message=message, retryable=retryable
    )


def parse_provider_time(value: str | None) -> datetime | None:
    """Provider timestamps in any of the documented shapes, as aware UTC datetimes.

    ``2025-11-13 06:48:44`` (no zone: UTC), ``2025-11-13 06:48:43.660968+00:00``,
    ``2025-11-13T06:48:43.660968Z``, ``2018-08-14T09:00:55.88`` (short fraction).
    Unparseable values give None: a bad timestamp must not lose the status.
    """
    if not value or not isinstance(value, str):
        return None
    text = value.strip().replace("Z", "+00:00").replace("z", "+00:00")
    try:
        parsed = datetime.fromisoformat(text)
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError):  # an offset can push year 1 or 9999 out of range
        return None


def mask_account_number(number: str | None) -> str | None:
    """Keep the last four characters: full account numbers never leave an adapter."""
    if not number:
        return None
    if len(number) <= 4:
        return number
    return "X" * (len(number) - 4) + number[-4:]
