"""`echofs dev cluster`: a controller, a master and workers as processes,
started in order (no false "master unreachable"), ready with the controller
connected so the admin tools work, and stopped cleanly on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from echofs.devcluster import ClusterLayout, members, port_free
from echofs.testing.cluster import FAST_ENV
from echofs.testing.process import free_port


def _free_block() -> tuple[int, int]:
    """HTTP and gRPC base ports such that every port the dev cluster derives
    from them (workers, controller) is free too, probed as the dev cluster
    probes them (a bind: a port held by another process's outgoing
    connection refuses a bind but answers no connect)."""
    while True:
        port, grpc = free_port(), free_port()
        layout = ClusterLayout(Path("."), port=port, grpc_port=grpc)
        wanted = layout.ports()
        if max(wanted) < 65536 and len(set(wanted)) == len(wanted) and all(map(port_free, wanted)):
            return port, grpc


def _health(port: int) -> dict:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/health",
                                    timeout=1) as resp:
            return json.load(resp)
    except OSError:
        return {}


def test_dev_cluster_starts_members_in_order_with_a_controller_and_stops_on_sigterm(tmp_path):
    port, grpc = _free_block()
    log_path = tmp_path / "dev-cluster.log"
    log_file = log_path.open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "echofs", "dev", "cluster", "--workers", "3",
         "--port", str(port), "--grpc-port", str(grpc), "--data-dir", str(tmp_path / "c")],
        # A file, not a pipe: a pipe nobody reads until the end fills up and
        # blocks the members' logging, and with it their heartbeats.
        stdout=subprocess.DEVNULL, stderr=log_file, env={**os.environ, **FAST_ENV},
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and "dev cluster ready" not in log_path.read_text():
            assert proc.poll() is None, log_path.read_text()
            time.sleep(0.1)
        assert "dev cluster ready" in log_path.read_text()
        health = _health(port)
        # Ready means healthy: no 503 window left for the user to see.
        assert health["status"] == "ok" and health["workers"]["alive"] == 3
        assert health["consistency"]["controller_connected"] is True

        env = {k: v for k, v in os.environ.items() if not k.startswith("ECHOFS_")}
        env.update(HOME=str(tmp_path), XDG_CONFIG_HOME=str(tmp_path / "config"))
        server = ["--server", f"127.0.0.1:{port}"]

        def admin(*args: str) -> str:
            done = subprocess.run([sys.executable, "-m", "echofs", "admin", *args, *server],
                                  env=env, capture_output=True, text=True, timeout=60)
            assert done.returncode == 0, done.stderr
            return done.stdout

        assert admin("override", "strong") == "override set: every file strong\n"
        assert admin("override") == "override: strong\n"
        assert admin("override", "--clear") == "override cleared\n"

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        log = log_path.read_text()
        assert log.count("shutting down") == 5  # controller, master, three workers
        # Workers started once the master answered: none found it unreachable.
        assert "unreachable" not in log, log
    finally:
        if proc.poll() is None:
            proc.kill()
        log_file.close()


def test_members_start_in_dependency_order_and_link_master_to_controller(tmp_path):
    layout = ClusterLayout(tmp_path, workers=2, port=8080, grpc_port=9080)
    started = members(layout)
    assert [m.name for m in started] == ["controller", "master", "w1", "w2"]
    master = started[1].command
    assert master[master.index("--controller") + 1] == "127.0.0.1:9180"
    assert master[master.index("--controller-port") + 1] == "8082"
    assert started[0].health_url == "http://127.0.0.1:8082/health"

    alone = members(ClusterLayout(tmp_path, workers=2, controller=False))
    assert [m.name for m in alone] == ["master", "w1", "w2"]
    assert "--controller" not in alone[0].command


@pytest.mark.parametrize(("layout", "message"), [
    (ClusterLayout(Path("c"), workers=2, replication_factor=3), "needs 1..2 workers"),
    (ClusterLayout(Path("c"), controller_grpc_port=9081), "9081 would be used twice"),
    (ClusterLayout(Path("c"), port=65530), "out of range"),
])
def test_impossible_layouts_are_refused_before_anything_starts(layout, message):
    with pytest.raises(ValueError, match=message):
        layout.check()


def test_ports_another_process_listens_on_are_refused(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        layout = ClusterLayout(tmp_path, workers=1, replication_factor=1, port=port,
                               grpc_port=free_port(), controller=False)
        with pytest.raises(ValueError, match=rf"\b{port}\b.* already in use"):
            layout.check_ports_free()
