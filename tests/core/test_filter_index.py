"""Compiled and indexed Watch filters select exactly what ``core.filters.matches`` does."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from statusgate.core.filter_index import FilterIndex, segment_prefixes
from statusgate.core.filters import PreparedFilter, matches
from statusgate.core.names import name_has_prefix
from statusgate.v1.status_pb2 import Kind, State, Status, StatusFilter

SOURCES = ["finbox", "setu", "banqware"]
NAMES = [
    f"sources/{source}/sessions/{session}{child}"
    for source in SOURCES
    for session in ("1", "10", "2")
    for child in ("", "/accounts/a", "/accounts/a/statements/s")
]
PREFIXES = [
    "sources/finbox",
    "sources/finbox/",
    "sources/finbox/sessions/1",
    "sources/finbox/sessions/1/",
    "sources/finbox/sessions/1/accounts",
    "sources/setu/sessions/10/accounts/a//",
    "sources/fin",
    "sources/finbox/sessions/1/accounts/a/statements/s",
]
KINDS = [Kind.KIND_SESSION, Kind.KIND_ACCOUNT, Kind.KIND_STATEMENT]
STATES = [State.STATE_PENDING, State.STATE_EXPIRED, State.STATE_FAILED]


def status_of(name: str, state: State.ValueType, terminal: bool) -> Status:
    kind = (
        Kind.KIND_STATEMENT
        if "statements" in name
        else (Kind.KIND_ACCOUNT if "accounts" in name else Kind.KIND_SESSION)
    )
    return Status(name=name, source=name.split("/")[1], kind=kind, state=state, terminal=terminal)


statuses = st.builds(status_of, st.sampled_from(NAMES), st.sampled_from(STATES), st.booleans())
filters = st.builds(
    lambda sources, names, prefixes, kinds, states, terminal: StatusFilter(
        sources=sources,
        names=names,
        name_prefixes=prefixes,
        kinds=kinds,
        states=states,
        terminal_only=terminal,
    ),
    st.lists(st.sampled_from(SOURCES), max_size=2),
    st.lists(st.sampled_from(NAMES), max_size=3),
    st.lists(st.sampled_from(PREFIXES), max_size=3),
    st.lists(st.sampled_from(KINDS), max_size=2),
    st.lists(st.sampled_from(STATES), max_size=2),
    st.booleans(),
)
visibility = st.one_of(st.none(), st.sets(st.sampled_from(SOURCES), max_size=2))


@settings(max_examples=400, deadline=None)
@given(filters, visibility, statuses)
def test_a_prepared_filter_narrowed_to_visible_sources_matches_like_the_filter(
    status_filter: StatusFilter, visible: set[str] | None, status: Status
) -> None:
    # The reference: the filter's fields one by one, as the store's SQL reads them.
    reference = (
        (not status_filter.sources or status.source in status_filter.sources)
        and (not status_filter.names or status.name in status_filter.names)
        and (
            not status_filter.name_prefixes
            or any(name_has_prefix(status.name, p) for p in status_filter.name_prefixes)
        )
        and (not status_filter.kinds or status.kind in status_filter.kinds)
        and (not status_filter.states or status.state in status_filter.states)
        and (not status_filter.terminal_only or status.terminal)
    )
    assert matches(status_filter, status) is reference
    expected = reference and (visible is None or status.source in visible)
    assert PreparedFilter(status_filter, visible=visible).matches(status) is expected


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(filters, visibility), max_size=12), st.lists(statuses, max_size=8))
def test_the_index_finds_exactly_the_matching_filters(
    entries: list[tuple[StatusFilter, set[str] | None]], events: list[Status]
) -> None:
    index: FilterIndex[int] = FilterIndex()
    selectors = {}
    for key, (status_filter, visible) in enumerate(entries):
        selectors[key] = PreparedFilter(status_filter, visible=visible)
        index.add(key, selectors[key])
    # Removing and adding again leaves nothing behind.
    for key in list(selectors)[::2]:
        index.remove(key)
        del selectors[key]
    for status in events:
        assert index.match(status) == {k for k, s in selectors.items() if s.matches(status)}
    for key in list(selectors):
        index.remove(key)
    assert len(index) == 0
    assert all(not table for table in index._tables.values())


def test_segment_prefixes_are_whole_segments() -> None:
    assert segment_prefixes("sources/a/sessions/1") == [
        "sources",
        "sources/a",
        "sources/a/sessions",
    ]
    assert segment_prefixes("sources") == []


def test_an_event_meets_only_the_streams_filed_under_it() -> None:
    """10,000 streams each watching its own session: an event is checked against the
    one stream of its session, not against the others."""
    index: FilterIndex[int] = FilterIndex()
    checked: list[int] = []

    class Counting(PreparedFilter):
        __slots__ = ()

        def matches(self, status: Status) -> bool:
            checked.append(1)
            return PreparedFilter.matches(self, status)

    for i in range(10_000):
        index.add(i, Counting(StatusFilter(names=[f"sources/finbox/sessions/s{i}"])))
    index.add(-1, Counting(StatusFilter(name_prefixes=["sources/setu"])))
    found = index.match(status_of("sources/finbox/sessions/s42", State.STATE_EXPIRED, True))
    assert found == {42}
    assert len(checked) == 1
