"""statusgate: one canonical, durable, streamable status for every bank-data provider."""

__version__ = "0.1.0"
