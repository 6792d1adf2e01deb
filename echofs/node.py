"""Builds the roles named by ``--role`` and owns their lifecycle.

Today the node knows the embedded default, role ``all``: one master and N
workers in one process, talking through the same :class:`WorkerClient`
interface a cluster uses. Start order is storage first (metadata, workers),
then the API; stop order is the reverse, draining in-flight requests first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from concurrent.futures import ThreadPoolExecutor

from aiohttp import web

from echofs.config import Settings
from echofs.master.membership import WorkerRegistry
from echofs.master.role import MasterRole
from echofs.metadata import database
from echofs.metadata.repository import MetadataRepository
from echofs.worker.client import LocalWorkerClient
from echofs.worker.heartbeat import Heartbeat
from echofs.worker.service import WorkerService, WorkerStatus
from echofs.worker.stores.local import LocalChunkStore

log = logging.getLogger("echofs.node")

# Seconds in-flight requests get to finish on SIGTERM before connections close.
_SHUTDOWN_GRACE = 30.0
_IO_THREADS = 32


class StartupError(Exception):
    """The node refuses to start; the message says why and what to do."""


class EmbeddedNode:
    """Role ``all``: master + in-process workers on local disk + SQLite."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.workers: list[WorkerService] = []
        self.heartbeats: list[Heartbeat] = []
        self.repo: MetadataRepository | None = None
        self.master: MasterRole | None = None
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    @property
    def url(self) -> str:
        host = self.settings.host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}"

    async def start(self) -> None:
        started = time.monotonic()
        settings = self.settings
        # Chunk writes spend most of their time in fsync; the default pool
        # (cores + 4 threads) would queue them behind each other.
        asyncio.get_running_loop().set_default_executor(
            ThreadPoolExecutor(max_workers=_IO_THREADS, thread_name_prefix="echofs-io"))
        check_bind_address(settings)
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        url = settings.metadata_url
        if settings.database_url is None:
            await asyncio.to_thread(database.upgrade, url)
        else:
            await _require_current_schema(url)
        self.repo = MetadataRepository(database.create_engine(url))
        registry = WorkerRegistry(suspect_after=settings.suspect_after,
                                  dead_after=settings.dead_after)
        for index in range(1, settings.workers + 1):
            await self._start_worker(f"w{index}", registry)
        self.master = MasterRole(settings, self.repo, registry, role_name="all")
        await self.master.start()
        self._runner = web.AppRunner(self.master.build_app(), access_log=None,
                                     shutdown_timeout=_SHUTDOWN_GRACE)
        await self._runner.setup()
        site = web.TCPSite(self._runner, settings.host, settings.port, reuse_address=True)
        await site.start()
        self.port = self._runner.addresses[0][1]
        log.info("echofs ready at %s (role all, %d workers, RF=%d, data in %s) in %.2fs",
                 self.url, settings.workers, settings.replication_factor,
                 settings.data_dir, time.monotonic() - started)

    async def _start_worker(self, worker_id: str, registry: WorkerRegistry) -> None:
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
        if self.master is not None:
            await self.master.stop()
        for heartbeat in self.heartbeats:
            await heartbeat.stop()
        for worker in self.workers:
            await worker.close()
        if self.repo is not None:
            await self.repo.close()

    async def __aenter__(self) -> EmbeddedNode:
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


def check_bind_address(settings: Settings) -> None:
    """Open (unauthenticated) mode is only safe on loopback."""
    if settings.binds_loopback:
        log.warning("single-user mode: no authentication, bound to %s (loopback only)",
                    settings.host)
        return
    raise StartupError(
        f"refusing to bind {settings.host}: without authentication EchoFS serves only "
        "loopback addresses (use --host 127.0.0.1). Accounts and JWT_SECRET support "
        "arrive with the authentication work."
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
    node = EmbeddedNode(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    async with node:
        await stop.wait()
        log.info("shutting down: draining requests and background work")
