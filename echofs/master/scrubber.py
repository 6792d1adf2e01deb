"""The scrubber: walks every recorded replica and has its worker re-verify it.

Bit rot, a deleted file or a wiped disk is found here even if no client ever
reads the chunk again. Verification happens on the worker (only the verdict
travels) and is paced to ``rate`` stored bytes per second so scrubbing never
competes seriously with client traffic. Bad copies become durable repair tasks
for the replicator. The walk resumes where it stopped and starts over at the
end, so every copy is checked once per cycle.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from echofs.core.vocabulary import Liveness, ReplicationReason, Verdict
from echofs.daemon import Daemon
from echofs.master.membership import WorkerRegistry
from echofs.metadata.repository import MetadataRepository

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ScrubReport:
    checked: int
    bad: int
    skipped: int
    cycle_complete: bool


class Scrubber(Daemon):
    name = "scrubber"

    def __init__(self, repo: MetadataRepository, registry: WorkerRegistry, *,
                 interval: float, rate: float, batch: int = 200) -> None:
        super().__init__(interval)
        self.repo = repo
        self.registry = registry
        self.rate = rate
        self.batch = batch
        self._cursor: tuple[str, str] | None = None
        self.cycles = 0
        self.bad_found = 0

    async def run_once(self) -> ScrubReport:
        """Check the next batch of replicas."""
        page = await self.repo.replica_page(self._cursor, self.batch)
        started = time.monotonic()
        checked = bad = skipped = 0
        budget = 0
        for chunk_id, worker_id, size in page:
            self._cursor = (chunk_id, worker_id)
            client = self.registry.client(worker_id)
            if client is None or self.registry.liveness(worker_id) is not Liveness.ALIVE:
                skipped += 1  # a dead worker's copies are re-replicated, not scrubbed
                continue
            try:
                verdict = Verdict(await client.verify_chunk(chunk_id))
            except Exception as exc:
                log.debug("scrub of %s on %s failed: %s", chunk_id[:12], worker_id, exc)
                skipped += 1
                continue
            checked += 1
            if verdict is not Verdict.OK:
                bad += 1
                log.warning("scrubber found a %s copy of chunk %s on %s; repair queued",
                            verdict, chunk_id[:12], worker_id)
                await self.repo.enqueue_replication(chunk_id, worker_id,
                                                   ReplicationReason.scrub(verdict))
            budget += size
            if self.rate > 0:
                ahead = budget / self.rate - (time.monotonic() - started)
                if ahead > 0:
                    await asyncio.sleep(ahead)
        complete = len(page) < self.batch
        if complete:
            self._cursor = None
            self.cycles += 1
        self.bad_found += bad
        return ScrubReport(checked, bad, skipped, complete)

    async def scrub_all(self) -> ScrubReport:
        """One whole cycle, now (tests, operators)."""
        checked = bad = skipped = 0
        self._cursor = None
        while True:
            report = await self.run_once()
            checked, bad, skipped = (checked + report.checked, bad + report.bad,
                                     skipped + report.skipped)
            if report.cycle_complete:
                return ScrubReport(checked, bad, skipped, True)
