"""ReBIT AA flows for ``statusgate simulate``, made of the golden fixtures, each message
with a new ``txnid`` and a ``timestamp`` of now (the screen's window is 15 minutes, and
a ``txnid`` seen before with other content is a conflict)."""

from __future__ import annotations

import uuid
from typing import Any

from statusgate.providers.rebit.answers import now_timestamp
from statusgate.providers.scenarios import Scenario, ScenarioStep


def _fresh_message(payload: dict[str, Any]) -> dict[str, Any]:
    return {**payload, "txnid": str(uuid.uuid4()), "timestamp": now_timestamp()}


SCENARIOS = (
    Scenario(
        "consent-active",
        "a consent pending, then approved by the user: ACTIVE, with its consentId",
        (ScenarioStep("consent_pending"), ScenarioStep("consent_active")),
        refresh=_fresh_message,
    ),
    Scenario(
        "data-session-completed",
        "an FI data session active with accounts pending, then COMPLETED with accounts "
        "ready to fetch",
        (ScenarioStep("fi_active_pending"), ScenarioStep("fi_completed_ready")),
        refresh=_fresh_message,
    ),
    Scenario(
        "consent-rejected",
        "a consent pending, then rejected by the user: REJECTED",
        (ScenarioStep("consent_pending"), ScenarioStep("consent_rejected")),
        refresh=_fresh_message,
    ),
    Scenario(
        "data-session-timeout",
        "an FI data session active, then FAILED: an FIP timed out",
        (ScenarioStep("fi_active_pending"), ScenarioStep("fi_failed_timeout")),
        refresh=_fresh_message,
    ),
)
