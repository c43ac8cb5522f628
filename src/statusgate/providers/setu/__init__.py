"""Setu Account Aggregator: consent and data-session notifications, and its FIU API."""

from pathlib import Path

from statusgate.providers.setu.adapter import SetuAdapter
from statusgate.providers.setu.client import setu_poller
from statusgate.providers.setu.config import SetuApi, SetuSource
from statusgate.providers.setu.scenarios import SCENARIOS
from statusgate.providers.spec import ManualRegistration, ProviderSpec

SPEC = ProviderSpec(
    name="setu",
    label="Setu",
    source_model=SetuSource,
    adapter=SetuAdapter(),
    poller=setu_poller,
    registration=ManualRegistration(
        "Setu has no API to register a webhook: set the notification URL of your FIU "
        "product instance to {url} in Setu's dashboard (Bridge)."
    ),
    fixtures=Path(__file__).parent / "fixtures",
    scenarios=SCENARIOS,
    default_source="setu",
    account_number_fields=frozenset({"maskedAccNumber"}),
)

__all__ = ["SPEC", "SetuAdapter", "SetuApi", "SetuSource"]
