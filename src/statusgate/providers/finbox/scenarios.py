"""FinBox flows for ``statusgate simulate``, made of the golden fixtures."""

from statusgate.providers.scenarios import Scenario, ScenarioStep

_SESSION = "136b1aa3-4610-4d0a-89f3-03078a2fce92"
_AXIS = "d35b9df1-871d-43d1-b6c1-67ded2c2e8e5"
_HDFC = "7f3e0c55-9b0e-4a8e-8d4f-0b5f1e2a9c77"

SCENARIOS = (
    Scenario(
        "upload-then-enrichment",
        "a session's upload webhook (two accounts, one statement failed) and then its "
        "enrichment: every account completed, insights ready to fetch",
        (
            ScenarioStep("upload_completed"),
            ScenarioStep(
                "enrichment_all_completed",
                same_as={"sess-enrich-1": _SESSION, "acc-1": _AXIS, "acc-2": _HDFC},
            ),
        ),
    ),
    Scenario(
        "expiry",
        "a session that expired with one account partly uploaded",
        (ScenarioStep("session_expired"),),
    ),
    Scenario(
        "enrichment-failed",
        "an upload, then an enrichment in which no account completed (balance mismatch, "
        "no account number, an unknown code): the session FAILED",
        (
            ScenarioStep("upload_completed"),
            ScenarioStep(
                "enrichment_none_completed",
                same_as={"sess-enrich-3": _SESSION, "acc-bal": _AXIS, "acc-null": _HDFC},
            ),
        ),
    ),
)
