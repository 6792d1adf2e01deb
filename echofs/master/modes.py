"""The master's side of adaptive consistency.

- :class:`ModeTable` — the local copy of the controller's decisions. Reads and
  writes consult only this table: nothing on a request's path waits for the
  controller. Without a decision for a file, the table's default applies
  (``DEFAULT_MODE``, or the override the controller announced).
- :class:`WriteActivity` — per-file write counts and the workers they went to.
- :class:`ControllerLink` — every sample interval, reports this master's
  measurements to the controller; a watch stream keeps the table current. If
  the controller goes away the table keeps its last state; when it returns,
  the first message of the new watch (a snapshot) resynchronises it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from collections.abc import Iterable

from echofs.controller.client import ControllerClient
from echofs.controller.signals import FileActivity, MasterReport, ModeUpdate
from echofs.core.consistency import Hint, Mode, ModeReason, WorkerHealth
from echofs.core.vocabulary import Liveness
from echofs.daemon import Daemon
from echofs.master.membership import WorkerRegistry
from echofs.metadata.repository import MetadataRepository

log = logging.getLogger(__name__)

# Files count as active (reported to the controller) this long after a write.
_ACTIVE_WINDOW = 10.0
_WATCH_RETRY = 1.0


class ModeTable:
    def __init__(self, default_mode: Mode) -> None:
        self.configured_default = default_mode
        self.default_mode = default_mode
        self._modes: dict[str, tuple[Mode, ModeReason]] = {}
        # How many files a write could treat otherwise than the default.
        self._special = 0
        self.synced_at: float | None = None

    def apply(self, update: ModeUpdate) -> None:
        if update.snapshot:
            self._modes.clear()
        for object_id, (mode, reason) in update.modes.items():
            self._modes[object_id] = (Mode(mode), ModeReason(reason))
        self.default_mode = Mode(update.default_mode)
        # Counted again here, where the default may have changed too: once
        # a second at most, never on a request's path.
        self._special = sum(1 for mode, reason in self._modes.values()
                            if mode is not self.default_mode or reason is ModeReason.CRITICAL)
        self.synced_at = time.time()

    def lookup(self, object_id: str | None) -> tuple[Mode, ModeReason]:
        if object_id is not None and object_id in self._modes:
            return self._modes[object_id]
        return self.default_mode, ModeReason.DEFAULT

    def has_file_modes(self) -> bool:
        """Whether any file's own mode (or critical flag) differs from the
        default: if none does, a write need not find its file first."""
        return self._special > 0

    def mode_for_write(self, object_id: str | None, hint: Hint | None) -> Mode:
        """The mode one write uses: the request's hint, unless the file is a
        critical key (always strong); else the controller's decision."""
        mode, reason = self.lookup(object_id)
        if reason is ModeReason.CRITICAL:
            return Mode.STRONG
        if hint is not None and hint is not Hint.AUTO:
            return Mode(hint.value)
        return mode

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys((m.value for m in Mode), 0)
        for mode, _ in self._modes.values():
            counts[mode.value] += 1
        return counts


class WriteActivity:
    def __init__(self) -> None:
        self._counts: dict[str, int] = defaultdict(int)
        self._last: dict[str, tuple[float, tuple[str, ...]]] = {}

    def record(self, object_id: str, workers: Iterable[str]) -> None:
        self._counts[object_id] += 1
        self._last[object_id] = (time.monotonic(), tuple(sorted(set(workers))))

    def drain(self, interval: float) -> list[FileActivity]:
        """Rates since the last drain for every recently written file."""
        now = time.monotonic()
        active = []
        for object_id, (at, workers) in list(self._last.items()):
            if now - at > _ACTIVE_WINDOW:
                del self._last[object_id]
                continue
            rate = self._counts.get(object_id, 0) / max(interval, 1e-6)
            active.append(FileActivity(object_id, rate, workers))
        self._counts.clear()
        return active


class ControllerLink(Daemon):
    name = "controller-link"

    def __init__(self, client: ControllerClient, table: ModeTable, registry: WorkerRegistry,
                 repo: MetadataRepository, activity: WriteActivity, *, master_id: str,
                 replication_factor: int, interval: float) -> None:
        super().__init__(interval)
        self.client = client
        self.table = table
        self.registry = registry
        self.repo = repo
        self.activity = activity
        self.master_id = master_id
        self.replication_factor = replication_factor
        self._calls: dict[str, tuple[int, int]] = {}
        self._watch: asyncio.Task[None] | None = None
        self._last_report = time.monotonic()
        self._reachable = True
        self.connected = False

    def start(self) -> None:
        super().start()
        if self._watch is None:
            self._watch = asyncio.create_task(self._watch_loop(), name="controller-watch")

    async def stop(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
            self._watch = None
        await super().stop()
        await self.client.close()

    def _worker_signals(self) -> tuple[WorkerHealth, ...]:
        signals = []
        for row in self.registry.snapshot():
            worker_id = str(row["id"])
            calls, failures = int(row["calls"] or 0), int(row["failures"] or 0)
            prev_calls, prev_failures = self._calls.get(worker_id, (calls, failures))
            self._calls[worker_id] = (calls, failures)
            attempted = calls - prev_calls
            error_rate = (failures - prev_failures) / attempted if attempted > 0 else 0.0
            signals.append(WorkerHealth(worker_id, Liveness(row["state"]),
                                        float(row["rtt_ms"] or 0.0), error_rate))
        return tuple(signals)

    async def run_once(self) -> None:
        now = time.monotonic()
        interval, self._last_report = now - self._last_report, now
        depth, oldest = await self.repo.replication_backlog()
        report = MasterReport(
            master_id=self.master_id, interval=interval,
            replication_factor=self.replication_factor, workers=self._worker_signals(),
            queue_depth=depth, oldest_age=max(0.0, time.time() - oldest) if oldest else 0.0,
            files=tuple(self.activity.drain(interval)),
        )
        try:
            await self.client.report(report)
        except Exception as exc:
            self._unreachable(exc)
            return
        self._reachable_again()

    async def _watch_loop(self) -> None:
        while True:
            try:
                async for update in self.client.watch(self.master_id):
                    self.table.apply(update)
                    self.connected = True
                    self._reachable_again()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._unreachable(exc)
            self.connected = False
            await asyncio.sleep(_WATCH_RETRY)

    def _unreachable(self, exc: BaseException) -> None:
        if self._reachable:
            log.warning("controller unreachable (%s); keeping the last known modes", exc)
        self._reachable = False

    def _reachable_again(self) -> None:
        if not self._reachable:
            log.info("controller reachable again; modes resynchronised")
        self._reachable = True
