"""The poll tests' fake providers, for the metrics of polls."""

from tests.poll.conftest import fakes

__all__ = ["fakes"]
