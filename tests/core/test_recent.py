"""Counts over the last hour: exact to the minute, old minutes forgotten."""

from __future__ import annotations

from statusgate.core.recent import RecentCounts


def test_counts_cover_the_last_hour_only() -> None:
    now = [0.0]
    counts = RecentCounts(clock=lambda: now[0])
    counts.add("finbox")
    counts.add("finbox", 2)
    now[0] = 30 * 60.0
    counts.add("finbox")
    counts.add("setu")
    assert (counts.count("finbox"), counts.count("setu"), counts.count("other")) == (4, 1, 0)
    now[0] = 60 * 60.0  # the first minute has left the window
    assert counts.count("finbox") == 1
    now[0] = 2 * 60 * 60.0
    assert counts.count("finbox") == 0
    counts.add("finbox")
    assert counts.count("finbox") == 1
