"""banqware flows for ``statusgate simulate``, made of the golden fixtures."""

from statusgate.providers.scenarios import Scenario, ScenarioStep

SCENARIOS = (
    Scenario(
        "session-to-transactions",
        "a session stage by stage: authentication, accounts (two found), transactions "
        "finished (the default final stage: ready to fetch)",
        (
            ScenarioStep("session_authentication_initiated"),
            ScenarioStep("session_authentication_in_progress"),
            ScenarioStep("session_accounts_in_progress"),
            ScenarioStep("session_accounts_finished_details_list"),
            ScenarioStep("session_transactions_in_progress"),
            ScenarioStep("session_transactions_finished"),
        ),
    ),
    Scenario(
        "payment-completed",
        "a payment created, in progress, then completed",
        (
            ScenarioStep("payment_created_name"),
            ScenarioStep("payment_in_progress_number"),
            ScenarioStep("payment_completed_name"),
        ),
    ),
    Scenario(
        "authorization-failed",
        "a session whose user failed the bank's authorization: FAILED, AUTHORIZATION_FAILED",
        (
            ScenarioStep("session_authentication_initiated"),
            ScenarioStep("session_authentication_authorization_failed"),
        ),
    ),
)
