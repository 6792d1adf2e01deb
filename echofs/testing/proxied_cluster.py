"""A process cluster with a fault proxy on every path between the master and
each worker — what the chaos benchmark partitions and slows down.

For each worker two proxies, both in one ``python -m echofs.testing.faultproxy``
process (apart from the benchmark's own process, so proxying never competes
with the clients' event loop):

- ``<id>-grpc``: master → worker chunk calls. The worker advertises the
  proxy's port (``--advertise-grpc-port``), so the master connects through it;
- ``<id>-heartbeat``: worker → master membership (registration, heartbeats):
  the worker's ``--master`` is the proxy.

Blackholing both is a partition in both directions: the master's calls hang
and the worker's heartbeats stop arriving, as on a cut link.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from echofs.testing.cluster import ProcessCluster
from echofs.testing.faultproxy import FaultControl
from echofs.testing.process import ServeProcess, free_port

PATHS = ("grpc", "heartbeat")


class ProxiedCluster(ProcessCluster):
    def __init__(self, root: Path, workers: int = 5, env: dict[str, str] | None = None,
                 replication_factor: int = 3, controller: bool = True,
                 start_timeout: float = 60.0) -> None:
        # Filled as workers are defined (the base class defines them).
        self.proxy_ports: dict[str, dict[str, int]] = {}
        self.control_port = free_port()
        self.proxy_process: subprocess.Popen[bytes] | None = None
        self.start_timeout = start_timeout
        super().__init__(root, workers=workers, env=env, replication_factor=replication_factor,
                         controller=controller)

    def _worker_process(self, worker_id: str) -> ServeProcess:
        ports = self.proxy_ports.setdefault(worker_id, {p: free_port() for p in PATHS})
        http = free_port()
        return ServeProcess(
            self.root / worker_id, "--role=worker", "--id", worker_id,
            "--store", self.stores(worker_id),
            "--grpc-port", str(self.worker_grpc[worker_id]),
            "--advertise-grpc-port", str(ports["grpc"]), "--http-port", str(http),
            "--master", f"127.0.0.1:{ports['heartbeat']}",
            env=self.env, name=worker_id, health_url=f"http://127.0.0.1:{http}/health",
        )

    @staticmethod
    def proxy_names(worker_ids: list[str] | tuple[str, ...]) -> list[str]:
        """Both proxies of each worker: faulting them all cuts both directions."""
        return [f"{w}-{path}" for w in worker_ids for path in PATHS]

    @property
    def control(self) -> FaultControl:
        return FaultControl(f"http://127.0.0.1:{self.control_port}")

    def _start_proxies(self) -> None:
        specs = []
        for worker_id, ports in self.proxy_ports.items():
            specs += ["--proxy", f"{worker_id}-grpc={ports['grpc']}:127.0.0.1:"
                                 f"{self.worker_grpc[worker_id]}"]
            specs += ["--proxy", f"{worker_id}-heartbeat={ports['heartbeat']}:127.0.0.1:"
                                 f"{self.master_grpc}"]
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / "faultproxy.log").open("ab") as log:
            self.proxy_process = subprocess.Popen(
                [sys.executable, "-m", "echofs.testing.faultproxy",
                 "--control-port", str(self.control_port), *specs],
                stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + self.start_timeout
        url = f"http://127.0.0.1:{self.control_port}/faults"
        while time.monotonic() < deadline:
            if self.proxy_process.poll() is not None:
                raise RuntimeError("the fault proxy process exited:\n" + (
                    self.root / "faultproxy.log").read_text(errors="replace")[-3000:])
            try:
                with urllib.request.urlopen(url, timeout=1) as resp:
                    if len(json.load(resp)["proxies"]) == len(specs) // 2:
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise TimeoutError("the fault proxies did not come up")

    def start(self) -> ProxiedCluster:
        self._start_proxies()
        # Every role retries its links (workers re-send registrations, the
        # master re-opens its controller watch), so all start at once: on a
        # small machine that is several times faster than one by one.
        members = [*([self.controller] if self.controller else []), *self.masters,
                   *self.workers.values()]
        with ThreadPoolExecutor(len(members)) as pool:
            for started in [pool.submit(m.start, self.start_timeout) for m in members]:
                started.result()
        self.wait_for_workers(len(self.workers), timeout=self.start_timeout)
        # The master must reach each worker through its proxy, or a fault
        # would cut only one direction.
        addresses = {w: row["address"] for w, row in self.workers_health().items()}
        expected = {w: f"127.0.0.1:{ports['grpc']}" for w, ports in self.proxy_ports.items()}
        if addresses != expected:
            raise RuntimeError(f"workers registered {addresses}, not their proxies {expected}")
        return self

    def stop(self) -> None:
        super().stop()
        if self.proxy_process is not None and self.proxy_process.poll() is None:
            self.proxy_process.terminate()
            try:
                self.proxy_process.wait(10)
            except subprocess.TimeoutExpired:
                self.proxy_process.kill()
                self.proxy_process.wait()

    def __enter__(self) -> ProxiedCluster:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise
