"""The throughput report: every figure of the issue's goals table, as a ratio
to nginx and to OpenStack Swift measured in the same run."""

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
        "swift": {"version": "2.30.1",
                  "large": {"upload_mb_s": 80.0, "download_mb_s": 400.0},
                  "small": _small(100, 500),
                  "latency_10mib": {"upload_ms": 150.0, "download_ms": 40.0}},
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


def _rows(text: str) -> dict[str, list[str]]:
    """Each table row's cells by its figure's name."""
    return {cells[0]: cells for cells in (
        [cell.strip() for cell in line.strip("|").split("|")] for line in text.splitlines()
        if line.startswith("| ") and not line.startswith("| figure"))}


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


def test_swift_column_has_its_figures_ratios_and_goals():
    text = render_markdown(_results(), "echofs bench throughput --quick")
    assert text.startswith("# Throughput: EchoFS beside nginx, OpenStack Swift and the disk")
    assert "OpenStack Swift 2.30.1" in text
    rows = _rows(text)
    # figure | nginx | Swift | EchoFS | ratio to nginx | ratio to Swift | goal
    assert rows["large upload, embedded RF=1"][2:6] == ["80 MB/s", "200 MB/s", "0.50x",
                                                         "2.50x"]
    assert rows["large upload, embedded RF=3 strong"][5:] == ["1.25x",
                                                              "≥ 0.5x nginx, ≥ 1.5x Swift"]
    assert rows["large upload, cluster RF=3 strong"][5:] == ["0.62x",
                                                             "≥ 0.5x nginx, ≥ 1.5x Swift"]
    assert rows["large download, cluster RF=3"][5:] == ["0.50x", "≥ 0.25x nginx, ≥ 2x Swift"]
    assert rows["4 KiB uploads/s, embedded RF=3"][2:] == ["100", "300", "0.05x", "3.00x",
                                                          "≥ 0.3x nginx, ≥ 10x Swift"]
    assert rows["4 KiB uploads/s, cluster RF=3"][5:] == ["1.50x", "≥ 0.3x nginx, ≥ 10x Swift"]
    assert rows["4 KiB reads/s, embedded"][5:] == ["4.00x", "≥ 0.5x nginx, ≥ 5x Swift"]
    assert rows["4 KiB reads/s, cluster"][5:] == ["1.80x", "≥ 0.5x nginx, ≥ 5x Swift"]
    assert rows["4 KiB upload p50 / p99, embedded RF=3"][2] == "2.0 / 9.0 ms"
    assert rows["10 MiB upload / download, cluster RF=3"][2:4] == ["150 / 40 ms",
                                                                   "200 / 60 ms"]
    # Goals relative to nginx only stay so.
    assert rows["large download, embedded RF=3"][6] == "≥ 0.25x nginx"


def test_a_run_without_swift_says_so_in_its_cells():
    results = _results()
    del results["swift"]
    text = render_markdown(results, "echofs bench throughput --quick --no-swift")
    assert "OpenStack Swift: not measured (`--no-swift`)" in text
    rows = _rows(text)
    assert rows["4 KiB reads/s, embedded"][2] == "not measured"
    assert rows["4 KiB reads/s, embedded"][4:6] == ["0.25x", "not measured"]
    assert rows["10 MiB upload / download, embedded RF=3"][2] == "not measured"


def test_the_masters_cost_of_an_upload_is_reported():
    results = _results()
    results["embedded_rf3"]["large"]["upload_master_cpu_s_per_gib"] = 3.456
    results["cluster_rf3"]["large"].update(upload_master_cpu_s_per_gib=5.5,
                                           upload_cluster_cpu_s_per_gib=27.04,
                                           upload_master_egress_per_mib=1.031)
    rows = _rows(render_markdown(results, "echofs bench throughput"))
    assert rows["master CPU per GiB of large uploads, embedded RF=3 / cluster RF=3"][3] == \
        "3.46 s / 5.50 s"
    assert rows["CPU per GiB of large uploads, whole cluster RF=3 (master, workers, "
                "controller)"][3] == "27.0 s"
    egress = rows["master chunk egress per MiB uploaded, cluster RF=3"]
    assert egress[3] == "1.03 MiB" and egress[6] == "≤ 1.1 MiB"


def test_a_report_from_before_the_masters_cost_was_measured_says_so():
    rows = _rows(render_markdown(_results(), "echofs bench throughput"))
    assert rows["master chunk egress per MiB uploaded, cluster RF=3"][3] == "not measured"
