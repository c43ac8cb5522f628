"""The fake provider APIs of the poll tests, for the overview's polling panel."""

from tests.poll.conftest import fakes

__all__ = ["fakes"]
