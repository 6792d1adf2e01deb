"""Builds the roles named by ``--role`` and owns their lifecycle.

- ``all``: the embedded node — master + controller + N in-process workers on
  local disk, talking through the same client interfaces a cluster uses.
- ``master``: REST API, metadata, pipelines and daemons, plus the gRPC
  membership service remote workers register with.
- ``worker``: one chunk store served over gRPC, reporting to a master.
- ``controller``: the consistency controller (gRPC for masters, REST for
  operators); combined with ``master`` in one process they talk directly.

Start order is storage first (metadata, workers), then the APIs; stop order is
the reverse, draining in-flight requests first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from concurrent.futures import ThreadPoolExecutor

from aiohttp import web
from grpclib.server import Server

from echofs.config import Settings
from echofs.controller.client import ControllerClient, LocalControllerClient
from echofs.controller.http_api import ControllerAPI
from echofs.controller.role import ControllerRole, build_controller
from echofs.controller.service import ControllerService
from echofs.core.errors import EchoFSError
from echofs.master.membership import WorkerRegistry
from echofs.master.role import MasterRole
from echofs.memory import trim_periodically
from echofs.metadata import database
from echofs.metadata.ownership import MetadataInUse, SoleMasterLock, sqlite_path
from echofs.metadata.repository import MetadataRepository
from echofs.observability.grpc import instrument_server
from echofs.observability.metrics import untrack
from echofs.observability.state import track_controller
from echofs.rpc.cluster_auth import require_cluster_token
from echofs.rpc.controller import GrpcControllerClient
from echofs.rpc.membership import MembershipGrpcService
from echofs.worker.client import LocalWorkerClient
from echofs.worker.heartbeat import Heartbeat
from echofs.worker.role import WorkerRole
from echofs.worker.service import WorkerService, WorkerStatus
from echofs.worker.stores.local import LocalChunkStore

log = logging.getLogger("echofs.node")

# Seconds in-flight requests get to finish on SIGTERM before connections close.
_SHUTDOWN_GRACE = 30.0
_IO_THREADS = 32


class StartupError(Exception):
    """The node refuses to start; the message says why and what to do."""


class Node:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.roles = settings.roles
        self.workers: list[WorkerService] = []
        self.heartbeats: list[Heartbeat] = []
        self.repo: MetadataRepository | None = None
        self.master: MasterRole | None = None
        self.worker_role: WorkerRole | None = None
        self.controller: ControllerService | None = None
        self.controller_role: ControllerRole | None = None
        self._runner: web.AppRunner | None = None
        self._grpc: Server | None = None
        self._sole_master: SoleMasterLock | None = None
        self.port: int | None = None

    @property
    def url(self) -> str:
        host = self.settings.host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}"

    async def start(self) -> None:
        started = time.monotonic()
        settings = self.settings
        check_bind_address(settings)
        # Chunk writes spend most of their time in fsync; the default pool
        # (cores + 4 threads) would queue them behind each other.
        asyncio.get_running_loop().set_default_executor(
            ThreadPoolExecutor(max_workers=_IO_THREADS, thread_name_prefix="echofs-io"))
        if "worker" in self.roles:
            self.worker_role = WorkerRole(settings)
            try:
                await self.worker_role.start()
            except EchoFSError as exc:  # a store that cannot open (no bucket, ...)
                raise StartupError(f"worker {settings.worker_id}: {exc.message}") from exc
        if self.roles & {"all", "master", "controller"}:
            await self._open_metadata()
        if self.roles & {"all", "controller"}:
            await self._start_controller()
        if self.roles & {"all", "master"}:
            await self._start_master()
        log.info("echofs %s ready in %.2fs", ",".join(sorted(self.roles)),
                 time.monotonic() - started)

    async def _open_metadata(self) -> None:
        settings = self.settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        url = settings.metadata_url
        database_file = sqlite_path(url)
        if database_file is not None and self.roles & {"all", "master"}:
            # SQLite: this master must be the file's only one, which also
            # lets the repository keep read answers in memory.
            lock = SoleMasterLock(database_file)
            try:
                lock.acquire()
            except MetadataInUse as exc:
                raise StartupError(str(exc)) from None
            self._sole_master = lock
        if settings.database_url is None:
            await asyncio.to_thread(database.upgrade, url)
        else:
            await _require_current_schema(url)
        self.repo = MetadataRepository(database.create_engine(url))
        if self._sole_master is not None:
            self.repo.keep_read_answers()

    async def _start_controller(self) -> None:
        assert self.repo is not None
        self.controller = build_controller(self.settings, self.repo)
        await self.controller.load()
        self.controller.start()
        track_controller(self.controller)
        if "controller" in self.roles:
            self.controller_role = ControllerRole(self.settings, self.controller)
            await self.controller_role.start()

    def _controller_client(self) -> ControllerClient | None:
        if self.controller is not None:
            return LocalControllerClient(self.controller)
        if self.settings.controller:
            return GrpcControllerClient(self.settings.controller, self.settings.cluster_token)
        return None

    async def _start_master(self) -> None:
        settings = self.settings
        assert self.repo is not None
        registry = WorkerRegistry(suspect_after=settings.suspect_after,
                                  dead_after=settings.dead_after)
        role_name = "all" if "all" in self.roles else "master"
        if "all" in self.roles:
            for index in range(1, settings.workers + 1):
                await self._start_local_worker(f"w{index}", registry)
        else:
            # Workers that hold data get the usual timeouts to re-register
            # before they are declared dead (this master may have restarted).
            registry.expect(await self.repo.known_worker_ids())
        self.master = MasterRole(
            settings, self.repo, registry, role_name=role_name,
            controller=self._controller_client(),
            controller_api=ControllerAPI(self.controller) if self.controller else None)
        await self.master.start()
        if role_name == "master":
            grpc_server = require_cluster_token(instrument_server(Server([MembershipGrpcService(
                registry, heartbeat_interval=settings.heartbeat_interval,
                on_worker_up=self.master.replicator.worker_up,
                cluster_token=settings.cluster_token)])), settings.cluster_token)
            await grpc_server.start(settings.host, settings.master_grpc_port)
            self._grpc = grpc_server
        self._runner = web.AppRunner(self.master.build_app(), access_log=None,
                                     shutdown_timeout=_SHUTDOWN_GRACE)
        await self._runner.setup()
        site = web.TCPSite(self._runner, settings.host, settings.port, reuse_address=True)
        await site.start()
        self.port = self._runner.addresses[0][1]
        grpc = f", gRPC {settings.master_grpc_port}" if self._grpc else ""
        log.info("master at %s%s (RF=%d, %s, data in %s)", self.url, grpc,
                 settings.replication_factor,
                 f"{settings.workers} in-process workers" if role_name == "all"
                 else "workers register over gRPC", settings.data_dir)

    async def _start_local_worker(self, worker_id: str, registry: WorkerRegistry) -> None:
        root = self.settings.data_dir / "workers" / worker_id
        service = WorkerService(worker_id, LocalChunkStore(root))
        await service.open()
        registry.register(LocalWorkerClient(service))

        async def report(status: WorkerStatus) -> None:
            registry.heartbeat(worker_id, status)

        heartbeat = Heartbeat(service, report, interval=self.settings.heartbeat_interval)
        await heartbeat.run_once()  # known and alive before the first request
        heartbeat.start()
        self.workers.append(service)
        self.heartbeats.append(heartbeat)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()  # stop accepting, drain in-flight requests
            self._runner = None
        if self._grpc is not None:
            self._grpc.close()
            await self._grpc.wait_closed()
            self._grpc = None
        if self.master is not None:
            await self.master.stop()
            for client in self.master.registry.clients():
                await client.close()
        if self.controller_role is not None:
            await self.controller_role.stop()
            self.controller_role = None
        if self.controller is not None:
            untrack(self.controller)
            await self.controller.stop()
            self.controller = None
        for heartbeat in self.heartbeats:
            await heartbeat.stop()
        for worker in self.workers:
            await worker.close()
        if self.repo is not None:
            await self.repo.close()
            self.repo = None
        if self._sole_master is not None:
            self._sole_master.release()
            self._sole_master = None
        if self.worker_role is not None:
            await self.worker_role.stop()
            self.worker_role = None

    async def __aenter__(self) -> Node:
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


class EmbeddedNode(Node):
    """Role ``all``: master + in-process workers on local disk + SQLite."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings.replace(role="all"))


def check_bind_address(settings: Settings) -> None:
    """Open (unauthenticated) mode is only safe on loopback."""
    if settings.jwt_secret is not None:
        return
    if settings.binds_loopback:
        log.warning("single-user mode: no authentication, bound to %s (loopback only); "
                    "set JWT_SECRET for accounts", settings.host)
        return
    raise StartupError(
        f"refusing to bind {settings.host} without authentication: set JWT_SECRET "
        "(at least 32 bytes) for accounts, or bind a loopback address (--host 127.0.0.1)"
    )


async def _require_current_schema(url: str) -> None:
    current = await asyncio.to_thread(database.current, url)
    head = database.head_revision()
    if current != head:
        raise StartupError(
            f"metadata schema at {current or 'nothing'}, this EchoFS needs {head}: "
            "run `echofs db upgrade` first"
        )


async def serve(settings: Settings) -> None:
    """Run the node until SIGINT/SIGTERM, then shut down cleanly."""
    node = Node(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    async with node:
        trimmer = asyncio.create_task(trim_periodically(), name="malloc-trim")
        await stop.wait()
        trimmer.cancel()
        log.info("shutting down: draining requests and background work")
