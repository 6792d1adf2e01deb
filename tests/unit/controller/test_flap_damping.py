"""The controller under a flapping link, on a simulated clock: a worker cut
and healed every 2 s for 30 s must not drag its files' modes along with it
(route flap damping), while a single partition is still forgotten about as
quickly as before."""

from __future__ import annotations

import asyncio
import types

import pytest

from echofs.controller import service as service_module
from echofs.controller.service import ControllerService
from echofs.controller.signals import FileActivity, MasterReport
from echofs.core.consistency import DefaultPolicy, HysteresisConfig, Mode, ModeDecider, WorkerHealth
from echofs.metadata import database
from echofs.metadata.repository import MetadataRepository

SAMPLE = 0.5  # the chaos cluster's SAMPLE_INTERVAL, CONFIRM_SAMPLES and MODE_COOLDOWN
CONFIG = HysteresisConfig(confirm_samples=3, cooldown=2)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def repo(tmp_path):
    url = database.sqlite_url_for(tmp_path / "meta.db")
    await asyncio.to_thread(database.upgrade, url)
    repository = MetadataRepository(database.create_engine(url))
    yield repository
    await repository.close()


@pytest.fixture
def clock(monkeypatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(service_module, "time",
                        types.SimpleNamespace(time=clock, monotonic=clock))
    return clock


def _report(down: bool, targets: tuple[str, ...]) -> MasterReport:
    workers = tuple(WorkerHealth(w, "suspect" if down and w == "w3" else "alive", 1.0, 0.0)
                    for w in ("w1", "w2", "w3", "w4"))
    return MasterReport("m1", SAMPLE, 3, workers, 0, 0.0, (FileActivity("f1", 5.0, targets),))


async def _run(repo, clock: Clock, down_at, *, writes_move: bool = False, seen_every: int = 1
               ) -> tuple[list[tuple[float, str]], float]:
    """Sample every SAMPLE s for 90 s; ``down_at(t)``: is w3 cut at t?
    ``writes_move``: as the master does, the file's writes go to live
    workers once w3 is noticed cut, so after the first sample of a cut its
    targets no longer include w3 — and with ``seen_every`` n, only every
    n-th cut finds w3 among them at all (the file was not written just then)."""
    service = ControllerService(repo.consistency, ModeDecider(DefaultPolicy(), CONFIG),
                                sample_interval=SAMPLE, replication_factor=3)
    await service.load()
    start, modes = clock.now, []
    t = 0.0
    while t < 90:
        clock.now = start + t
        cut = int((t - 10) // 4)
        moved = writes_move and down_at(t) and (down_at(t - SAMPLE) or cut % seen_every != 0)
        targets = ("w1", "w2", "w4") if moved else ("w1", "w2", "w3")
        await service.report(_report(down_at(t), targets))
        for decision in await service.run_once():
            modes.append((t, decision.mode.value))
        t += SAMPLE
    return modes, t


def _flapping(t: float) -> bool:
    # Healthy 10 s, then w3 cut 2 s / healed 2 s for 30 s, then healthy.
    return 10 <= t < 40 and int((t - 10) // 2) % 2 == 0


@pytest.mark.parametrize(("writes_move", "seen_every"), [(False, 1), (True, 1), (True, 3)])
async def test_a_flapping_link_does_not_flap_the_modes(repo, clock, writes_move, seen_every):
    modes, _ = await _run(repo, clock, _flapping, writes_move=writes_move, seen_every=seen_every)
    assert modes[0][1] == Mode.AVAILABLE  # the first cut still leaves strong at once
    # Out at the first cut, back once (a first heal looks like the end of a
    # single partition), out again, and back — through hybrid — once the
    # link is steady: not once per flip (15 flips here).
    assert len(modes) <= 5, modes
    assert all(t >= 40 for t, _ in modes[3:]), modes
    assert modes[-1][1] == Mode.STRONG  # and the file is strong again in the end


@pytest.mark.parametrize("writes_move", [False, True])
async def test_a_single_partition_is_forgotten_as_quickly_as_before(repo, clock, writes_move):
    modes, _ = await _run(repo, clock, lambda t: 10 <= t < 20, writes_move=writes_move)
    assert modes[0][1] == Mode.AVAILABLE
    back = [t for t, m in modes if m == Mode.STRONG]
    assert back and back[-1] - 20 <= 8, modes


async def test_a_file_first_hit_while_a_worker_flaps_is_held_out_of_strong(repo, clock):
    """w3 flaps from t=10; f1's writes only go to it at t=30 (first sample of
    that cut). Its first emergency then already counts as flapping: it stays
    available while w3 flaps, rather than returning at the next cooldown."""
    service = ControllerService(repo.consistency, ModeDecider(DefaultPolicy(), CONFIG),
                                sample_interval=SAMPLE, replication_factor=3)
    await service.load()
    start, modes, t = clock.now, [], 0.0
    while t < 40:
        clock.now = start + t
        targets = ("w1", "w2", "w3") if t == 30 else ("w1", "w2", "w4")
        await service.report(_report(_flapping(t), targets))
        modes += [(t, d.mode.value) for d in await service.run_once()]
        t += SAMPLE
    assert service.status()["flapping_workers"] == ["w3"]
    assert modes == [(30.0, Mode.AVAILABLE)]  # and no return before the flapping ends
