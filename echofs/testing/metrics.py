"""Reading a role's ``GET /metrics`` in tests: parsed with prometheus-client's
own parser, so a malformed exposition fails the test."""

from __future__ import annotations

from dataclasses import dataclass

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

# What each family type adds to its name in the series it exposes.
_SERIES_SUFFIXES = {
    "counter": ("_total",),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count"),
    "summary": ("", "_sum", "_count"),
    "info": ("_info",),
    "stateset": ("",),
    "gaugehistogram": ("_bucket", "_gsum", "_gcount"),
    "unknown": ("",),
}


@dataclass(frozen=True)
class Scrape:
    text: str
    # family name → type, as declared by ``# TYPE`` (also for families with no series yet)
    types: dict[str, str]
    # (series name, labels) → value
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float]

    @classmethod
    def parse(cls, text: str) -> Scrape:
        types: dict[str, str] = {}
        samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
        for family in text_string_to_metric_families(text):
            types[family.name] = family.type
            for sample in family.samples:
                samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
        return cls(text, types, samples)

    def series_names(self) -> set[str]:
        """Every series name a PromQL query could use against this node."""
        return {family + suffix for family, kind in self.types.items()
                for suffix in _SERIES_SUFFIXES[kind]}

    def value(self, name: str, **labels: str) -> float | None:
        return self.samples.get((name, frozenset(labels.items())))

    def total(self, name: str, **labels: str) -> float:
        """Sum of every series of ``name`` whose labels include ``labels``."""
        wanted = set(labels.items())
        return sum(v for (n, ls), v in self.samples.items() if n == name and wanted <= ls)

    def label_values(self, name: str, label: str) -> set[str]:
        return {dict(ls)[label] for (n, ls), _ in self.samples.items()
                if n == name and label in dict(ls)}


async def scrape(url: str) -> Scrape:
    """GET ``url`` (a role's ``/metrics``) and parse it."""
    async with aiohttp.ClientSession() as session, session.get(url) as resp:
        assert resp.status == 200, await resp.text()
        assert resp.content_type == "text/plain", resp.content_type
        return Scrape.parse(await resp.text())
