"""ControllerService on a real SQLite metadata store: signals to decisions,
levers, persistence across restarts, and the watch stream."""

from __future__ import annotations

import asyncio

import pytest

from echofs.controller.service import ControllerService
from echofs.controller.signals import FileActivity, MasterReport
from echofs.core.consistency import (
    DefaultPolicy,
    Hint,
    HysteresisConfig,
    Mode,
    ModeDecider,
    WorkerHealth,
)
from echofs.metadata import database
from echofs.metadata.repository import MetadataRepository


@pytest.fixture
async def repo(tmp_path):
    url = database.sqlite_url_for(tmp_path / "meta.db")
    await asyncio.to_thread(database.upgrade, url)
    repository = MetadataRepository(database.create_engine(url))
    yield repository
    await repository.close()


def _service(repo: MetadataRepository) -> ControllerService:
    decider = ModeDecider(DefaultPolicy(), HysteresisConfig(confirm_samples=2, cooldown=0))
    return ControllerService(repo.consistency, decider, sample_interval=0.1,
                             replication_factor=3)


def _report(*, down: tuple[str, ...] = (), files=("f1",)) -> MasterReport:
    workers = tuple(WorkerHealth(w, "suspect" if w in down else "alive", 1.0, 0.0)
                    for w in ("w1", "w2", "w3"))
    return MasterReport("m1", 0.1, 3, workers, 0, 0.0,
                        tuple(FileActivity(f, 5.0, ("w1", "w2", "w3")) for f in files))


async def test_unreachable_worker_is_an_emergency_and_is_audited(repo):
    service = _service(repo)
    await service.load()
    await service.report(_report())
    assert await service.run_once() == []
    await service.report(_report(down=("w3",)))
    (decision,) = await service.run_once()
    assert decision.mode is Mode.AVAILABLE and decision.reason == "emergency"
    (entry,) = await service.store.transitions()
    assert (entry.object_id, entry.from_mode, entry.to_mode) == ("f1", "strong", "available")
    assert entry.signals["partition_risk"] == 1.0
    assert entry.signals["unhealthy_workers"] == {"w3": 1.0}
    assert service.mode_of("f1").mode == "available"


async def test_levers_persist_across_a_restart(repo):
    service = _service(repo)
    await service.load()
    await service.set_hint("hinted", Hint.AVAILABLE)
    await service.add_critical(["crit"])
    await service.set_override(Mode.HYBRID)
    assert service.mode_of("hinted").mode == "hybrid"  # override beats hints
    assert service.mode_of("crit").mode == "strong"  # critical beats override
    assert service.mode_of("never-seen").mode == "hybrid"

    again = _service(repo)
    await again.load()
    assert again.controls.override is Mode.HYBRID
    assert again.controls.critical == {"crit"}
    assert again.controls.hints == {"hinted": Hint.AVAILABLE}
    assert again.mode_of("crit").mode == "strong"
    assert again.mode_of("hinted").mode == "hybrid"
    await again.set_override(None)
    assert again.mode_of("hinted").mode == "available"
    assert again.mode_of("never-seen").mode == "strong"


async def test_watch_sends_a_snapshot_then_changes(repo):
    service = _service(repo)
    await service.load()
    await service.add_critical(["c"])
    stream = service.watch()
    first = await anext(stream)
    assert first.snapshot and first.modes == {"c": ("strong", "critical")}
    await service.set_override(Mode.AVAILABLE)
    update = await asyncio.wait_for(anext(stream), 1)
    assert not update.snapshot
    assert update.default_mode == "available" or update.modes
    await stream.aclose()
    assert service.status()["watchers"] == 0


async def test_stale_reports_are_ignored(repo):
    service = _service(repo)
    await service.load()
    await service.report(_report(down=("w1", "w2")))
    service._reports["m1"] = (0.0, service._reports["m1"][1])  # received long ago
    assert await service.run_once() == []
