"""The Markdown report of ``echofs bench throughput``: every EchoFS figure
beside nginx's and OpenStack Swift's from the same run, with its ratio to each
and the goal it is held to.

nginx is the yardstick of what the machine's HTTP stack and disk can do (no
replicas, no sync); Swift is the nearest peer (Python, three replicas, every
object synced), so the goals ask EchoFS for a fraction of the first and a
multiple of the second. A run with ``--no-swift`` leaves Swift's cells empty.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

NOT_MEASURED = "not measured"


@dataclass(frozen=True)
class RateRow:
    """One throughput figure: the same (section, field) of nginx's, Swift's
    and one EchoFS target's results; goals are minimum ratios (None: no goal)."""
    label: str
    echofs: str  # key of the EchoFS target in the results
    section: str
    field: str
    unit: str
    nginx_goal: float | None
    swift_goal: float | None = None


RATE_ROWS = (
    RateRow("large upload, embedded RF=1", "embedded_rf1", "large", "upload_mb_s", "MB/s",
            1.0),
    # Three synced replicas, as Swift's: the like-for-like embedded figure.
    RateRow("large upload, embedded RF=3 strong", "embedded_rf3", "large", "upload_mb_s",
            "MB/s", 0.5, 1.5),
    RateRow("large upload, cluster RF=3 strong", "cluster_rf3", "large", "upload_mb_s",
            "MB/s", 0.5, 1.5),
    RateRow("large download, embedded RF=3", "embedded_rf3", "large", "download_mb_s",
            "MB/s", 0.25),
    RateRow("large download, cluster RF=3", "cluster_rf3", "large", "download_mb_s",
            "MB/s", 0.25, 2.0),
    RateRow("4 KiB uploads/s, embedded RF=3", "embedded_rf3", "small", "put_ops_s", "",
            0.3, 10.0),
    RateRow("4 KiB uploads/s, cluster RF=3", "cluster_rf3", "small", "put_ops_s", "",
            0.3, 10.0),
    RateRow("4 KiB reads/s, embedded", "embedded_rf3", "small", "get_ops_s", "", 0.5, 5.0),
    RateRow("4 KiB reads/s, cluster", "cluster_rf3", "small", "get_ops_s", "", 0.5, 5.0),
)
# The RSS row's ceiling and the 10 MiB latency rows' (upload, download) ceilings.
RSS_GOAL_MB = 150
LATENCY_GOAL_MS = (100, 50)
# Chunk bytes a cluster's master may send per byte uploaded: the write
# pipeline sends each byte once (direct sends to all three would be 3).
EGRESS_GOAL = 1.1

HEADER = ("| figure | nginx | Swift | EchoFS | ratio to nginx | ratio to Swift | goal |\n"
          "|---|---|---|---|---|---|---|")


def _ratio(value: float, base: float | None) -> str:
    if base is None:
        return NOT_MEASURED
    return f"{value / base:.2f}x" if base else "n/a"


def _rate(value: float | None, unit: str) -> str:
    if value is None:
        return NOT_MEASURED
    return f"{value:.0f} {unit}".rstrip()


def _goal(row: RateRow) -> str:
    goals = [f"≥ {goal:g}x {peer}" for goal, peer in
             ((row.nginx_goal, "nginx"), (row.swift_goal, "Swift")) if goal is not None]
    return ", ".join(goals)


def _rate_line(results: dict[str, Any], row: RateRow) -> str:
    value = results[row.echofs][row.section][row.field]
    nginx = results["nginx"][row.section][row.field]
    swift = results["swift"][row.section][row.field] if "swift" in results else None
    return (f"| {row.label} | {_rate(nginx, row.unit)} | {_rate(swift, row.unit)} | "
            f"{_rate(value, row.unit)} | {_ratio(value, nginx)} | {_ratio(value, swift)} | "
            f"{_goal(row)} |")


def _p50_p99(target: dict[str, Any] | None, op: str) -> str:
    if target is None:
        return NOT_MEASURED
    small = target["small"]
    return f"{small[f'{op}_p50_ms']:.1f} / {small[f'{op}_p99_ms']:.1f} ms"


def _latency(target: dict[str, Any] | None) -> str:
    if target is None:
        return NOT_MEASURED
    lat = target["latency_10mib"]
    return f"{lat['upload_ms']:.0f} / {lat['download_ms']:.0f} ms"


def _master_cpu(target: dict[str, Any]) -> str:
    value = target["large"].get("upload_master_cpu_s_per_gib")
    return NOT_MEASURED if value is None else f"{value:.2f} s"


def _cluster_cpu(target: dict[str, Any]) -> str:
    value = target["large"].get("upload_cluster_cpu_s_per_gib")
    return NOT_MEASURED if value is None else f"{value:.1f} s"


def _egress(target: dict[str, Any]) -> str:
    value = target["large"].get("upload_master_egress_per_mib")
    return NOT_MEASURED if value is None else f"{value:.2f} MiB"


def render_markdown(results: dict[str, Any], command: str) -> str:
    n, e3, c3 = results["nginx"], results["embedded_rf3"], results["cluster_rf3"]
    s = results.get("swift")
    p = results["profile"]
    disk_ = results["disk"]
    swift_setup = (f"OpenStack Swift {s['version']}: all-in-one on loopback, 3 replicas on "
                   "3 devices, every object PUT synced, tempauth and memcached"
                   if s else "OpenStack Swift: not measured (`--no-swift`)")
    up_goal, down_goal = LATENCY_GOAL_MS
    lines = [
        "# Throughput: EchoFS beside nginx, OpenStack Swift and the disk",
        "",
        f"Produced by `{command}` on {results['machine']['cpus']} cores, Python "
        f"{results['machine']['python']} ({results['machine']['platform']}). Large files: "
        f"{p['large_files']} x {p['large_mib']} MiB at concurrency {p['concurrency']}; small: "
        f"{p['small_ops']} x 4 KiB at concurrency {p['small_concurrency']}. Same client for "
        "every target. Ratios are to nginx and to Swift in the same run.",
        "",
        f"Raw disk: write (fdatasync) {disk_['write_mb_s']:.0f} MB/s, read "
        f"{disk_['read_mb_s']:.0f} MB/s. {swift_setup}.",
        "",
        HEADER,
        *(_rate_line(results, row) for row in RATE_ROWS),
        f"| 4 KiB upload p50 / p99, embedded RF=3 | {_p50_p99(n, 'put')} | "
        f"{_p50_p99(s, 'put')} | {_p50_p99(e3, 'put')} | | | |",
        f"| 4 KiB read p50 / p99, embedded | {_p50_p99(n, 'get')} | {_p50_p99(s, 'get')} | "
        f"{_p50_p99(e3, 'get')} | | | |",
        f"| master peak RSS during a {e3['rss']['upload_mib']} MiB upload | | | "
        f"{e3['rss']['rss_peak_mb']:.0f} MB (from {e3['rss']['rss_baseline_mb']:.0f}) | | | "
        f"< {RSS_GOAL_MB} MB |",
        f"| 10 MiB upload / download, embedded RF=3 | {_latency(n)} | {_latency(s)} | "
        f"{_latency(e3)} | | | ≤ {up_goal} / ≤ {down_goal} ms |",
        f"| 10 MiB upload / download, cluster RF=3 | {_latency(n)} | {_latency(s)} | "
        f"{_latency(c3)} | | | ≤ {up_goal} / ≤ {down_goal} ms |",
        f"| master CPU per GiB of large uploads, embedded RF=3 / cluster RF=3 | | | "
        f"{_master_cpu(e3)} / {_master_cpu(c3)} | | | |",
        f"| CPU per GiB of large uploads, whole cluster RF=3 (master, workers, controller) "
        f"| | | {_cluster_cpu(c3)} | | | |",
        f"| master chunk egress per MiB uploaded, cluster RF=3 | | | {_egress(c3)} | | | "
        f"≤ {EGRESS_GOAL:g} MiB |",
        "",
        "Raw figures are in the JSON report next to this file.",
    ]
    return "\n".join(lines) + "\n"
