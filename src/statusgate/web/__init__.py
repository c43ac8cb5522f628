"""The aiohttp front door: webhooks in, health and metrics out."""
