"""ReBIT / Sahamati: the Account Aggregator standard (API 2.0.0) every Indian AA speaks.

One source is one AA. It posts consent and FI notifications to the source's URL plus
``/Consent/Notification`` and ``/FI/Notification``, signed with a detached JWS (the
source's ``jws`` webhook authentication holds the AA's public keys); the gateway
answers in the standard's shapes, signed with the FIU's key (``[sources.<id>.signing]``),
and polls consents through the AA's ``POST /Consent/handle``.
"""

from pathlib import Path

from statusgate.providers.rebit.adapter import RebitAdapter
from statusgate.providers.rebit.answers import acknowledgement
from statusgate.providers.rebit.client import rebit_poller
from statusgate.providers.rebit.config import RebitApi, RebitSigning, RebitSource
from statusgate.providers.rebit.scenarios import SCENARIOS
from statusgate.providers.rebit.screen import idempotency_key, screen
from statusgate.providers.spec import ManualRegistration, ProviderSpec

SPEC = ProviderSpec(
    name="rebit",
    label="ReBIT AA",
    source_model=RebitSource,
    adapter=RebitAdapter(),
    poller=rebit_poller,
    registration=ManualRegistration(
        "A ReBIT AA has no API to register a notification URL: give {url} as your FIU's "
        "base URL to the AA at onboarding (or in Sahamati's Central Registry); the AA "
        "posts to it plus /Consent/Notification and /FI/Notification."
    ),
    fixtures=Path(__file__).parent / "fixtures",
    default_source="rebit",
    webhook_paths=frozenset({"Consent/Notification", "FI/Notification"}),
    acknowledgement=acknowledgement,
    screen=screen,
    idempotency_key=idempotency_key,
    scenarios=SCENARIOS,
)

__all__ = ["SPEC", "RebitAdapter", "RebitApi", "RebitSigning", "RebitSource"]
