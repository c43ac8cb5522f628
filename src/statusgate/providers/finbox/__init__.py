"""FinBox BankConnect: the session flow and the legacy entity flow in one adapter."""

from pathlib import Path

from statusgate.providers.finbox.adapter import FinboxAdapter
from statusgate.providers.finbox.client import finbox_poller
from statusgate.providers.finbox.config import FinboxApi, FinboxSource
from statusgate.providers.finbox.registration import register_webhook
from statusgate.providers.finbox.scenarios import SCENARIOS
from statusgate.providers.spec import ProviderSpec

SPEC = ProviderSpec(
    name="finbox",
    label="FinBox",
    source_model=FinboxSource,
    adapter=FinboxAdapter(),
    poller=finbox_poller,
    registration=register_webhook,
    fixtures=Path(__file__).parent / "fixtures",
    scenarios=SCENARIOS,
    default_source="finbox",
    # FinBox masks most numbers itself; not always (older payloads).
    account_number_fields=frozenset({"account_number"}),
)

__all__ = ["SPEC", "FinboxAdapter", "FinboxApi", "FinboxSource"]
