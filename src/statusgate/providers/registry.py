"""The explicit registry of providers: one line per provider.

Nothing is discovered by scanning folders: a provider exists for the gateway when its
package's ``SPEC`` is listed in ``PROVIDERS``. Everything provider-specific outside
``providers/`` is derived from these specs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator, Mapping
from types import MappingProxyType

from statusgate.config import SourceConfig
from statusgate.providers import banqware, finbox, rebit, setu
from statusgate.providers.polling import Poller
from statusgate.providers.spec import ProviderSpec
from statusgate.upstream.http import Sleep


class Registry:
    """The providers a gateway knows, by their ``provider`` name. It is the settings'
    ``SourceCatalog`` too: the config union is made of its source models."""

    def __init__(self, specs: Iterable[ProviderSpec]) -> None:
        self._specs: dict[str, ProviderSpec] = {}
        for spec in specs:
            if spec.name in self._specs:
                raise ValueError(f"provider {spec.name!r} is registered twice")
            self._specs[spec.name] = spec

    def __iter__(self) -> Iterator[ProviderSpec]:
        return iter(self._specs.values())

    def spec(self, provider: str) -> ProviderSpec:
        return self._specs[provider]

    def for_source(self, source: SourceConfig) -> ProviderSpec:
        return self._specs[source.provider]

    def with_providers(self, *specs: ProviderSpec) -> Registry:
        """This registry plus ``specs`` (tests register throw-away providers so)."""
        return Registry([*self._specs.values(), *specs])

    # --- SourceCatalog -------------------------------------------------------------

    @property
    def provider_names(self) -> tuple[str, ...]:
        return tuple(self._specs)

    @property
    def source_models(self) -> tuple[type[SourceConfig], ...]:
        return tuple(spec.source_model for spec in self._specs.values())

    @property
    def default_sources(self) -> Mapping[str, str]:
        return MappingProxyType(
            {s.default_source: s.name for s in self._specs.values() if s.default_source}
        )

    # --- components ----------------------------------------------------------------

    def build_pollers(
        self, sources: Mapping[str, SourceConfig], *, sleep: Sleep = asyncio.sleep
    ) -> dict[str, Poller]:
        """One poller per source. Reads the API secrets and TLS files now: a named
        variable that is unset, or an unusable certificate, raises ValueError."""
        return {
            source_id: self.for_source(source).poller(source, sleep=sleep)
            for source_id, source in sources.items()
        }


PROVIDERS = Registry(
    [
        finbox.SPEC,
        banqware.SPEC,
        setu.SPEC,
        rebit.SPEC,
    ]
)
