"""What every source has, whatever its provider: webhook auth, rate limit, provider
API settings and reconciler schedule. Provider packages add their own fields."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field

from statusgate.config.auth import AuthConfig, NoAuth
from statusgate.config.fields import (
    HttpUrl,
    StrictModel,
)
from statusgate.core.names import is_valid_source_id

# --- sources --------------------------------------------------------------------------


class PollSchedule(StrictModel):
    """When the reconciler asks the provider about quiet, non-terminal subjects."""

    enabled: bool = True
    # A subject unchanged for this long is polled.
    quiet_seconds: float = Field(default=60.0, gt=0)
    # Backoff between polls of one subject: doubles up to max_interval_seconds.
    interval_seconds: float = Field(default=30.0, gt=0)
    max_interval_seconds: float = Field(default=900.0, gt=0)
    # Subjects older than this are left alone: the provider has forgotten them.
    max_age_seconds: float = Field(default=7 * 24 * 3600.0, gt=0)


class ApiConfig(StrictModel):
    """Where and how to call the provider's status API (used by polling)."""

    base_url: HttpUrl | None = None
    # Per upstream HTTP call; a caller's shorter gRPC deadline wins.
    timeout_seconds: float = Field(default=10.0, gt=0)
    # Retries of a call that got a 429, a 5xx, a timeout or a dropped connection, waiting
    # retry_backoff_seconds * 2**n (full jitter), or at least what Retry-After asks.
    retries: int = Field(default=3, ge=0, le=10)
    retry_backoff_seconds: float = Field(default=0.25, gt=0)
    # The circuit breaker of the source: after this many consecutive failed calls, polls
    # fail fast for breaker_cooldown_seconds, then one trial call decides.
    breaker_failures: int = Field(default=5, ge=1)
    breaker_cooldown_seconds: float = Field(default=30.0, gt=0)
    # Upstream budget of the polls made on behalf of WaitStatus calls, in provider calls
    # per second for the whole source (whoever waits); 0: waits never poll, they end on
    # webhooks and the reconciler's polls only. PollStatuses and the reconciler have
    # their own bounds.
    wait_calls_per_second: float = Field(default=5.0, ge=0)


class RateLimit(StrictModel):
    """A token bucket per source: a flooding provider gets 429 + Retry-After, alone."""

    per_second: float = Field(gt=0)
    burst: int = Field(default=0, ge=0)  # 0: one second's worth


class SourceConfig(StrictModel):
    """What every source has. Each provider package subclasses it with
    ``provider: Literal["<name>"]`` and its own ``api`` model; the config union of those
    subclasses is discriminated on ``provider``."""

    provider: str
    # Filled from the key under [sources]; also the webhook path /webhooks/{id}.
    id: str = ""
    auth: AuthConfig = Field(default_factory=NoAuth)
    poll: PollSchedule = Field(default_factory=PollSchedule)
    # Unlimited when unset.
    rate_limit: RateLimit | None = None
    api: ApiConfig = Field(default_factory=ApiConfig)


def _source_id(value: str) -> str:
    if not is_valid_source_id(value):
        raise ValueError(
            "source id: lower-case letters, digits and '-' only, starting and ending with "
            "a letter or digit, at most 63 characters"
        )
    return value


SourceId = Annotated[str, AfterValidator(_source_id)]
