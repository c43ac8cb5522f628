"""banqware PSD2 API Hub: session, first-transactions-page and PIS payment callbacks."""

from pathlib import Path

from statusgate.providers.banqware.adapter import BanqwareAdapter
from statusgate.providers.banqware.client import banqware_poller
from statusgate.providers.banqware.config import BanqwareApi, BanqwareSource, BanqwareStage
from statusgate.providers.banqware.scenarios import SCENARIOS
from statusgate.providers.spec import ManualRegistration, ProviderSpec

SPEC = ProviderSpec(
    name="banqware",
    label="banqware",
    source_model=BanqwareSource,
    adapter=BanqwareAdapter(),
    poller=banqware_poller,
    registration=ManualRegistration(
        "banqware has no API to register callbacks: enter the address "
        "{url} in banqware's developer portal."
    ),
    fixtures=Path(__file__).parent / "fixtures",
    scenarios=SCENARIOS,
    default_source="banqware",
    # Accounts without an accountId are named by their account number (IBAN or local
    # number, compact): the logs mask every account id of a banqware session.
    account_number_segments=frozenset({("sessions", "accounts")}),
    account_number_fields=frozenset({"accountNumber"}),
)

__all__ = ["SPEC", "BanqwareAdapter", "BanqwareApi", "BanqwareSource", "BanqwareStage"]
