"""The throughput report: every figure of the issue's goals table, as a ratio
to nginx measured in the same run."""

from __future__ import annotations

from echofs.bench.throughput import QUICK
from echofs.bench.throughput_report import render_markdown


def _small(put: float, get: float) -> dict[str, float]:
    return {"put_ops_s": put, "put_p50_ms": 2.0, "put_p99_ms": 9.0,
            "get_ops_s": get, "get_p50_ms": 1.0, "get_p99_ms": 4.0}


def _results() -> dict:
    return {
        "profile": QUICK.__dict__,
        "machine": {"cpus": 2, "python": "3.11.7", "platform": "Linux"},
        "disk": {"write_mb_s": 900.0, "read_mb_s": 5000.0},
        "nginx": {"large": {"upload_mb_s": 400.0, "download_mb_s": 1600.0},
                  "small": _small(6000, 8000),
                  "latency_10mib": {"upload_ms": 30.0, "download_ms": 8.0}},
        "embedded_rf1": {"large": {"upload_mb_s": 200.0, "download_mb_s": 600.0}},
        "embedded_rf3": {"large": {"upload_mb_s": 100.0, "download_mb_s": 800.0},
                         "small": _small(300, 2000),
                         "latency_10mib": {"upload_ms": 90.0, "download_ms": 20.0},
                         "rss": {"upload_mib": 128, "rss_baseline_mb": 120.0,
                                 "rss_peak_mb": 140.0}},
        "cluster_rf3": {"large": {"upload_mb_s": 50.0, "download_mb_s": 200.0},
                        "small": _small(150, 900),
                        "latency_10mib": {"upload_ms": 200.0, "download_ms": 60.0}},
    }


def test_every_goal_row_is_reported_with_its_ratio():
    text = render_markdown(_results(), "echofs bench throughput --quick")
    rows = {line.split("|")[1].strip(): line for line in text.splitlines()
            if line.startswith("| ") and not line.startswith("| figure")}
    assert "0.50x" in rows["large upload, embedded RF=1"]
    assert "0.25x" in rows["large upload, embedded RF=3 strong"]
    assert "0.12x" in rows["large upload, cluster RF=3 strong"]
    assert "0.50x" in rows["large download, embedded RF=3"]
    assert "0.05x" in rows["4 KiB uploads/s, embedded RF=3"]
    assert "0.25x" in rows["4 KiB reads/s, embedded"]
    assert "140 MB" in rows["master peak RSS during a 128 MiB upload"]
    assert "90 / 20 ms" in rows["10 MiB upload / download, embedded RF=3"]
    assert "`echofs bench throughput --quick`" in text
