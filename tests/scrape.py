"""A gateway's /metrics, parsed with prometheus-client's own parser."""

from __future__ import annotations

from dataclasses import dataclass

import aiohttp
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample


@dataclass(frozen=True)
class Scrape:
    samples: list[Sample]
    text: str

    def value(self, name: str, **labels: str) -> float:
        """The one sample ``name`` whose labels are exactly ``labels`` (plus ``le``
        for buckets when given); KeyError when there is none."""
        found = [s.value for s in self.samples if s.name == name and s.labels == labels]
        if len(found) != 1:
            raise KeyError(f"{name}{labels}: {len(found)} samples")
        return found[0]

    def get(self, name: str, **labels: str) -> float | None:
        try:
            return self.value(name, **labels)
        except KeyError:
            return None

    def label_values(self, name: str, label: str) -> set[str]:
        """Every value ``label`` takes in the samples of ``name``."""
        return {s.labels[label] for s in self.samples if s.name == name and label in s.labels}

    def names(self) -> set[str]:
        return {s.name for s in self.samples}

    @classmethod
    def parse(cls, text: str) -> Scrape:
        samples = [s for family in text_string_to_metric_families(text) for s in family.samples]
        return cls(samples, text)


async def scrape(http: aiohttp.ClientSession, url: str) -> Scrape:
    async with http.get(url) as response:
        assert response.status == 200
        return Scrape.parse(await response.text())
