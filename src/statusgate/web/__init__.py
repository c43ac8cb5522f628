"""The aiohttp front door: webhooks in, health out (metrics are on the API listener)."""
