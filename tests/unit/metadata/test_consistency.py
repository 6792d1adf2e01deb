"""The consistency controller's state in the store, on SQLite, PostgreSQL and
DynamoDB: modes and their audit log written together, the log's queries
(one file, newest first, paged by id), hints, critical keys and the
override; and a controller that restarts on the store finds its levers."""

from __future__ import annotations

from echofs.controller.service import ControllerService
from echofs.core.consistency import DefaultPolicy, Hint, HysteresisConfig, Mode, ModeDecider
from echofs.metadata.consistency import Transition
from echofs.metadata.repository import MetadataRepository

from .conftest import ALL_BACKENDS

METADATA_BACKENDS = ALL_BACKENDS


def change(object_id: str, at: float, old: str, new: str, score: float | None = 0.5
           ) -> Transition:
    return Transition(0, at, object_id, old, new, "policy", score,
                      {"partition_risk": 0.25, "workers": {"w1": 1.0}})


async def test_transitions_set_modes_and_are_audited_newest_first(
        repo: MetadataRepository) -> None:
    store = repo.consistency
    assert await store.modes() == [] and await store.transitions() == []
    await store.record_transitions([change("a", 10.0, "strong", "available"),
                                    change("b", 11.0, "strong", "hybrid", None)])
    await store.record_transitions([change("a", 12.0, "available", "strong", 0.125)])
    await store.record_transitions([])
    modes = {m.object_id: m for m in await store.modes()}
    assert set(modes) == {"a", "b"}
    assert (modes["a"].mode, modes["a"].score, modes["a"].changed_at) == (Mode.STRONG, 0.125,
                                                                          12.0)
    assert (modes["b"].mode, modes["b"].reason, modes["b"].score) == (Mode.HYBRID, "policy",
                                                                      None)
    log = await store.transitions()
    assert [(t.object_id, t.at) for t in log] == [("a", 12.0), ("b", 11.0), ("a", 10.0)]
    assert log[0].id > log[1].id > log[2].id
    assert log[2].from_mode is Mode.STRONG and log[2].to_mode is Mode.AVAILABLE
    assert log[2].signals == {"partition_risk": 0.25, "workers": {"w1": 1.0}}
    assert [t.at for t in await store.transitions(object_id="a")] == [12.0, 10.0]
    assert await store.transitions(object_id="never") == []
    assert [t.at for t in await store.transitions(limit=2)] == [12.0, 11.0]
    assert [t.at for t in await store.transitions(before_id=log[1].id)] == [10.0]
    assert [t.at for t in await store.transitions(object_id="a", before_id=log[0].id)] == [
        10.0]
    assert await store.transitions(before_id=log[2].id) == []
    assert await store.transitions(before_id=0) == []
    assert await store.transitions(before_id=-5) == []
    # Beyond any id (the HTTP API takes 64-bit values; PostgreSQL's id is 32-bit).
    assert [t.at for t in await store.transitions(before_id=2**62)] == [
        t.at for t in await store.transitions()]
    assert len(await store.transitions(before_id=2 ** 31 - 1)) == 3


async def test_a_large_batch_naming_a_file_twice_keeps_its_last_mode(
        repo: MetadataRepository) -> None:
    store = repo.consistency
    batch = [change(f"f{n}", float(n), "strong", "available") for n in range(120)]
    batch.append(change("f7", 500.0, "available", "hybrid"))
    await store.record_transitions(batch)
    modes = {m.object_id: m.mode for m in await store.modes()}
    assert len(modes) == 120 and modes["f7"] is Mode.HYBRID and modes["f8"] is Mode.AVAILABLE
    log = await store.transitions(limit=1000)
    assert len(log) == 121 and len({t.id for t in log}) == 121
    assert [t.to_mode for t in await store.transitions(object_id="f7")] == [
        Mode.HYBRID, Mode.AVAILABLE]


async def test_levers_are_stored_and_lifted(repo: MetadataRepository) -> None:
    store = repo.consistency
    await store.set_hint("x", "available")
    await store.set_hint("y", "strong")
    await store.set_hint("x", "hybrid")
    await store.set_hint("y", "auto")  # auto: no hint at all
    await store.set_hint("z", "auto")
    assert await store.hints() == {"x": "hybrid"}
    await store.add_critical_keys(["k1", "k2", "k1"])
    await store.add_critical_keys(["k2", "k3"])
    await store.remove_critical_keys(["k1", "never"])
    assert await store.critical_keys() == {"k2", "k3"}
    assert await store.override() is None
    await store.set_override("hybrid")
    await store.set_override("available")
    assert await store.override() == "available"
    await store.set_override(None)
    await store.set_override(None)
    assert await store.override() is None


async def test_a_restarted_controller_finds_its_levers_and_modes(
        repo: MetadataRepository) -> None:
    def service() -> ControllerService:
        decider = ModeDecider(DefaultPolicy(), HysteresisConfig(confirm_samples=2, cooldown=0))
        return ControllerService(repo.consistency, decider, sample_interval=0.1,
                                 replication_factor=3)

    first = service()
    await first.load()
    await first.set_hint("hinted", Hint.AVAILABLE)
    await first.add_critical(["crit"])
    await first.set_override(Mode.HYBRID)
    again = service()
    await again.load()
    assert again.controls.override is Mode.HYBRID
    assert again.controls.critical == {"crit"}
    assert again.controls.hints == {"hinted": Hint.AVAILABLE}
    assert again.mode_of("crit").mode == "strong"
    await again.set_override(None)
    assert again.mode_of("hinted").mode == "available"
