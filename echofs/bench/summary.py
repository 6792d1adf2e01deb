"""Statistics of recorded operations: latency percentiles, availability and
stale-read shares over a window of the chaos benchmark's workload."""

from __future__ import annotations

from collections import Counter
from typing import Any

from echofs.bench.workload import Op


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (no interpolation: every value reported was
    measured)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))  # ceil
    return ordered[int(rank) - 1]


def latency_summary(ops: list[Op]) -> dict[str, Any]:
    ms = [o.latency * 1000 for o in ops if o.ok]
    return {"n": len(ms), **{f"p{q}": rounded(percentile(ms, q)) for q in (50, 95, 99)},
            "max": rounded(max(ms) if ms else None)}


def rounded(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


def summarize(ops: list[Op], stale: set[tuple[str, float]], seconds: float) -> dict[str, Any]:
    writes = [o for o in ops if o.kind == "write"]
    reads = [o for o in ops if o.kind == "read"]
    ok_reads = [o for o in reads if o.ok]
    stale_reads = sum(1 for o in ok_reads if (o.name, o.started) in stale)
    succeeded = sum(1 for o in ops if o.ok)
    return {
        "ops": len(ops), "succeeded": succeeded,
        "ops_per_second": rounded(len(ops) / seconds if seconds > 0 else None),
        # Operations that succeeded, per second of the window: what the
        # cluster delivered of the offered rate.
        "succeeded_per_second": rounded(succeeded / seconds if seconds > 0 else None),
        "availability_pct": round(100 * succeeded / len(ops), 3) if ops else None,
        "writes": len(writes), "writes_succeeded": sum(1 for o in writes if o.ok),
        "reads": len(reads), "reads_succeeded": len(ok_reads),
        "write_latency_ms": latency_summary(writes),
        "read_latency_ms": latency_summary(reads),
        "latency_ms": latency_summary(ops),
        "stale_reads": stale_reads,
        "flagged_stale_reads": sum(1 for o in ok_reads if o.stale),
        "stale_read_pct": round(100 * stale_reads / len(ok_reads), 3) if ok_reads else None,
        "failures": dict(Counter(f"{o.kind}: {o.error}" for o in ops if not o.ok)),
    }
