"""The newer chaos scenarios end to end, shortened: the master killed with
SIGKILL in the middle of a partition and restarted, and a worker killed and
wiped under load — on a real cluster of processes behind fault proxies,
under the adaptive policy.

What must hold: nothing acknowledged is lost, the restarted master finds its
replication queue and the controller's modes again, and every copy the lost
worker held is back at RF. (Flapping and the slow disk are covered without a
cluster: tests/unit/controller/test_flap_damping.py and
tests/unit/worker/stores/test_delayed.py.)
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys


def test_master_kill_and_worker_lost_recover_and_lose_nothing(tmp_path):
    report = tmp_path / "chaos.json"
    bench = subprocess.Popen(
        [sys.executable, "-m", "echofs", "bench", "chaos", "--quick",
         "--scenarios", "master-kill,worker-lost", "--policies", "adaptive",
         "--markdown", str(tmp_path / "chaos.md"), "--json", str(report),
         "--work-dir", str(tmp_path / "w")],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        output, _ = bench.communicate(timeout=240)
    finally:
        if bench.poll() is None:
            os.killpg(bench.pid, signal.SIGKILL)
            bench.wait()
    assert bench.returncode == 0, output
    cells = {c["scenario"]: c for c in json.loads(report.read_text())["cells"]}
    assert set(cells) == {"master-kill", "worker-lost"}, output
    for cell in cells.values():
        assert "error" not in cell, cell.get("error")
        assert cell["acked_writes_lost"] == 0, cell["loss"]["lost"]
        assert cell["history"]["violations"] == 0, cell["history"]
    kill = cells["master-kill"]["scenario_detail"]
    assert kill["master_down_s"] > 0 and kill["modes_recovered"], kill
    lost = cells["worker-lost"]["scenario_detail"]
    assert lost["redundancy"]["chunks_lost"] > 0, lost
    assert lost["rf_restored"], lost["redundancy"]
