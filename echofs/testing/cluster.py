"""A real multi-process cluster on loopback: one master (or several sharing a
PostgreSQL database), N workers, each its own ``echofs serve`` process. Tests
crash and restart its members and ask each worker directly (over gRPC) what
it holds.

Several masters need ``DATABASE_URL`` in ``env`` (one database they share;
the cluster migrates it with ``echofs db upgrade`` first, as an operator
would); every worker reports to all of them. ``stores`` picks each worker's
``--store`` (default: a local folder), e.g. ``s3://bucket/w1``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from echofs.core.vocabulary import Liveness, Role
from echofs.rpc.worker_client import GrpcWorkerClient
from echofs.testing import disk
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
    "SWEEP_INTERVAL": "1",
    "WRITE_TIMEOUT": "5",
    "READ_TIMEOUT": "5",
    "SAMPLE_INTERVAL": "0.5",
    "CONFIRM_SAMPLES": "3",
    "MODE_COOLDOWN": "2",
}


class ProcessCluster:
    def __init__(self, root: Path, workers: int = 3, env: dict[str, str] | None = None,
                 replication_factor: int = 3, controller: bool = False, masters: int = 1,
                 stores: Callable[[str], str] | None = None) -> None:
        self.root = root
        self.env = {**FAST_ENV, **(env or {})}
        if masters > 1 and "DATABASE_URL" not in self.env:
            raise ValueError("several masters share one database: pass DATABASE_URL in env")
        self.replication_factor = replication_factor
        self.stores = stores or (lambda worker_id: f"local:{self.store_dir(worker_id)}")
        self.master_grpcs = [free_port() for _ in range(masters)]
        self.master_grpc = self.master_grpcs[0]
        # Each master's S3 endpoint (echofs.s3), on a port of its own.
        self.s3_ports = [free_port() for _ in range(masters)]
        self.controller: ServeProcess | None = None
        self.controller_ports = (free_port(), free_port())  # HTTP, gRPC
        if controller:
            self.controller = self._controller_process()
        self.masters = [self._master_process(index) for index in range(masters)]
        self.workers: dict[str, ServeProcess] = {}
        self.worker_grpc: dict[str, int] = {}
        for index in range(1, workers + 1):
            worker_id = f"w{index}"
            self.worker_grpc[worker_id] = free_port()
            self.workers[worker_id] = self._worker_process(worker_id)

    @property
    def master(self) -> ServeProcess:
        return self.masters[0]

    def _master_process(self, index: int = 0, port: int | None = None) -> ServeProcess:
        http, grpc = self.controller_ports
        link = ["--controller", f"127.0.0.1:{grpc}", "--controller-port", str(http)] \
            if self.controller is not None else []
        name = "master" if index == 0 else f"master{index + 1}"
        return ServeProcess(
            self.root / name, f"--role={Role.MASTER}", "--grpc-port", str(self.master_grpcs[index]),
            "--replication-factor", str(self.replication_factor), *link,
            "--s3-port", str(self.s3_ports[index]),
            port=port, env=self.env, name=name, up_statuses=(200, 503),
        )

    def _controller_process(self) -> ServeProcess:
        http, grpc = self.controller_ports
        return ServeProcess(
            self.root / "controller", f"--role={Role.CONTROLLER}", "--controller-port", str(http),
            "--controller-grpc-port", str(grpc),
            "--replication-factor", str(self.replication_factor),
            env=self.env, name="controller", health_url=f"http://127.0.0.1:{http}/health",
        )

    def kill_controller(self) -> None:
        assert self.controller is not None
        self.controller.kill()

    def start_controller(self) -> None:
        self.controller = self._controller_process()
        self.controller.start()

    def _worker_process(self, worker_id: str) -> ServeProcess:
        http = free_port()
        return ServeProcess(
            self.root / worker_id, f"--role={Role.WORKER}", "--id", worker_id,
            "--store", self.stores(worker_id),
            "--grpc-port", str(self.worker_grpc[worker_id]), "--http-port", str(http),
            "--master", ",".join(f"127.0.0.1:{port}" for port in self.master_grpcs),
            env=self.env, name=worker_id, health_url=f"http://127.0.0.1:{http}/health",
        )

    @property
    def url(self) -> str:
        return self.master.url

    @property
    def urls(self) -> list[str]:
        return [m.url for m in self.masters]

    def store_dir(self, worker_id: str) -> Path:
        return self.root / "stores" / worker_id

    def stored_frame(self, worker_id: str, chunk_id: str) -> bytes | None:
        """A chunk's frame as the worker's disk holds it (``echofs.testing.disk``)."""
        return disk.stored_frame(self.store_dir(worker_id), chunk_id)

    def flip_chunk_byte(self, worker_id: str, chunk_id: str, offset: int) -> None:
        """Bit rot in the worker's copy of a chunk (``offset`` into its frame)."""
        disk.flip_stored_byte(self.store_dir(worker_id), chunk_id, offset)

    def start(self) -> ProcessCluster:
        if "DATABASE_URL" in self.env:
            self.upgrade_database()
        if self.controller is not None:
            self.controller.start()
        for master in self.masters:
            master.start()
        for worker in self.workers.values():
            worker.start()
        for index in range(len(self.masters)):
            self.wait_for_workers(len(self.workers), master=index)
        return self

    def upgrade_database(self) -> None:
        """``echofs db upgrade`` on the shared database, as an operator runs it."""
        done = subprocess.run([sys.executable, "-m", "echofs", "db", "upgrade"],
                              env={**os.environ, **self.env}, capture_output=True, text=True,
                              timeout=60)
        if done.returncode != 0:
            raise RuntimeError(f"echofs db upgrade failed:\n{done.stderr[-3000:]}")

    def workers_health(self, master: int = 0) -> dict[str, dict[str, object]]:
        url = self.masters[master].url
        with urllib.request.urlopen(f"{url}/api/v1/workers/health", timeout=5) as resp:
            return {w["id"]: w for w in json.load(resp)["workers"]}

    def wait_for_workers(self, alive: int, timeout: float = 20.0, master: int = 0) -> None:
        deadline = time.monotonic() + timeout
        states: dict[str, object] = {}
        while time.monotonic() < deadline:
            try:
                states = {k: v["state"] for k, v in self.workers_health(master).items()}
            except OSError:
                states = {}
            if sum(1 for s in states.values() if s == Liveness.ALIVE) >= alive:
                return
            time.sleep(0.05)
        raise TimeoutError(f"expected {alive} alive workers, master {master} sees {states}")

    def kill_worker(self, worker_id: str) -> None:
        self.workers[worker_id].kill()

    def start_worker(self, worker_id: str) -> None:
        # Same id, ports and store: the worker comes back with its data.
        old = self.workers[worker_id]
        self.workers[worker_id] = ServeProcess(
            old.data_dir, *old.args, port=old.port, env=self.env, name=worker_id,
            health_url=old.health_url)
        self.workers[worker_id].start()

    def kill_master(self, index: int = 0) -> None:
        self.masters[index].kill()

    def start_master(self, index: int = 0) -> None:
        self.masters[index] = self._master_process(index, port=self.masters[index].port)
        self.masters[index].start()

    async def chunks_on(self, worker_id: str) -> set[str]:
        """Ask the worker itself, over gRPC, which chunks it holds."""
        client = GrpcWorkerClient(worker_id, f"127.0.0.1:{self.worker_grpc[worker_id]}",
                                  cluster_token=self.env.get("CLUSTER_TOKEN"))
        try:
            return {chunk_id async for chunk_id in client.list_chunks()}
        finally:
            await client.close()

    def stop(self) -> None:
        for worker in self.workers.values():
            worker.kill()
        for master in self.masters:
            master.kill()
        if self.controller is not None:
            self.controller.kill()

    def __enter__(self) -> ProcessCluster:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()
