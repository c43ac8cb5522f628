"""StatusFilter semantics, shared by ListStatuses (in the store's SQL) and Watch (here;
``core.filter_index`` files Watch streams by their prepared filters).

A filter is bounded (``FilterLimits``: names and prefixes per filter) and validated
once, when the request arrives. For Watch it is then prepared once per stream
(``PreparedFilter``): names, sources, kinds and states become sets, and a name matches
the prefixes when one of its own whole-segment prefixes is in the prefix set, so the cost
of matching an event does not grow with the size of the filter.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from statusgate.core.names import (
    MAX_NAME_LENGTH,
    InvalidNameError,
    name_has_prefix,
    parse_name,
    quoted,
)
from statusgate.v1.status_pb2 import Kind, State, Status, StatusFilter

# Defaults of the per-filter bounds (``[grpc_limits]``). Prefixes become one SQL
# alternative each, and SQLite refuses an expression deeper than 1,000, so they are
# capped well below that.
DEFAULT_MAX_FILTER_NAMES = 1_000
DEFAULT_MAX_FILTER_PREFIXES = 100
MAX_FILTER_PREFIXES = 900
MAX_FILTER_NAMES = 30_000


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


@dataclass(frozen=True, slots=True)
class FilterLimits:
    """How large one filter may be; larger ones are the client's INVALID_ARGUMENT."""

    max_names: int = DEFAULT_MAX_FILTER_NAMES
    max_prefixes: int = DEFAULT_MAX_FILTER_PREFIXES


DEFAULT_LIMITS = FilterLimits()


class FilterTooLargeError(ValueError):
    """A filter with more names or prefixes than ``FilterLimits`` allows."""


def validate_filter(status_filter: StatusFilter, limits: FilterLimits = DEFAULT_LIMITS) -> None:
    """Raise FilterTooLargeError for a filter over ``limits`` (checked first, so an
    oversized filter costs nothing more), InvalidNameError for names or prefixes that can
    never match anything valid."""
    if len(status_filter.names) > limits.max_names:
        raise FilterTooLargeError(
            f"the filter has {len(status_filter.names)} names; at most {limits.max_names}"
        )
    if len(status_filter.name_prefixes) > limits.max_prefixes:
        raise FilterTooLargeError(
            f"the filter has {len(status_filter.name_prefixes)} name prefixes; "
            f"at most {limits.max_prefixes}"
        )
    for name in status_filter.names:
        parse_name(name)
    for prefix in status_filter.name_prefixes:
        if len(prefix) > MAX_NAME_LENGTH:
            raise InvalidNameError(
                f"name prefix {quoted(prefix)} is longer than {MAX_NAME_LENGTH} characters"
            )
        if not prefix.startswith("sources/"):
            raise InvalidNameError(f"name prefix {quoted(prefix)} must start with 'sources/'")


def filter_size(status_filter: StatusFilter) -> int:
    """Names and prefixes of a filter: what a client's bound over its streams counts."""
    return len(status_filter.names) + len(status_filter.name_prefixes)


class PreparedFilter:
    """A validated StatusFilter made ready to match many events: built once per stream,
    narrowed to the sources a caller may see (``visible``; None: every source).

    Every set field must match; within a repeated field, any value. Matching costs a few
    set look-ups per segment of the event's name, whatever the size of the filter. The
    sets are public (read-only) so that ``core.filter_index`` can file a stream under
    them.
    """

    __slots__ = (
        "descendants_of",
        "exact",
        "kinds",
        "names",
        "sources",
        "states",
        "terminal_only",
    )

    def __init__(
        self, status_filter: StatusFilter, *, visible: Iterable[str] | None = None
    ) -> None:
        # None: any source; empty: none (the filter asks only for sources it may not see).
        sources = frozenset(status_filter.sources) if status_filter.sources else None
        if visible is not None:
            allowed = frozenset(visible)
            sources = allowed if sources is None else sources & allowed
        self.sources: frozenset[str] | None = sources
        self.names = frozenset(status_filter.names)
        self.kinds = frozenset(status_filter.kinds)
        self.states = frozenset(status_filter.states)
        self.terminal_only = status_filter.terminal_only
        prefixes = list(status_filter.name_prefixes)
        # name_has_prefix: a name matches a prefix it equals, or one it continues past a
        # "/" (a trailing "/" on the prefix selects the descendants only).
        self.exact = frozenset(prefixes)
        self.descendants_of = frozenset(p.rstrip("/") for p in prefixes)

    @property
    def everything(self) -> bool:
        """Whether every status matches (the filter is empty, every source visible)."""
        return not (
            self.sources is not None
            or self.names
            or self.kinds
            or self.states
            or self.exact
            or self.terminal_only
        )

    @property
    def nothing(self) -> bool:
        """Whether no status can match: none of the sources asked for is visible."""
        return self.sources is not None and not self.sources

    def matches(self, status: Status) -> bool:
        if self.sources is not None and status.source not in self.sources:
            return False
        if self.names and status.name not in self.names:
            return False
        if self.exact and not self._matches_prefix(status.name):
            return False
        if self.kinds and status.kind not in self.kinds:
            return False
        if self.states and status.state not in self.states:
            return False
        return not (self.terminal_only and not status.terminal)

    def _matches_prefix(self, name: str) -> bool:
        if name in self.exact:
            return True
        # The name's own whole-segment prefixes, shortest first: a handful per name.
        cut = name.find("/")
        while cut != -1:
            if name[:cut] in self.descendants_of:
                return True
            cut = name.find("/", cut + 1)
        return False


def matches(status_filter: StatusFilter, status: Status) -> bool:
    """One status against one filter (for a single check; streams use PreparedFilter)."""
    return PreparedFilter(status_filter).matches(status)


def to_query(status_filter: StatusFilter, *, within: str = "") -> StatusQuery | None:
    """The store query for a filter, narrowed to the descendants of the subject
    ``within`` when given (the subject itself is not one of them); None when the two
    cannot both match anything.

    The subject is left out by the query, not after it: the store cuts pages, and a
    page that lost a row afterwards would come back one short."""
    prefixes = list(status_filter.name_prefixes)
    if within:
        # A trailing "/" selects the descendants only (core.names.name_has_prefix).
        below = within.rstrip("/") + "/"
        narrowed = set()
        for prefix in prefixes:
            if name_has_prefix(prefix, below):
                narrowed.add(prefix)  # already inside the subtree
            elif name_has_prefix(within, prefix):
                narrowed.add(below)  # covers the whole subtree
        if prefixes and not narrowed:
            return None
        prefixes = sorted(narrowed) or [below]
    return StatusQuery(
        sources=list(status_filter.sources),
        names=list(status_filter.names),
        name_prefixes=prefixes,
        kinds=list(status_filter.kinds),
        states=list(status_filter.states),
        terminal=True if status_filter.terminal_only else None,
    )
