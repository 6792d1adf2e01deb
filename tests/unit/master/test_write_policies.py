"""Write policies per mode: copies needed, which targets get a copy, and the
reasons the owed copies are queued with — against fakes, no sockets."""

from __future__ import annotations

import asyncio

import pytest

from echofs.core.chunk_codec import EncodedChunk
from echofs.core.consistency import Mode
from echofs.core.errors import InsufficientStorage, QuorumNotReached
from echofs.core.vocabulary import ReplicationReason
from echofs.master.placement import WriteTargets
from echofs.master.policy_router import ModeRouter
from echofs.master.read_policies import READ_POLICIES
from echofs.master.write_policies import (
    WRITE_POLICIES,
    ChunkWrite,
    QuorumWrite,
    SloppyWrite,
    TargetCopyWrite,
    WriteTools,
)

CHUNK = EncodedChunk("c" * 64, raw_size=10, compressed=False, frame=b"0123456789")


class FakeChunkIO:
    """Puts succeed, unless the worker is told to fail or to hang."""

    def __init__(self, failing: tuple[str, ...] = (), hanging: tuple[str, ...] = (),
                 full: tuple[str, ...] = ()) -> None:
        self.failing, self.hanging, self.full = failing, hanging, full
        self.stored: list[str] = []

    def can_chain(self, worker_ids: list[str], frame_size: int) -> bool:
        return False  # in-process fakes: fan-out (the pipeline: test_write_chain)

    async def put(self, worker_id: str, chunk_id: str, frame: bytes) -> None:
        if worker_id in self.hanging:
            await asyncio.Event().wait()
        if worker_id in self.full:
            raise InsufficientStorage(f"{worker_id} is down to its reserve")
        if worker_id in self.failing:
            raise ConnectionError(f"{worker_id} refused")
        self.stored.append(worker_id)


class FakeRepo:
    def __init__(self) -> None:
        self.intents: list[tuple[str, str, str]] = []
        self.partial: list[tuple[str, str, list[str], str]] = []

    async def enqueue_replication(self, chunk_id: str, worker_id: str, reason: str) -> None:
        self.intents.append((chunk_id, worker_id, reason))

    async def record_partial_write(self, chunk_id: str, stored_on: str, owed: list[str],
                                   reason: str) -> None:
        self.partial.append((chunk_id, stored_on, list(owed), reason))


class FakeStragglers:
    def __init__(self) -> None:
        self.adopted: dict[asyncio.Task[None], str] = {}

    def adopt(self, chunk_id: str, puts: dict[asyncio.Task[None], str]) -> None:
        self.adopted.update(puts)

    async def cancel(self) -> None:
        for task in self.adopted:
            task.cancel()
        await asyncio.gather(*self.adopted, return_exceptions=True)


class FakePlacement:
    def __init__(self, replication_factor: int = 3, rtt_order: tuple[str, ...] = ()) -> None:
        self.replication_factor = replication_factor
        self.rtt_order = rtt_order

    def fastest_first(self, workers) -> list[str]:
        return sorted(workers, key=lambda w: (self.rtt_order.index(w)
                                              if w in self.rtt_order else 99, w))


def tools(chunk_io: FakeChunkIO, placement: FakePlacement | None = None
          ) -> tuple[WriteTools, FakeRepo, FakeStragglers]:
    repo, stragglers = FakeRepo(), FakeStragglers()
    return (WriteTools(repo, chunk_io, placement or FakePlacement(), stragglers),  # type: ignore[arg-type]
            repo, stragglers)


def write(targets: list[str], live: set[str], recorded: tuple[str, ...] = (),
          held: list[str] | None = None, full: tuple[str, ...] = ()) -> ChunkWrite:
    return ChunkWrite(CHUNK, recorded, held or [],
                      WriteTargets(targets, frozenset(live), frozenset(full)))


# -- the registry ------------------------------------------------------------------------


def test_every_mode_has_a_write_and_a_read_policy():
    assert WRITE_POLICIES.modes() == set(Mode)
    assert READ_POLICIES.modes() == set(Mode)
    assert isinstance(WRITE_POLICIES[Mode.STRONG], QuorumWrite)
    assert isinstance(WRITE_POLICIES[Mode.HYBRID], TargetCopyWrite)
    assert isinstance(WRITE_POLICIES[Mode.AVAILABLE], SloppyWrite)


def test_a_mode_registered_twice_is_refused():
    router: ModeRouter[object] = ModeRouter("test")
    router.register(Mode.STRONG)(object)
    with pytest.raises(ValueError, match="registered twice"):
        router.register(Mode.STRONG)(object)


@pytest.mark.parametrize(("mode", "rf", "needed"), [
    (Mode.STRONG, 1, 1), (Mode.STRONG, 3, 2), (Mode.STRONG, 5, 3),
    (Mode.HYBRID, 3, 1), (Mode.AVAILABLE, 3, 1), (Mode.AVAILABLE, 5, 1),
])
def test_copies_needed(mode, rf, needed):
    assert WRITE_POLICIES[mode].copies_needed(rf) == needed


# -- strong ------------------------------------------------------------------------------


async def test_strong_stores_on_every_reachable_target():
    io = FakeChunkIO()
    kit, repo, _ = tools(io)
    stored = await QuorumWrite().store(write(["w1", "w2", "w3"], {"w1", "w2", "w3"}), kit)
    assert sorted(stored.replicas) == ["w1", "w2", "w3"]
    assert stored.copies == 3
    assert stored.stored_bytes == 3 * CHUNK.stored_size
    assert not stored.deferred
    assert repo.intents == []


async def test_strong_queues_under_replicated_intents_for_failed_and_away_targets():
    io = FakeChunkIO(failing=("w3",))
    kit, repo, _ = tools(io, FakePlacement(5))
    # w5 is a suspect target (not live, holds nothing): owed, never tried.
    targets = ["w1", "w2", "w3", "w4", "w5"]
    stored = await QuorumWrite().store(write(targets, {"w1", "w2", "w3", "w4"}), kit)
    assert sorted(stored.replicas) == ["w1", "w2", "w4"]
    assert stored.copies == 3
    assert "w5" not in io.stored
    assert sorted(repo.intents) == [
        (CHUNK.chunk_id, "w3", ReplicationReason.UNDER_REPLICATED),
        (CHUNK.chunk_id, "w5", ReplicationReason.UNDER_REPLICATED),
    ]


async def test_strong_acknowledges_at_quorum_and_leaves_a_hung_copy_to_the_stragglers():
    io = FakeChunkIO(hanging=("w3",))
    kit, repo, stragglers = tools(io)
    try:
        stored = await QuorumWrite().store(write(["w1", "w2", "w3"], {"w1", "w2", "w3"}), kit)
        assert sorted(stored.replicas) == ["w1", "w2"]
        assert stored.stored_bytes == 2 * CHUNK.stored_size
        assert list(stragglers.adopted.values()) == ["w3"]
        assert repo.intents == [(CHUNK.chunk_id, "w3", ReplicationReason.UNDER_REPLICATED)]
    finally:
        await stragglers.cancel()


async def test_strong_counts_live_copies_already_held():
    io = FakeChunkIO(failing=("w2", "w3"))
    kit, _, _ = tools(io)
    stored = await QuorumWrite().store(
        write(["w1", "w2", "w3"], {"w1", "w2", "w3", "w9"}, recorded=("w9",), held=["w9"]), kit)
    assert stored.replicas == ("w9", "w1")
    assert stored.copies == 2
    assert stored.stored_bytes == CHUNK.stored_size


async def test_strong_refuses_when_too_few_targets_are_reachable():
    kit, _, _ = tools(FakeChunkIO())
    with pytest.raises(QuorumNotReached) as raised:
        await QuorumWrite().store(write(["w1", "w2", "w3"], {"w1"}), kit)
    assert raised.value.message == (
        "1 of 3 placement targets reachable; a strong write needs 2")
    assert raised.value.code == "quorum_not_reached"


async def test_strong_fails_when_puts_fail_below_quorum():
    kit, repo, _ = tools(FakeChunkIO(failing=("w2", "w3")))
    with pytest.raises(QuorumNotReached) as raised:
        await QuorumWrite().store(write(["w1", "w2", "w3"], {"w1", "w2", "w3"}), kit)
    assert raised.value.message.startswith(
        f"chunk {CHUNK.chunk_id[:12]} reached 1 of 2 required replicas (")
    assert repo.intents == []


async def test_strong_without_enough_workers_with_room_is_insufficient_storage():
    # Placement left the two full workers out: one target remains.
    kit, _, _ = tools(FakeChunkIO())
    with pytest.raises(InsufficientStorage) as raised:
        await QuorumWrite().store(write(["w3"], {"w1", "w2", "w3"}, full=("w1", "w2")), kit)
    assert raised.value.status == 507
    assert "w1, w2 are full" in raised.value.message


async def test_strong_refused_for_space_by_its_targets_is_insufficient_storage():
    # Heartbeats had not said so yet: the workers refuse the puts themselves.
    kit, repo, _ = tools(FakeChunkIO(full=("w2", "w3")))
    with pytest.raises(InsufficientStorage):
        await QuorumWrite().store(write(["w1", "w2", "w3"], {"w1", "w2", "w3"}), kit)
    assert repo.intents == []


async def test_strong_short_for_space_and_a_failure_is_still_a_lost_quorum():
    kit, _, _ = tools(FakeChunkIO(full=("w2",), failing=("w3",)))
    with pytest.raises(QuorumNotReached):
        await QuorumWrite().store(write(["w1", "w2", "w3"], {"w1", "w2", "w3"}), kit)


@pytest.mark.parametrize("policy", [TargetCopyWrite, SloppyWrite])
async def test_one_copy_writes_with_every_worker_full_are_insufficient_storage(policy):
    io = FakeChunkIO(full=("w1", "w2", "w3"))
    kit, repo, _ = tools(io)
    with pytest.raises(InsufficientStorage):
        await policy().store(write(["w1", "w2", "w3"], {"w1", "w2", "w3"}), kit)
    assert repo.partial == []


async def test_sloppy_write_skips_full_workers_off_its_targets():
    io = FakeChunkIO(failing=("w1",))
    kit, _, _ = tools(io, FakePlacement(rtt_order=("w4", "w5")))
    stored = await SloppyWrite().store(
        write(["w1"], {"w1", "w4", "w5"}, full=("w4",)), kit)
    assert stored.replicas == ("w5",)
    assert "w4" not in io.stored


# -- hybrid ------------------------------------------------------------------------------


async def test_hybrid_stores_one_copy_on_a_target_and_defers_the_rest():
    io = FakeChunkIO(failing=("w1",))
    kit, repo, _ = tools(io)
    stored = await TargetCopyWrite().store(
        write(["w1", "w2", "w3"], {"w1", "w2", "w3"}, recorded=("w3",)), kit)
    assert io.stored == ["w2"]
    assert stored.replicas == ("w3", "w2")
    assert (stored.copies, stored.stored_bytes, stored.deferred) == (1, CHUNK.stored_size, True)
    # Owed to the other targets not holding it yet, in the same transaction.
    assert repo.partial == [(CHUNK.chunk_id, "w2", ["w1"], ReplicationReason.DEFERRED_COPY)]
    assert repo.intents == []


async def test_hybrid_never_leaves_its_targets():
    io = FakeChunkIO(failing=("w1", "w2"))
    kit, repo, _ = tools(io)
    with pytest.raises(QuorumNotReached) as raised:
        await TargetCopyWrite().store(write(["w1", "w2", "w3"], {"w1", "w2", "w4"}), kit)
    assert raised.value.code == "no_replica_stored"
    assert raised.value.message.startswith(
        f"chunk {CHUNK.chunk_id[:12]}: no placement target could store a copy (w1: ")
    assert io.stored == [] and repo.partial == []


# -- available ---------------------------------------------------------------------------


async def test_available_prefers_a_live_target():
    kit, repo, _ = tools(FakeChunkIO(), FakePlacement(3, rtt_order=("w9", "w1")))
    stored = await SloppyWrite().store(write(["w1", "w2", "w3"], {"w1", "w2", "w9"}), kit)
    assert stored.replicas == ("w1",)
    assert repo.partial == [(CHUNK.chunk_id, "w1", ["w2", "w3"],
                             ReplicationReason.DEFERRED_COPY)]


async def test_available_falls_back_to_the_fastest_live_worker_as_a_hinted_handoff():
    io = FakeChunkIO(failing=("w1",))
    kit, repo, _ = tools(io, FakePlacement(3, rtt_order=("w8", "w9")))
    stored = await SloppyWrite().store(write(["w1", "w2", "w3"], {"w1", "w8", "w9"}), kit)
    assert io.stored == ["w8"]
    assert stored.replicas == ("w8",)
    assert repo.partial == [(CHUNK.chunk_id, "w8", ["w1", "w2", "w3"],
                             ReplicationReason.HINTED_HANDOFF)]


async def test_available_fails_only_when_no_live_worker_takes_a_copy():
    kit, _, _ = tools(FakeChunkIO(failing=("w1", "w9")))
    with pytest.raises(QuorumNotReached) as raised:
        await SloppyWrite().store(write(["w1", "w2"], {"w1", "w9"}), kit)
    assert raised.value.code == "no_replica_stored"
    assert "no live worker could store a copy" in raised.value.message


async def test_one_copy_writes_say_when_nothing_was_reachable():
    kit, _, _ = tools(FakeChunkIO())
    with pytest.raises(QuorumNotReached, match=r"\(none reachable\)"):
        await TargetCopyWrite().store(write(["w1", "w2"], set()), kit)


# -- targets the master stops hearing from mid-write --------------------------------------


class SilentRegistry:
    """A membership where the named workers have gone silent (a cut the
    master has not yet turned into suspicion: they are still listed live)."""

    def __init__(self, workers: tuple[str, ...], silent: tuple[str, ...]) -> None:
        self.workers, self.silent = workers, set(silent)

    def live_ids(self) -> list[str]:
        return list(self.workers)

    def unresponsive(self, worker_id: str) -> bool:
        return worker_id in self.silent


class RegistryPlacement(FakePlacement):
    def __init__(self, registry: SilentRegistry) -> None:
        super().__init__()
        self.registry = registry


async def test_strong_replaces_silent_targets_instead_of_waiting_for_the_write_timeout():
    """Two of three targets cut off a moment ago hang; the write must not wait
    WRITE_TIMEOUT for them and fail, but put the copies on the live workers
    next in the chunk's ranking and be acknowledged."""
    workers = ("w1", "w2", "w3", "w4", "w5")
    io = FakeChunkIO(hanging=("w4", "w5"))
    registry = SilentRegistry(workers, silent=("w4", "w5"))
    t, repo, stragglers = tools(io, RegistryPlacement(registry))
    stored = await asyncio.wait_for(
        QuorumWrite().store(write(["w1", "w4", "w5"], set(workers)), t), timeout=2)
    assert stored.copies >= 2
    assert "w1" in stored.replicas
    assert set(stored.replicas) <= {"w1", "w2", "w3"}
    # The silent targets are not owed a copy: their stand-ins hold it.
    assert {w for _, w, _ in repo.intents} <= {"w2", "w3"}
    await stragglers.cancel()


async def test_available_moves_on_from_a_silent_first_candidate_at_once():
    workers = ("w1", "w2", "w3")
    io = FakeChunkIO(hanging=("w1",))
    registry = SilentRegistry(workers, silent=("w1",))
    t, repo, _ = tools(io, RegistryPlacement(registry))
    stored = await asyncio.wait_for(
        SloppyWrite().store(write(["w1", "w2", "w3"], set(workers)), t), timeout=2)
    assert stored.replicas == ("w2",)
    # The silent target is still owed its copy (a hinted or deferred one).
    assert repo.partial[0][2] == ["w1", "w3"]
