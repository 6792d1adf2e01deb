"""A strong write of a large chunk goes down a write pipeline: the frame
leaves the master once, the chunk is acknowledged at quorum, and targets the
pipeline never reached get the frame directly — against in-process workers
that relay to each other, no sockets."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

from grpclib import GRPCError
from grpclib.const import Status

from echofs.core.chunk_codec import EncodedChunk
from echofs.core.errors import InsufficientStorage, Unavailable
from echofs.core.vocabulary import ReplicationReason, Verdict
from echofs.core.worker_status import WorkerStatus
from echofs.master.chunk_io import ChunkIO
from echofs.master.membership import WorkerRegistry
from echofs.master.placement import WriteTargets
from echofs.master.write_policies import ChunkWrite, QuorumWrite, WriteTools
from echofs.rpc.chain_relay import ChainRelay
from echofs.rpc.generated.echofs.v1 import ChainAck, ChainHop, PutChunkChainRequest
from echofs.rpc.worker_client import hop_outcome
from echofs.worker.client import ChainUnsupported, HopOutcome, WorkerClient

FRAME = b"x" * (256 * 1024)  # above the coalescer's small-frame limit
CHUNK = EncodedChunk("c" * 64, raw_size=len(FRAME), compressed=False, frame=FRAME)
WORKERS = ("w1", "w2", "w3")


class _Cluster:
    """Workers that relay to each other in-process; each can be made away,
    frozen, full, or too old to relay."""

    def __init__(self) -> None:
        self.stored: dict[str, list[str]] = {w: [] for w in WORKERS}
        self.direct: list[str] = []
        self.chains: list[str] = []
        self.away: set[str] = set()
        self.frozen: set[str] = set()
        self.full: set[str] = set()
        self.old: set[str] = set()
        self.relays = {w: ChainRelay(w, self._store_for(w), self._forward) for w in WORKERS}

    def _store_for(self, worker_id: str):
        async def store(chunk_id: str, frame: bytes) -> None:
            if worker_id in self.full:
                raise InsufficientStorage(f"{worker_id} is down to its reserve")
            self.stored[worker_id].append(chunk_id)
        return store

    async def _forward(self, hop: ChainHop, request: PutChunkChainRequest,
                       seconds: float) -> AsyncIterator[ChainAck]:
        if hop.worker_id in self.old:
            raise GRPCError(Status.UNIMPLEMENTED, "Method not found")
        await self._reach(hop.worker_id)
        async for ack in self.relays[hop.worker_id].relay(request):
            yield ack

    async def _reach(self, worker_id: str) -> None:
        if worker_id in self.away:
            raise ConnectionRefusedError(f"{worker_id} is down")
        if worker_id in self.frozen:
            await asyncio.Event().wait()


class _Client(WorkerClient):
    def __init__(self, cluster: _Cluster, worker_id: str) -> None:
        self.cluster = cluster
        self.worker_id = worker_id
        self.supports_chain = True
        self.chain_address = f"{worker_id}:1"

    async def put_chunk(self, chunk_id: str, frame: bytes) -> None:
        await self.cluster._reach(self.worker_id)
        self.cluster.direct.append(self.worker_id)
        await self.cluster._store_for(self.worker_id)(chunk_id, frame)

    async def put_chunk_chain(self, chunk_id: str, frame: bytes,
                              downstream: Sequence[tuple[str, str]],
                              hop_timeout: float) -> AsyncIterator[HopOutcome]:
        if self.worker_id in self.cluster.old:
            self.supports_chain = False
            raise ChainUnsupported("PutChunkChain")
        self.cluster.chains.append(self.worker_id)
        try:
            await self.cluster._reach(self.worker_id)
        except ConnectionRefusedError as exc:
            raise Unavailable(str(exc)) from exc
        request = PutChunkChainRequest(
            chunk_id=chunk_id, frame=frame, hop_timeout=hop_timeout,
            downstream=[ChainHop(worker_id=w, address=a) for w, a in downstream])
        async for ack in self.cluster.relays[self.worker_id].relay(request):
            yield hop_outcome(ack)

    async def get_chunk(self, chunk_id: str) -> bytes:
        raise NotImplementedError

    async def verify_chunk(self, chunk_id: str) -> Verdict:
        raise NotImplementedError

    async def delete_chunk(self, chunk_id: str) -> bool:
        raise NotImplementedError

    async def has_chunk(self, chunk_id: str) -> bool:
        raise NotImplementedError

    def list_chunks(self) -> AsyncIterator[str]:
        raise NotImplementedError

    async def status(self) -> WorkerStatus:
        raise NotImplementedError


class _Repo:
    def __init__(self) -> None:
        self.intents: list[tuple[str, str]] = []

    async def enqueue_replication(self, chunk_id: str, worker_id: str, reason: str) -> None:
        assert reason == ReplicationReason.UNDER_REPLICATED
        self.intents.append((worker_id, reason))


class _Stragglers:
    def __init__(self) -> None:
        self.adopted: dict[asyncio.Task[None], str] = {}

    def adopt(self, chunk_id: str, puts: dict[asyncio.Task[None], str]) -> None:
        self.adopted.update(puts)


class _Placement:
    replication_factor = 3


def _setup(cluster: _Cluster, hop_timeout: float = 5.0):
    registry = WorkerRegistry(suspect_after=60, dead_after=120)
    for worker_id in WORKERS:
        registry.register(_Client(cluster, worker_id))
    io = ChunkIO(registry, write_timeout=5, read_timeout=5, chain_hop_timeout=hop_timeout)
    repo, stragglers = _Repo(), _Stragglers()
    tools = WriteTools(repo, io, _Placement(), stragglers)  # type: ignore[arg-type]
    write = ChunkWrite(CHUNK, (), [], WriteTargets(list(WORKERS), frozenset(WORKERS)))
    return registry, tools, write, repo, stragglers


async def _settle(stragglers: _Stragglers) -> None:
    await asyncio.gather(*stragglers.adopted, return_exceptions=True)


async def test_a_large_chunk_leaves_the_master_once_and_reaches_every_target():
    cluster = _Cluster()
    _, tools, write, _, stragglers = _setup(cluster)
    stored = await QuorumWrite().store(write, tools)
    await _settle(stragglers)
    assert cluster.chains == ["w1"] and cluster.direct == []
    assert stored.copies >= 2
    assert cluster.stored == {w: [CHUNK.chunk_id] for w in WORKERS}


async def test_small_frames_and_in_process_workers_keep_fan_out():
    cluster = _Cluster()
    registry, tools, _, _, _ = _setup(cluster)
    assert tools.chunk_io.can_chain(list(WORKERS), len(FRAME))
    assert not tools.chunk_io.can_chain(list(WORKERS), 64 * 1024)
    assert not tools.chunk_io.can_chain(["w1"], len(FRAME))
    registry.client("w2").chain_address = None  # type: ignore[union-attr]
    assert not tools.chunk_io.can_chain(list(WORKERS), len(FRAME))


async def test_a_head_that_is_away_makes_the_master_send_to_the_others_directly():
    cluster = _Cluster()
    cluster.away.add("w1")
    _, tools, write, repo, _ = _setup(cluster)
    stored = await QuorumWrite().store(write, tools)
    assert sorted(stored.replicas) == ["w2", "w3"]
    assert sorted(cluster.direct) == ["w2", "w3"]
    assert [w for w, _ in repo.intents] == ["w1"]


async def test_a_broken_middle_hop_gets_the_last_one_its_copy_directly():
    cluster = _Cluster()
    cluster.away.add("w2")
    registry, tools, write, repo, _ = _setup(cluster)
    stored = await QuorumWrite().store(write, tools)
    assert sorted(stored.replicas) == ["w1", "w3"]
    assert cluster.direct == ["w3"]  # w2 failed itself: not asked again now
    assert [w for w, _ in repo.intents] == ["w2"]
    assert registry.snapshot()[1]["failures"] == 1  # w2 blamed, w3 not


async def test_a_frozen_middle_hop_is_cut_out_at_the_hop_deadline():
    cluster = _Cluster()
    cluster.frozen.add("w2")
    _, tools, write, repo, _ = _setup(cluster, hop_timeout=0.05)
    stored = await asyncio.wait_for(QuorumWrite().store(write, tools), 2)
    assert sorted(stored.replicas) == ["w1", "w3"]
    assert [w for w, _ in repo.intents] == ["w2"]


async def test_a_full_last_hop_leaves_quorum_and_an_intent():
    cluster = _Cluster()
    cluster.full.add("w3")
    registry, tools, write, repo, stragglers = _setup(cluster)
    stored = await QuorumWrite().store(write, tools)
    await _settle(stragglers)
    assert sorted(stored.replicas) == ["w1", "w2"]
    assert cluster.direct == []
    assert [w for w, _ in repo.intents] == ["w3"]
    assert all(row["failures"] == 0 for row in registry.snapshot())  # full is an answer


async def test_a_worker_too_old_to_relay_gets_fan_out_and_is_remembered():
    cluster = _Cluster()
    cluster.old.add("w1")
    _, tools, write, _, stragglers = _setup(cluster)
    stored = await QuorumWrite().store(write, tools)
    await _settle(stragglers)
    assert stored.copies >= 2
    assert sorted(cluster.direct) == ["w1", "w2", "w3"]
    assert not tools.chunk_io.can_chain(list(WORKERS), len(FRAME))


async def test_a_worker_too_old_to_relay_down_the_chain_gets_its_copy_directly():
    cluster = _Cluster()
    cluster.old.add("w2")
    registry, tools, write, repo, stragglers = _setup(cluster)
    stored = await QuorumWrite().store(write, tools)
    await _settle(stragglers)
    assert stored.copies >= 2 and repo.intents == []
    # w3 never got it down the chain (w2 could not relay): both got it directly.
    assert sorted(cluster.direct) == ["w2", "w3"]
    assert cluster.stored == {w: [CHUNK.chunk_id] for w in WORKERS}
    assert not registry.client("w2").supports_chain  # type: ignore[union-attr]
