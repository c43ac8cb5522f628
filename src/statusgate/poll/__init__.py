"""Polling: provider API calls (retries, circuit breaker), single flight, the poller
behind PollStatuses and WaitStatus, and the reconciler that heals lost webhooks."""
