"""Setu Account Aggregator flows for ``statusgate simulate``, made of the golden
fixtures."""

from statusgate.providers.scenarios import Scenario, ScenarioStep

SCENARIOS = (
    Scenario(
        "consent-active",
        "a consent pending, then approved by the user: ACTIVE",
        (ScenarioStep("consent_pending"), ScenarioStep("consent_active_v2")),
    ),
    Scenario(
        "data-session-completed",
        "an active consent, then its FI data session: pending, active, COMPLETED with "
        "one account ready to fetch",
        (
            ScenarioStep("consent_active_v2"),
            ScenarioStep("session_pending"),
            ScenarioStep("session_active"),
            ScenarioStep("session_completed"),
        ),
    ),
    Scenario(
        "consent-rejected",
        "a consent pending, then rejected by the user: REJECTED, USER_REJECTED",
        (ScenarioStep("consent_pending"), ScenarioStep("consent_error_user_rejected")),
    ),
)
