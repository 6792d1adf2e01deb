"""The Grafana dashboard queries only metrics EchoFS really exports, and
shows every family it exports: checked against the ``/metrics`` of a running
node (and, for the controller's families, the definitions its role registers)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from echofs.observability import metrics
from echofs.testing.metrics import scrape

ROOT = Path(__file__).resolve().parents[3]
DASHBOARD = ROOT / "config" / "grafana" / "dashboards" / "echofs.json"
# Metric names in PromQL; every EchoFS name starts with the prefix.
METRIC_NAME = re.compile(r"\becho" r"fs_[a-zA-Z0-9_:]+")
# Series Prometheus itself adds to every target.
PROMETHEUS_SERIES = frozenset({"up"})


def dashboard_exprs() -> list[str]:
    def walk(panels: list[dict]) -> list[str]:
        exprs = []
        for panel in panels:
            exprs += [t["expr"] for t in panel.get("targets", [])]
            exprs += walk(panel.get("panels", []))
        return exprs

    return walk(json.loads(DASHBOARD.read_text())["panels"])


def controller_series() -> set[str]:
    """Series names of the families only a controller process registers."""
    names = set()
    for metric in metrics.CONTROLLER_METRICS:
        for family in metric.describe():
            suffixes = {"counter": ("_total",), "gauge": ("",),
                        "histogram": ("_bucket", "_sum", "_count")}[family.type]
            names |= {family.name + s for s in suffixes}
    return names


async def test_every_metric_in_the_dashboard_is_exported(node):
    exported = await scrape(f"{node.url}/metrics")
    known = exported.series_names() | controller_series()
    used = {name for expr in dashboard_exprs() for name in METRIC_NAME.findall(expr)}
    assert len(used) > 20
    assert used - known == set(), "dashboard queries metrics no role exports"


async def test_every_exported_echofs_family_has_a_panel(node):
    exported = await scrape(f"{node.url}/metrics")
    text = "\n".join(dashboard_exprs())
    families = {name for name in exported.types if name.startswith("echofs_")}
    families |= {f.name for m in metrics.CONTROLLER_METRICS for f in m.describe()}
    missing = {name for name in families if name not in text}
    assert missing == set(), "exported but shown nowhere"


def test_only_prometheus_own_series_appear_besides_echofs_metrics():
    # Strip what is not a metric name (strings, label matchers, grouping
    # clauses, functions, ranges, numbers): what remains must be EchoFS's or
    # Prometheus's own.
    functions = {"sum", "max", "min", "rate", "increase", "histogram_quantile", "by", "le"}
    for expr in dashboard_exprs():
        rest = re.sub(r'"[^"]*"', "", expr)
        rest = re.sub(r"\{[^}]*\}|\[[^\]]*\]|\bby\s*\([^)]*\)", "", rest)
        words = set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", rest))
        others = words - functions - set(METRIC_NAME.findall(rest))
        assert others <= PROMETHEUS_SERIES, (expr, others)

