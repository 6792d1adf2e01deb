"""Builds the roles named by ``--role`` and owns their lifecycle.

- ``all``: the embedded node — master + controller + N in-process workers on
  local disk, talking through the same client interfaces a cluster uses.
- ``master``: REST API, metadata, pipelines and daemons, plus the gRPC
  membership service remote workers register with.
- ``worker``: one chunk store served over gRPC, reporting to a master.
- ``controller``: the consistency controller (gRPC for masters, REST for
  operators); combined with ``master`` in one process they talk directly.

Start order is storage first (metadata, workers), then the APIs; stop order is
the reverse, draining in-flight requests first. Both come from one place: each
step of the start pushes its own stop onto the node's exit stack
(:class:`~echofs.serving.lifecycle.Lifecycle`), and the HTTP app and gRPC
server of every role are served by :func:`echofs.serving.endpoints.serving`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack

from aiohttp import web

from echofs import __version__
from echofs.auth.jwt_secret import MIN_SECRET_BYTES
from echofs.config import Settings
from echofs.controller.client import ControllerClient, LocalControllerClient
from echofs.controller.http_api import ControllerAPI
from echofs.controller.role import ControllerRole, build_controller
from echofs.controller.service import ControllerService
from echofs.core.errors import EchoFSError
from echofs.core.vocabulary import Role
from echofs.core.worker_status import WorkerStatus
from echofs.master.http_health import StorageLayout
from echofs.master.membership import WorkerRegistry
from echofs.master.role import MasterRole
from echofs.memory import settle_garbage_collector, trim_periodically
from echofs.metadata import backends
from echofs.metadata.ownership import MetadataInUse, SoleMasterLock, sqlite_path
from echofs.metadata.repository import MetadataRepository
from echofs.observability.metrics import untrack
from echofs.observability.state import track_controller
from echofs.rpc.controller import GrpcControllerClient
from echofs.rpc.membership import MembershipGrpcService
from echofs.serving.endpoints import role_grpc_server, serving
from echofs.serving.http_protocol import HttpLimits
from echofs.serving.lifecycle import Lifecycle
from echofs.worker.client import LocalWorkerClient
from echofs.worker.heartbeat import Heartbeat
from echofs.worker.role import WorkerRole
from echofs.worker.service import WorkerService
from echofs.worker.stores.volume import VolumeChunkStore

log = logging.getLogger("echofs.node")

# Seconds in-flight requests get to finish on SIGTERM before connections close.
_SHUTDOWN_GRACE = 30.0
_IO_THREADS = 32


class StartupError(Exception):
    """The node refuses to start; the message says why and what to do."""


class Node(Lifecycle):
    """The roles of one process. Each step of :meth:`_start` pushes its own
    stop onto the node's exit stack, so :meth:`stop` (or a start that fails
    half-way) unwinds exactly what was started, in reverse."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.workers: list[WorkerService] = []
        self.heartbeats: list[Heartbeat] = []
        self.repo: MetadataRepository | None = None
        self.master: MasterRole | None = None
        self.worker_role: WorkerRole | None = None
        self.controller: ControllerService | None = None
        self.controller_role: ControllerRole | None = None
        # The master's HTTP runner: tests reach its app through it.
        self._runner: web.AppRunner | None = None
        self.port: int | None = None
        self.grpc_port: int | None = None  # the master's membership service

    @property
    def url(self) -> str:
        return f"http://{_host(self.settings.host)}:{self.port}"

    async def _start(self, stack: AsyncExitStack) -> None:
        started = time.monotonic()
        settings = self.settings
        check_bind_address(settings)
        # Chunk writes spend most of their time in fsync; the default pool
        # (cores + 4 threads) would queue them behind each other.
        asyncio.get_running_loop().set_default_executor(
            ThreadPoolExecutor(max_workers=_IO_THREADS, thread_name_prefix="echofs-io"))
        if settings.serves_worker:
            worker_role = WorkerRole(settings)
            try:
                await stack.enter_async_context(worker_role)
            except EchoFSError as exc:  # a store that cannot open (no bucket, ...)
                raise StartupError(f"worker {settings.worker_id}: {exc.message}") from exc
            self.worker_role = worker_role
        if settings.opens_metadata:
            self.repo = await self._open_metadata(stack)
        if settings.runs_controller:
            await self._start_controller(stack, self.repo)
        if settings.runs_master:
            await self._start_master(stack, self.repo)
        log.info("echofs %s ready in %.2fs", ",".join(sorted(settings.roles)),
                 time.monotonic() - started)
        # One record per line: readable in the console format, one object
        # per line in JSON logs, and grep-able either way.
        for line in self.banner():
            log.info("%s", line)

    def banner(self) -> list[str]:
        """What a person needs once the node is up: where to point a browser
        or a client, where the data is, how safe the copies are, how to stop."""
        s = self.settings
        lines = [f"EchoFS {__version__} is ready ({', '.join(sorted(s.roles))})"]
        if self.master is not None:
            lines += [f"  API         {self.url}/api/v1  (OpenAPI: /api/v1/openapi.json)",
                      f"  Web UI      {self.url}/",
                      f"  Metrics     {self.url}/metrics"]
            scheme = "https" if s.s3_tls_cert else "http"
            lines.append(f"  S3          {scheme}://{_host(s.host)}:{self.master.s3_port}  "
                         "(path- or virtual-host-style; README: S3)"
                         if self.master.s3_port is not None else
                         "  S3          off (S3_PORT=off, or port 9000 was taken)")
            if self.grpc_port is not None:
                lines.append(f"  Membership  gRPC {_host(s.host)}:{self.grpc_port}  "
                             "(remote workers register here)")
        if self.controller_role is not None:
            lines.append(f"  Controller  http://{_host(s.host)}:{s.controller_http_port}, "
                         f"gRPC {_host(s.host)}:{s.controller_grpc_port}")
        elif self.master is not None:
            lines.append(self._controller_line())
        if self.worker_role is not None:
            lines.append(f"  Worker      {s.worker_id}: gRPC {_host(s.host)}:"
                         f"{s.worker_grpc_port}, health http://{_host(s.host)}:{s.http_port}"
                         f"/health, store {self.worker_role.service.store.description}, "
                         f"master {s.master}")
        if s.opens_metadata:
            lines.append(f"  Data        {s.data_dir.resolve()}" if s.database_url is None
                         else f"  Metadata    {_redacted(s.database_url)}")
        if self.master is not None:
            lines += self._storage_lines()
            lines.append("  Users       " + (
                "single-user: no accounts, no sign-in (loopback only); set JWT_SECRET "
                "for accounts" if s.jwt_secret is None else
                "accounts: register or `echofs login` (the first account is admin)"))
        lines.append("  Stop        Ctrl-C (or SIGTERM): requests in flight finish first")
        return lines

    def _controller_line(self) -> str:
        s = self.settings
        if self.controller is not None:
            return "  Controller  in this process (REST under /api/v1/consistency)"
        if s.controller:
            return (f"  Controller  reports to {s.controller} (REST via /api/v1/consistency "
                    f"from {s.controller_rest_url})")
        return (f"  Controller  none: every file uses the default mode, {s.default_mode}; "
                "`echofs admin` consistency tools need one (--controller)")

    def _storage_lines(self) -> list[str]:
        s = self.settings
        if s.embedded:
            note = StorageLayout(shared_disk=True, local_workers=s.workers).note()
            where = f"{s.replication_factor} copies of each chunk; {note}"
        else:
            where = (f"{s.replication_factor} copies of each chunk, on workers that register "
                     "over gRPC")
        grace = s.gc_grace / 60
        return [f"  Replicas    {where}",
                f"  Deleting    frees the space {grace:.0f} min after a file is deleted "
                "(GC_GRACE_SECONDS; /api/v1/health shows what waits)"]

    async def _open_metadata(self, stack: AsyncExitStack) -> MetadataRepository:
        settings = self.settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        url = settings.metadata_url
        database_file = sqlite_path(url)
        sole_master = database_file is not None and settings.runs_master
        if sole_master:
            # SQLite: this master must be the file's only one, which also
            # lets the repository keep read answers in memory.
            lock = SoleMasterLock(database_file)
            try:
                lock.acquire()
            except MetadataInUse as exc:
                raise StartupError(str(exc)) from None
            stack.callback(lock.release)
        try:
            await backends.prepare(url, migrate=settings.database_url is None)
        except ValueError as exc:
            raise StartupError(str(exc)) from None
        repo = backends.open_metadata(url)
        stack.push_async_callback(repo.close)
        if sole_master:
            repo.keep_read_answers()
        return repo

    async def _start_controller(self, stack: AsyncExitStack,
                                repo: MetadataRepository | None) -> None:
        assert repo is not None
        controller = build_controller(self.settings, repo)
        stack.push_async_callback(controller.stop)  # harmless if it never started
        await controller.load()
        controller.start()
        track_controller(controller)
        stack.callback(untrack, controller)
        self.controller = controller
        if self.settings.serves_controller:
            self.controller_role = await stack.enter_async_context(
                ControllerRole(self.settings, controller))

    def _controller_client(self) -> ControllerClient | None:
        if self.controller is not None:
            return LocalControllerClient(self.controller)
        if self.settings.controller:
            return GrpcControllerClient(self.settings.controller, self.settings.cluster_token)
        return None

    async def _start_master(self, stack: AsyncExitStack,
                            repo: MetadataRepository | None) -> None:
        settings = self.settings
        assert repo is not None
        registry = WorkerRegistry(suspect_after=settings.suspect_after,
                                  dead_after=settings.dead_after)
        role_name = Role.ALL if settings.embedded else Role.MASTER
        if settings.embedded:
            for index in range(1, settings.workers + 1):
                await self._start_local_worker(stack, f"w{index}", registry)
        else:
            # Workers that hold data get the usual timeouts to re-register
            # before they are declared dead (this master may have restarted).
            registry.expect(await repo.known_worker_ids())
        stack.push_async_callback(_close_clients, registry)
        master = MasterRole(
            settings, repo, registry, role_name=role_name,
            controller=self._controller_client(),
            controller_api=ControllerAPI(self.controller) if self.controller else None)
        # Stopped even when its start fails half-way: it stops what it started.
        stack.push_async_callback(master.stop)
        self.master = master
        await master.start()
        # Remote workers register over gRPC; the embedded node's are in-process.
        membership = None if settings.embedded else role_grpc_server([MembershipGrpcService(
            registry, heartbeat_interval=settings.heartbeat_interval,
            on_worker_up=master.replicator.worker_up,
            cluster_token=settings.cluster_token)], settings.cluster_token)
        served = await stack.enter_async_context(serving(
            master.build_app(), host=settings.host, http_port=settings.port,
            grpc=membership, grpc_port=settings.master_grpc_port,
            shutdown_grace=_SHUTDOWN_GRACE, limits=HttpLimits.from_settings(settings)))
        self._runner = served.runner
        self.port = served.port
        self.grpc_port = served.grpc_port
        grpc = f", gRPC {served.grpc_port}" if served.grpc_port is not None else ""
        log.info("master at %s%s (RF=%d, %s, data in %s)", self.url, grpc,
                 settings.replication_factor,
                 f"{settings.workers} in-process workers" if settings.embedded
                 else "workers register over gRPC", settings.data_dir)

    async def _start_local_worker(self, stack: AsyncExitStack, worker_id: str,
                                  registry: WorkerRegistry) -> None:
        root = self.settings.data_dir / "workers" / worker_id
        service = WorkerService(worker_id, VolumeChunkStore(
            root, reserve=self.settings.store_space_reserve))
        await service.open()
        stack.push_async_callback(service.close)
        registry.register(LocalWorkerClient(service))

        async def report(status: WorkerStatus) -> None:
            registry.heartbeat(worker_id, status)

        heartbeat = Heartbeat(service, report, interval=self.settings.heartbeat_interval)
        stack.push_async_callback(heartbeat.stop)
        await heartbeat.run_once()  # known and alive before the first request
        heartbeat.start()
        self.workers.append(service)
        self.heartbeats.append(heartbeat)


class EmbeddedNode(Node):
    """Role ``all``: master + in-process workers on local disk + SQLite."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings.replace(role=Role.ALL))


def _host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _redacted(url: str) -> str:
    """A database URL without its password (the banner goes to logs)."""
    scheme, sep, rest = url.partition("://")
    credentials, at, place = rest.rpartition("@")
    if not at or ":" not in credentials:
        return url
    return f"{scheme}{sep}{credentials.split(':', 1)[0]}:***@{place}"


async def _close_clients(registry: WorkerRegistry) -> None:
    """The registry's worker clients (gRPC channels), once the master that
    used them has stopped."""
    for client in registry.clients():
        await client.close()


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
        f"(at least {MIN_SECRET_BYTES} bytes) for accounts, or bind a loopback address "
        "(--host 127.0.0.1)"
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
        settle_garbage_collector()
        await stop.wait()
        trimmer.cancel()
        log.info("shutting down: draining requests and background work")
