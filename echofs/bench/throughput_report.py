"""The Markdown report of ``echofs bench throughput``: every EchoFS figure
beside nginx's from the same run, with its ratio and the goal it is held to."""

from __future__ import annotations

from typing import Any


def _ratio(value: float, base: float) -> str:
    return f"{value / base:.2f}x" if base else "n/a"


def render_markdown(results: dict[str, Any], command: str) -> str:
    n, e1, e3, c3 = (results["nginx"], results["embedded_rf1"], results["embedded_rf3"],
                     results["cluster_rf3"])
    p = results["profile"]
    disk_ = results["disk"]
    lines = [
        "# Throughput: EchoFS beside nginx and the disk",
        "",
        f"Produced by `{command}` on {results['machine']['cpus']} cores, Python "
        f"{results['machine']['python']} ({results['machine']['platform']}). Large files: "
        f"{p['large_files']} x {p['large_mib']} MiB at concurrency {p['concurrency']}; small: "
        f"{p['small_ops']} x 4 KiB at concurrency {p['small_concurrency']}. Same client for "
        "every target. Ratios are to nginx in the same run.",
        "",
        f"Raw disk: write (fdatasync) {disk_['write_mb_s']:.0f} MB/s, read "
        f"{disk_['read_mb_s']:.0f} MB/s.",
        "",
        "| figure | nginx | EchoFS | ratio | goal |",
        "|---|---|---|---|---|",
        f"| large upload, embedded RF=1 | {n['large']['upload_mb_s']:.0f} MB/s | "
        f"{e1['large']['upload_mb_s']:.0f} MB/s | "
        f"{_ratio(e1['large']['upload_mb_s'], n['large']['upload_mb_s'])} | ≥ 1.0x |",
        f"| large upload, embedded RF=3 strong | {n['large']['upload_mb_s']:.0f} MB/s | "
        f"{e3['large']['upload_mb_s']:.0f} MB/s | "
        f"{_ratio(e3['large']['upload_mb_s'], n['large']['upload_mb_s'])} | ≥ 0.5x |",
        f"| large upload, cluster RF=3 strong | {n['large']['upload_mb_s']:.0f} MB/s | "
        f"{c3['large']['upload_mb_s']:.0f} MB/s | "
        f"{_ratio(c3['large']['upload_mb_s'], n['large']['upload_mb_s'])} | ≥ 0.5x |",
        f"| large download, embedded RF=3 | {n['large']['download_mb_s']:.0f} MB/s | "
        f"{e3['large']['download_mb_s']:.0f} MB/s | "
        f"{_ratio(e3['large']['download_mb_s'], n['large']['download_mb_s'])} | ≥ 0.25x |",
        f"| large download, cluster RF=3 | {n['large']['download_mb_s']:.0f} MB/s | "
        f"{c3['large']['download_mb_s']:.0f} MB/s | "
        f"{_ratio(c3['large']['download_mb_s'], n['large']['download_mb_s'])} | ≥ 0.25x |",
        f"| 4 KiB uploads/s, embedded RF=3 | {n['small']['put_ops_s']:.0f} | "
        f"{e3['small']['put_ops_s']:.0f} | "
        f"{_ratio(e3['small']['put_ops_s'], n['small']['put_ops_s'])} | ≥ 0.3x |",
        f"| 4 KiB uploads/s, cluster RF=3 | {n['small']['put_ops_s']:.0f} | "
        f"{c3['small']['put_ops_s']:.0f} | "
        f"{_ratio(c3['small']['put_ops_s'], n['small']['put_ops_s'])} | ≥ 0.3x |",
        f"| 4 KiB reads/s, embedded | {n['small']['get_ops_s']:.0f} | "
        f"{e3['small']['get_ops_s']:.0f} | "
        f"{_ratio(e3['small']['get_ops_s'], n['small']['get_ops_s'])} | ≥ 0.5x |",
        f"| 4 KiB reads/s, cluster | {n['small']['get_ops_s']:.0f} | "
        f"{c3['small']['get_ops_s']:.0f} | "
        f"{_ratio(c3['small']['get_ops_s'], n['small']['get_ops_s'])} | ≥ 0.5x |",
        f"| 4 KiB upload p50 / p99, embedded RF=3 | {n['small']['put_p50_ms']:.1f} / "
        f"{n['small']['put_p99_ms']:.1f} ms | {e3['small']['put_p50_ms']:.1f} / "
        f"{e3['small']['put_p99_ms']:.1f} ms | | |",
        f"| 4 KiB read p50 / p99, embedded | {n['small']['get_p50_ms']:.1f} / "
        f"{n['small']['get_p99_ms']:.1f} ms | {e3['small']['get_p50_ms']:.1f} / "
        f"{e3['small']['get_p99_ms']:.1f} ms | | |",
        f"| master peak RSS during a {e3['rss']['upload_mib']} MiB upload | | "
        f"{e3['rss']['rss_peak_mb']:.0f} MB (from {e3['rss']['rss_baseline_mb']:.0f}) | | "
        "< 150 MB |",
        f"| 10 MiB upload / download, embedded RF=3 | "
        f"{n['latency_10mib']['upload_ms']:.0f} / {n['latency_10mib']['download_ms']:.0f} ms | "
        f"{e3['latency_10mib']['upload_ms']:.0f} / {e3['latency_10mib']['download_ms']:.0f} ms "
        "| | ≤ 100 / ≤ 50 ms |",
        f"| 10 MiB upload / download, cluster RF=3 | | "
        f"{c3['latency_10mib']['upload_ms']:.0f} / {c3['latency_10mib']['download_ms']:.0f} ms "
        "| | ≤ 100 / ≤ 50 ms |",
        "",
        "Raw figures are in the JSON report next to this file.",
    ]
    return "\n".join(lines) + "\n"
