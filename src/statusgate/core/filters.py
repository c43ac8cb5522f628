"""StatusFilter semantics, shared by ListStatuses (in the store's SQL) and Watch (here)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from statusgate.core.names import InvalidNameError, name_has_prefix, parse_name
from statusgate.v1.status_pb2 import Kind, State, Status, StatusFilter


@dataclass(frozen=True, slots=True)
class StatusQuery:
    """What ListStatuses and the reconciler select; every set field must match."""

    sources: Sequence[str] = ()
    names: Sequence[str] = ()
    # Whole-segment prefixes (see core.names.name_has_prefix).
    name_prefixes: Sequence[str] = ()
    kinds: Sequence[Kind.ValueType] = ()
    states: Sequence[State.ValueType] = ()
    terminal: bool | None = None
    # Only statuses last changed before this time (the reconciler's "quiet" subjects).
    updated_before: datetime | None = None


def validate_filter(status_filter: StatusFilter) -> None:
    """Raise InvalidNameError for names or prefixes that can never match anything valid."""
    for name in status_filter.names:
        parse_name(name)
    for prefix in status_filter.name_prefixes:
        if not prefix.startswith("sources/"):
            raise InvalidNameError(f"name prefix {prefix!r} must start with 'sources/'")


def matches(status_filter: StatusFilter, status: Status) -> bool:
    """Every set field must match; within a repeated field, any value."""
    if status_filter.sources and status.source not in status_filter.sources:
        return False
    if status_filter.names and status.name not in status_filter.names:
        return False
    if status_filter.name_prefixes and not any(
        name_has_prefix(status.name, prefix) for prefix in status_filter.name_prefixes
    ):
        return False
    if status_filter.kinds and status.kind not in status_filter.kinds:
        return False
    if status_filter.states and status.state not in status_filter.states:
        return False
    return not (status_filter.terminal_only and not status.terminal)


def to_query(status_filter: StatusFilter, *, within: str = "") -> StatusQuery | None:
    """The store query for a filter, narrowed to the subtree of the subject ``within``
    when given; None when the two cannot both match anything."""
    prefixes = list(status_filter.name_prefixes)
    if within:
        narrowed = set()
        for prefix in prefixes:
            if name_has_prefix(prefix, within):
                narrowed.add(prefix)  # already inside the subtree
            elif name_has_prefix(within, prefix):
                narrowed.add(within)  # covers the whole subtree
        if prefixes and not narrowed:
            return None
        prefixes = sorted(narrowed) or [within]
    return StatusQuery(
        sources=list(status_filter.sources),
        names=list(status_filter.names),
        name_prefixes=prefixes,
        kinds=list(status_filter.kinds),
        states=list(status_filter.states),
        terminal=True if status_filter.terminal_only else None,
    )
