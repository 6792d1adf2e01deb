"""`echofs bench chaos --quick` end to end: a real cluster of processes behind
fault proxies, every scenario under every policy, both reports written.

What must hold in every run, however short: no acknowledged write lost in
any cell, no stale read under fixed-strong, every file that stayed strong
linearizable, and the adaptive controller moves files out of strong while
two workers are cut off. The newer scenarios (flapping, slow disk, master
killed, worker lost) run shortened in ``test_chaos_new_scenarios.py``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys


def test_quick_profile_runs_every_cell_and_loses_nothing(tmp_path):
    markdown, report = tmp_path / "chaos.md", tmp_path / "chaos.json"
    # Its own process group: if the test is interrupted or times out, the
    # benchmark and every server it started go with it.
    bench = subprocess.Popen(
        [sys.executable, "-m", "echofs", "bench", "chaos", "--quick",
         "--markdown", str(markdown), "--json", str(report), "--work-dir", str(tmp_path / "w")],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        output, _ = bench.communicate(timeout=300)
    finally:
        if bench.poll() is None:
            os.killpg(bench.pid, signal.SIGKILL)
            bench.wait()
    assert bench.returncode == 0, output
    # One progress line per cell.
    assert sum(1 for line in output.splitlines() if line.startswith("[")) == 12
    data = json.loads(report.read_text())
    cells = {(c["scenario"], c["policy"]): c for c in data["cells"]}
    assert len(cells) == 12
    assert not [c for c in cells.values() if "error" in c]
    for (scenario, policy), cell in cells.items():
        assert cell["loss"]["acknowledged"] > 0, (scenario, policy)
        assert cell["acked_writes_lost"] == 0, (scenario, policy, cell["loss"]["lost"])
        assert cell["loss"]["verified"] > 0, (scenario, policy)
        assert cell["history"]["violations"] == 0, (scenario, policy, cell["history"])
        assert cell["in_window"]["ops"] > 0, (scenario, policy)
        linear = cell["linearizability"]
        assert linear["violations"] == [] and linear["undecided"] == [], (scenario, policy,
                                                                          linear)
        if policy == "fixed-strong":
            assert cell["whole_run"]["stale_reads"] == 0, (scenario, cell["whole_run"])
            assert linear["files_checked"] > 0, (scenario, linear)
        if policy != "adaptive":  # the override pins every file: the controller never switches
            assert cell["mode_switches"] == 0, (scenario, policy, cell["transitions"])
    partition = cells[("partition", "adaptive")]
    assert partition["files_left_strong_during_fault"] > 0, partition["transitions"]
    assert data["verdict"] == {"ok": True, "problems": []}
    text = markdown.read_text()
    assert "| metric | normal | partition, fixed strong | partition, adaptive |" in text
    assert "## Goals" in text and "## Every cell" in text
    assert str(tmp_path / "w") not in text  # nor the cluster's folders
