"""The explicit registry of provider adapters: one line per provider type.

Adding a provider is one package under ``statusgate.providers`` and one entry here (plus
its config model in ``statusgate.config``); nothing is discovered by scanning folders.
"""

from __future__ import annotations

from statusgate.providers.banqware import BanqwareAdapter
from statusgate.providers.base import WebhookAdapter
from statusgate.providers.finbox import FinboxAdapter
from statusgate.providers.setu import SetuAdapter

ADAPTERS: dict[str, WebhookAdapter] = {
    "finbox": FinboxAdapter(),
    "banqware": BanqwareAdapter(),
    "setu": SetuAdapter(),
}


def adapter_for(provider: str) -> WebhookAdapter:
    """The adapter of a provider type (the ``provider`` key of a source's config)."""
    return ADAPTERS[provider]
