"""``echofs bench throughput --quick`` end to end: nginx and an all-in-one
OpenStack Swift (started by the bench), the embedded node at RF=1 and RF=3 and
a process cluster, measured by one client, reported as Markdown and JSON."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys


def test_quick_throughput_run_measures_every_target(tmp_path):
    markdown, report = tmp_path / "throughput.md", tmp_path / "throughput.json"
    # Its own process group: if the test is interrupted, every server the
    # bench started goes with it.
    bench = subprocess.Popen(
        [sys.executable, "-m", "echofs", "bench", "throughput", "--quick",
         "--markdown", str(markdown), "--json", str(report), "--work-dir", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        output, _ = bench.communicate(timeout=300)
    finally:
        if bench.poll() is None:
            os.killpg(bench.pid, signal.SIGKILL)
            bench.wait()
    assert bench.returncode == 0, output
    assert "[bench] nginx" in output  # progress is shown as it goes
    assert "[bench] OpenStack Swift" in output
    data = json.loads(report.read_text())
    for target in ("nginx", "swift", "embedded_rf1", "embedded_rf3", "cluster_rf3"):
        large = data[target]["large"]
        assert large["upload_mb_s"] > 0 and large["download_mb_s"] > 0, target
    for target in ("nginx", "swift", "embedded_rf3", "cluster_rf3"):
        small = data[target]["small"]
        assert small["put_ops_s"] > 0 and small["get_ops_s"] > 0, target
        assert data[target]["latency_10mib"]["upload_ms"] > 0, target
    assert data["embedded_rf3"]["rss"]["rss_peak_mb"] > 0
    for target in ("embedded_rf1", "embedded_rf3", "cluster_rf3"):
        assert data[target]["large"]["upload_master_cpu_s_per_gib"] > 0, target
    cluster = data["cluster_rf3"]["large"]
    assert cluster["upload_cluster_cpu_s_per_gib"] > cluster["upload_master_cpu_s_per_gib"]
    # The write pipeline: each uploaded byte leaves the master about once
    # (a strong write's frames of 64 KiB or less still go to every target).
    assert 0.9 < data["cluster_rf3"]["large"]["upload_master_egress_per_mib"] < 1.5
    assert data["disk"]["write_mb_s"] > 0
    text = markdown.read_text()
    assert "| large upload, embedded RF=1 |" in text
    assert f"OpenStack Swift {data['swift']['version']}:" in text
