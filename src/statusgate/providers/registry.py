"""The explicit registry of provider adapters: one line per provider type.

Adding a provider is one package under ``statusgate.providers`` and one entry here (plus
its config model in ``statusgate.config``); nothing is discovered by scanning folders.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping

from statusgate.config import SourceConfig
from statusgate.poll.http import Sleep
from statusgate.providers.banqware import BanqwareAdapter
from statusgate.providers.banqware.client import banqware_poller
from statusgate.providers.base import WebhookAdapter
from statusgate.providers.finbox import FinboxAdapter
from statusgate.providers.finbox.client import finbox_poller
from statusgate.providers.polling import ProviderPoller
from statusgate.providers.setu import SetuAdapter
from statusgate.providers.setu.client import setu_poller

ADAPTERS: dict[str, WebhookAdapter] = {
    "finbox": FinboxAdapter(),
    "banqware": BanqwareAdapter(),
    "setu": SetuAdapter(),
}

# Provider type -> the factory of a source's poller (its API client included).
POLLERS: dict[str, Callable[..., ProviderPoller]] = {
    "finbox": finbox_poller,
    "banqware": banqware_poller,
    "setu": setu_poller,
}


def adapter_for(provider: str) -> WebhookAdapter:
    """The adapter of a provider type (the ``provider`` key of a source's config)."""
    return ADAPTERS[provider]


def build_pollers(
    sources: Mapping[str, SourceConfig], *, sleep: Sleep = asyncio.sleep
) -> dict[str, ProviderPoller]:
    """One poller per source. Reads the API secrets and TLS files now: a named variable
    that is unset, or an unusable certificate, raises ValueError (start-up fails)."""
    return {
        source_id: POLLERS[source.provider](source, sleep=sleep)
        for source_id, source in sources.items()
    }
