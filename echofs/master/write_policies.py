"""How one chunk of a write is made durable, per consistency mode.

The upload pipeline (:mod:`echofs.master.upload`) claims a chunk, asks the
placement for its targets and skips the write if enough live copies exist
already (:meth:`WritePolicy.copies_needed`). Everything after that depends on
the mode and lives here, one policy per mode, looked up in
:data:`WRITE_POLICIES`:

- ``strong`` — a strict majority of the placement targets must store the
  chunk. It is acknowledged at quorum; copies still in flight go on in the
  background (:class:`~echofs.master.quorum.Stragglers`), and each copy not
  confirmed now gets a durable ``under_replicated`` intent first. In a
  process cluster a large chunk goes down a write pipeline
  (:mod:`~echofs.master.write_chain`): it leaves the master once, and targets
  the pipeline never reached get it directly before the write is given up.
  A target the master stops hearing from while the write waits is replaced
  by the chunk's next live worker (:class:`~echofs.master.quorum.Substitutes`):
  the targets of a write are the top live workers, and that one no longer is.
- ``hybrid`` — one durable copy on a placement target now; the copies owed to
  the other targets are ``deferred_copy`` intents in the same transaction.
- ``available`` — like hybrid, but the one copy may land on any live worker
  (sloppy quorum); a copy stored off its targets makes the owed ones
  ``hinted_handoff`` intents the replicator delivers later.

Workers whose stores are full are not placement targets. When a chunk cannot
get its copies because too few workers have room (left out as full, or
refusing the put for want of space), the write fails as
:class:`~echofs.core.errors.InsufficientStorage` (507), not as a lost quorum.
"""

from __future__ import annotations

import abc
import asyncio
from dataclasses import dataclass

from echofs.core.chunk_codec import EncodedChunk
from echofs.core.consistency import Mode
from echofs.core.errors import InsufficientStorage, QuorumNotReached
from echofs.core.placement import rank_workers, write_quorum
from echofs.core.vocabulary import ReplicationReason
from echofs.master.chunk_io import ChunkIO
from echofs.master.membership import WorkerRegistry
from echofs.master.placement import Placement, WriteTargets
from echofs.master.policy_router import ModeRouter
from echofs.master.quorum import Puts, Stragglers, Substitutes, until_quorum
from echofs.metadata.repository import MetadataRepository
from echofs.worker.client import HopNotReached


@dataclass(frozen=True, slots=True)
class WriteTools:
    """What a policy writes with: the pipeline's shared parts."""

    repo: MetadataRepository
    chunk_io: ChunkIO
    placement: Placement
    stragglers: Stragglers


@dataclass(frozen=True, slots=True)
class ChunkWrite:
    """One encoded chunk to store, and what is known of its copies."""

    chunk: EncodedChunk
    recorded: tuple[str, ...]  # replicas the metadata lists already
    held: list[str]  # of those, the ones on live workers
    where: WriteTargets


@dataclass(frozen=True, slots=True)
class Stored:
    """A chunk acknowledged: its replicas, how many copies were confirmed now,
    the bytes this write put on workers, and whether copies are still owed
    (the replicator is woken for them after commit)."""

    replicas: tuple[str, ...]
    copies: int
    stored_bytes: int
    deferred: bool


class WritePolicy(abc.ABC):
    @abc.abstractmethod
    def copies_needed(self, replication_factor: int) -> int:
        """Live copies that make a chunk as durable as this mode's write would:
        with that many already held, the chunk is deduplicated."""

    @abc.abstractmethod
    async def store(self, write: ChunkWrite, tools: WriteTools) -> Stored:
        """Store the chunk as the mode requires, or raise QuorumNotReached."""


WRITE_POLICIES: ModeRouter[WritePolicy] = ModeRouter("write")


@WRITE_POLICIES.register(Mode.STRONG)
class QuorumWrite(WritePolicy):
    """Strict quorum: a majority of the placement targets must store it."""

    def copies_needed(self, replication_factor: int) -> int:
        return write_quorum(replication_factor)

    async def store(self, write: ChunkWrite, tools: WriteTools) -> Stored:
        rf = tools.placement.replication_factor
        quorum = write_quorum(rf)
        chunk, held, live = write.chunk, write.held, write.where.live
        reachable = [w for w in write.where.targets if w in live and w not in held]
        away = [w for w in write.where.targets if w not in live and w not in write.recorded]
        if len(held) + len(reachable) < quorum:
            _raise_if_out_of_space(write.where, {})
            raise QuorumNotReached(
                f"{len(held) + len(reachable)} of {rf} placement targets reachable; "
                f"a strong write needs {quorum}"
            )
        needed = quorum - len(held)
        puts = _start_puts(tools.chunk_io, chunk, reachable)
        substitutes = _substitutes(tools, write)
        retry: Puts = {}
        sent = list(puts)
        try:
            acked, errors, late = await until_quorum(puts, needed, substitutes)
            unreached = [w for w, e in errors.items() if isinstance(e, HopNotReached)]
            if len(acked) < needed and unreached:
                # The pipeline broke above these targets (or its head could
                # not relay): send to them directly, as fan-out would have,
                # before the write is given up.
                direct = _direct_puts(tools.chunk_io, chunk, unreached)
                sent += direct
                for worker_id in unreached:
                    del errors[worker_id]
                retry = {**late, **direct}
                more, more_errors, late = await until_quorum(retry, needed - len(acked),
                                                              substitutes)
                acked += more
                errors.update(more_errors)
        except BaseException:
            for task in [*sent, *puts, *retry]:
                task.cancel()
            raise
        copies = len(held) + len(acked)
        if copies < quorum:
            for task in late:
                task.cancel()
            _raise_if_out_of_space(write.where, errors)
            detail = "; ".join(f"{w}: {e!r}" for w, e in errors.items())
            raise QuorumNotReached(
                f"chunk {chunk.chunk_id[:12]} reached {copies} of {quorum} required "
                f"replicas ({detail})"
            )
        # Quorum, but not RF yet: the copies still in flight go on in the
        # background and record themselves when they land.
        tools.stragglers.adopt(chunk.chunk_id, late)
        for worker_id in [*errors, *late.values(), *away]:
            # A durable intent restores each copy not confirmed now, whatever
            # becomes of the put or of this master.
            await tools.repo.enqueue_replication(chunk.chunk_id, worker_id,
                                                 ReplicationReason.UNDER_REPLICATED)
        return Stored(tuple(dict.fromkeys([*held, *acked])), copies,
                      chunk.stored_size * len(acked), deferred=False)


class OneCopyWrite(WritePolicy):
    """One durable copy now, the rest queued: the first candidate that stores
    it wins, and the copies owed to the targets commit with it, so the
    replicator has a source the moment it sees the tasks."""

    # Where the copy may go, for the error when none could take it.
    where: str

    def copies_needed(self, replication_factor: int) -> int:
        return 1

    @abc.abstractmethod
    def candidates(self, where: WriteTargets, placement: Placement) -> list[str]:
        """Workers to try, in order."""

    async def store(self, write: ChunkWrite, tools: WriteTools) -> Stored:
        chunk, targets = write.chunk, write.where.targets
        errors: dict[str, BaseException] = {}
        candidates = iter(self.candidates(write.where, tools.placement))
        registry = _registry(tools)

        def next_candidate(_: str) -> Puts:
            # A candidate the master stopped hearing from while its put
            # waited: the next one is tried at once rather than after the
            # write timeout.
            worker_id = next(candidates, None)
            return {} if worker_id is None else _direct_puts(tools.chunk_io, chunk, [worker_id])

        while puts := next_candidate(""):
            substitutes = (Substitutes(registry.unresponsive, next_candidate)
                           if registry is not None else None)
            try:
                acked, failed, _ = await until_quorum(puts, 1, substitutes)
            except BaseException:
                for task in puts:
                    task.cancel()
                raise
            errors.update(failed)
            if not acked:
                continue
            worker_id = acked[0]
            owed = [w for w in targets if w != worker_id and w not in write.recorded]
            reason = (ReplicationReason.HINTED_HANDOFF if worker_id not in targets
                      else ReplicationReason.DEFERRED_COPY)
            await tools.repo.record_partial_write(chunk.chunk_id, worker_id, owed, reason)
            return Stored(tuple(dict.fromkeys([*write.recorded, worker_id])), 1,
                          chunk.stored_size, deferred=True)
        _raise_if_out_of_space(write.where, errors)
        detail = "; ".join(f"{w}: {e!r}" for w, e in errors.items())
        raise QuorumNotReached(
            f"chunk {chunk.chunk_id[:12]}: no {self.where} could store a copy "
            f"({detail or 'none reachable'})",
            code="no_replica_stored",
        )


@WRITE_POLICIES.register(Mode.HYBRID)
class TargetCopyWrite(OneCopyWrite):
    """Hybrid: the one copy goes on a live placement target."""

    where = "placement target"

    def candidates(self, where: WriteTargets, placement: Placement) -> list[str]:
        return [w for w in where.targets if w in where.live]


@WRITE_POLICIES.register(Mode.AVAILABLE)
class SloppyWrite(OneCopyWrite):
    """Available: a live placement target first, else any live worker, fastest
    first (a sloppy quorum; the targets get hinted handoffs)."""

    where = "live worker"

    def candidates(self, where: WriteTargets, placement: Placement) -> list[str]:
        candidates = [w for w in where.targets if w in where.live]
        return candidates + [w for w in placement.fastest_first(where.live)
                             if w not in candidates and w not in where.full]


def _start_puts(chunk_io: ChunkIO, chunk: EncodedChunk, targets: list[str]) -> Puts:
    """A large frame for several workers that can relay goes down a write
    pipeline (it leaves the master once); anything else to each directly."""
    if chunk_io.can_chain(targets, len(chunk.frame)):
        return chunk_io.put_chain(targets, chunk.chunk_id, chunk.frame)
    return _direct_puts(chunk_io, chunk, targets)


def _registry(tools: WriteTools) -> WorkerRegistry | None:
    return getattr(tools.placement, "registry", None)


def _substitutes(tools: WriteTools, write: ChunkWrite) -> Substitutes | None:
    """Stand-ins for a strong write's targets: the chunk's next live,
    responsive workers with room, in its ranking, each tried once."""
    registry = _registry(tools)
    if registry is None:
        return None
    tried = {*write.where.targets, *write.recorded}

    def stand_in(_: str) -> Puts:
        ready = [w for w in registry.live_ids()
                 if w not in write.where.full and w not in tried and not registry.unresponsive(w)]
        for worker_id in rank_workers(write.chunk.chunk_id, ready)[:1]:
            tried.add(worker_id)
            return _direct_puts(tools.chunk_io, write.chunk, [worker_id])
        return {}

    return Substitutes(registry.unresponsive, stand_in)


def _direct_puts(chunk_io: ChunkIO, chunk: EncodedChunk, targets: list[str]) -> Puts:
    return {asyncio.create_task(chunk_io.put(w, chunk.chunk_id, chunk.frame)): w
            for w in targets}


def _raise_if_out_of_space(where: WriteTargets, errors: dict[str, BaseException]) -> None:
    """A write short of copies because workers are out of room is refused
    as such: if any worker was left out as full or refused for want of
    space, and every other failure was that too."""
    refused = {w for w, e in errors.items() if isinstance(e, InsufficientStorage)}
    if not where.full and not refused:
        return
    if len(refused) < len(errors):
        return  # something else failed as well: not only a question of space
    full = sorted(where.full | refused)
    raise InsufficientStorage(
        f"not enough storage space: worker(s) {', '.join(full)} are full (down to their "
        "reserved free space); delete files to make room")
