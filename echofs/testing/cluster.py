"""A real multi-process cluster on loopback: one master, N workers, each its
own ``echofs serve`` process. Tests crash and restart its members and ask
each worker directly (over gRPC) what it holds."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path

from echofs.rpc.worker_client import GrpcWorkerClient
from echofs.testing.process import ServeProcess, free_port

# Short timeouts so failures are detected and repaired within a test's patience.
FAST_ENV = {
    "HEARTBEAT_INTERVAL": "0.25",
    "SUSPECT_AFTER": "1.0",
    "DEAD_AFTER": "4.0",
    "REPLICATION_INTERVAL": "0.25",
    "SCRUB_INTERVAL": "0.5",
    "GC_GRACE_SECONDS": "2",
    "GC_INTERVAL_SECONDS": "0.5",
    "WRITE_TIMEOUT": "5",
    "READ_TIMEOUT": "5",
}


class ProcessCluster:
    def __init__(self, root: Path, workers: int = 3, env: dict[str, str] | None = None,
                 replication_factor: int = 3) -> None:
        self.root = root
        self.env = {**FAST_ENV, **(env or {})}
        self.replication_factor = replication_factor
        self.master_grpc = free_port()
        self.master = self._master_process()
        self.workers: dict[str, ServeProcess] = {}
        self.worker_grpc: dict[str, int] = {}
        for index in range(1, workers + 1):
            worker_id = f"w{index}"
            self.worker_grpc[worker_id] = free_port()
            self.workers[worker_id] = self._worker_process(worker_id)

    def _master_process(self, port: int | None = None) -> ServeProcess:
        return ServeProcess(
            self.root / "master", "--role=master", "--grpc-port", str(self.master_grpc),
            "--replication-factor", str(self.replication_factor),
            port=port, env=self.env, name="master", up_statuses=(200, 503),
        )

    def _worker_process(self, worker_id: str) -> ServeProcess:
        http = free_port()
        return ServeProcess(
            self.root / worker_id, "--role=worker", "--id", worker_id,
            "--store", f"local:{self.store_dir(worker_id)}",
            "--grpc-port", str(self.worker_grpc[worker_id]), "--http-port", str(http),
            "--master", f"127.0.0.1:{self.master_grpc}",
            env=self.env, name=worker_id, health_url=f"http://127.0.0.1:{http}/health",
        )

    @property
    def url(self) -> str:
        return self.master.url

    def store_dir(self, worker_id: str) -> Path:
        return self.root / "stores" / worker_id

    def chunk_file(self, worker_id: str, chunk_id: str) -> Path:
        return self.store_dir(worker_id) / "chunks" / chunk_id[:2] / chunk_id[2:4] / chunk_id

    def start(self) -> ProcessCluster:
        self.master.start()
        for worker in self.workers.values():
            worker.start()
        self.wait_for_workers(len(self.workers))
        return self

    def workers_health(self) -> dict[str, dict[str, object]]:
        with urllib.request.urlopen(f"{self.url}/api/v1/workers/health", timeout=5) as resp:
            return {w["id"]: w for w in json.load(resp)["workers"]}

    def wait_for_workers(self, alive: int, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        states: dict[str, object] = {}
        while time.monotonic() < deadline:
            try:
                states = {k: v["state"] for k, v in self.workers_health().items()}
            except OSError:
                states = {}
            if sum(1 for s in states.values() if s == "alive") >= alive:
                return
            time.sleep(0.05)
        raise TimeoutError(f"expected {alive} alive workers, master sees {states}")

    def kill_worker(self, worker_id: str) -> None:
        self.workers[worker_id].kill()

    def start_worker(self, worker_id: str) -> None:
        # Same id, ports and store: the worker comes back with its data.
        old = self.workers[worker_id]
        self.workers[worker_id] = ServeProcess(
            old.data_dir, *old.args, port=old.port, env=self.env, name=worker_id,
            health_url=old.health_url)
        self.workers[worker_id].start()

    def kill_master(self) -> None:
        self.master.kill()

    def start_master(self) -> None:
        self.master = self._master_process(port=self.master.port)
        self.master.start()

    async def chunks_on(self, worker_id: str) -> set[str]:
        """Ask the worker itself, over gRPC, which chunks it holds."""
        client = GrpcWorkerClient(worker_id, f"127.0.0.1:{self.worker_grpc[worker_id]}")
        try:
            return {chunk_id async for chunk_id in client.list_chunks()}
        finally:
            await client.close()

    def stop(self) -> None:
        for worker in self.workers.values():
            worker.kill()
        self.master.kill()

    def __enter__(self) -> ProcessCluster:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()
