"""Fake provider APIs for tests and benchmarks: real aiohttp servers on port 0."""
