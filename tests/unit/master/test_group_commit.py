"""Group commit: concurrent requests share one run (one transaction)."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable

import pytest

from echofs.core.errors import Conflict
from echofs.core.manifest import NewChunk
from echofs.core.vocabulary import ChunkState
from echofs.master.claims import MetadataBatcher
from echofs.master.group_commit import GroupCommit
from echofs.metadata.records import ChunkClaim
from echofs.metadata.repository import CommitRequest
from echofs.testing.fakes import FakeRepository


class Recorder:
    """A ``run`` that records its batches; holds each until the gate opens."""

    def __init__(self, *, gated: bool = False) -> None:
        self.batches: list[list[int]] = []
        self.gate = asyncio.Event()
        if not gated:
            self.gate.set()
        self.fail_with: Exception | None = None

    async def __call__(self, items: list[int]) -> list[int | Exception]:
        self.batches.append(items)
        await self.gate.wait()
        if self.fail_with is not None:
            raise self.fail_with
        return [ValueError(f"odd {i}") if i % 2 else i * 10 for i in items]


def bounded(test: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
    """A group commit that loses a waiter fails the test instead of hanging it."""

    @functools.wraps(test)
    async def run(*args: object, **kwargs: object) -> None:
        async with asyncio.timeout(5):
            await test(*args, **kwargs)

    return run


async def _settle() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


@bounded
async def test_concurrent_submits_share_one_run():
    run = Recorder()
    group: GroupCommit[int, int] = GroupCommit(run, max_batch=100)
    assert await asyncio.gather(*(group.submit(i) for i in (0, 2, 4, 6))) == [0, 20, 40, 60]
    assert run.batches == [[0, 2, 4, 6]]


@bounded
async def test_submits_during_a_run_go_together_in_the_next():
    run = Recorder(gated=True)
    group: GroupCommit[int, int] = GroupCommit(run, max_batch=100)
    first = asyncio.create_task(group.submit(0))
    await _settle()
    later = [asyncio.create_task(group.submit(i)) for i in (2, 4, 6)]
    await _settle()
    assert run.batches == [[0]]  # a lone request waits for nobody
    run.gate.set()
    assert await first == 0
    assert await asyncio.gather(*later) == [20, 40, 60]
    assert run.batches == [[0], [2, 4, 6]]


@bounded
async def test_batches_are_bounded():
    run = Recorder()
    group: GroupCommit[int, int] = GroupCommit(run, max_batch=2)
    await asyncio.gather(*(group.submit(i) for i in (0, 2, 4, 6, 8)))
    assert run.batches == [[0, 2], [4, 6], [8]]


@bounded
async def test_an_item_exception_reaches_only_its_waiter():
    run = Recorder(gated=True)
    group: GroupCommit[int, int] = GroupCommit(run, max_batch=100)
    first, odd, third = (asyncio.create_task(group.submit(i)) for i in (0, 1, 2))
    await _settle()
    run.gate.set()
    assert await first == 0
    with pytest.raises(ValueError, match="odd 1"):
        await odd
    assert await third == 20
    assert run.batches == [[0, 1, 2]]


@bounded
async def test_a_failed_run_reaches_every_waiter_and_the_next_run_goes_on():
    run = Recorder(gated=True)
    group: GroupCommit[int, int] = GroupCommit(run, max_batch=100)
    failing = [asyncio.create_task(group.submit(i)) for i in (0, 2)]
    await _settle()
    after = asyncio.create_task(group.submit(4))
    await _settle()
    run.fail_with = OSError("database away")
    run.gate.set()
    for task in failing:
        with pytest.raises(OSError, match="database away"):
            await task
    # The batch queued behind the failed one is still run (and fails too: the
    # database is still away); nothing is left waiting.
    with pytest.raises(OSError):
        await after
    run.fail_with = None
    assert await group.submit(6) == 60
    assert run.batches == [[0, 2], [4], [6]]


@bounded
async def test_a_waiter_that_went_away_does_not_disturb_the_others():
    run = Recorder(gated=True)
    group: GroupCommit[int, int] = GroupCommit(run, max_batch=100)
    gone, stays = (asyncio.create_task(group.submit(i)) for i in (0, 2))
    await _settle()
    gone.cancel()
    run.gate.set()
    assert await stays == 20
    assert gone.cancelled()


@bounded
async def test_close_waits_for_submitted_batches():
    run = Recorder(gated=True)
    group: GroupCommit[int, int] = GroupCommit(run, max_batch=100)
    await group.close()  # nothing submitted: returns at once
    pending = asyncio.create_task(group.submit(2))
    await _settle()
    closing = asyncio.create_task(group.close())
    await _settle()
    assert not closing.done()
    run.gate.set()
    await closing
    assert pending.done() and pending.result() == 20


@bounded
async def test_close_after_a_failed_run_does_not_raise():
    run = Recorder()
    run.fail_with = OSError("database away")
    group: GroupCommit[int, int] = GroupCommit(run, max_batch=100)
    with pytest.raises(OSError):
        await group.submit(0)
    await group.close()


def _chunk(chunk_id: str) -> NewChunk:
    return NewChunk(chunk_id, size=4, stored_size=16, compressed=False, replicas=())


@bounded
async def test_claims_share_a_transaction_and_each_gets_its_own_claim():
    repo = FakeRepository()
    repo.add_chunk("b", ["w1"], state=ChunkState.DELETING)
    claims = MetadataBatcher(repo)
    a, b, c = await asyncio.gather(*(claims.claim(_chunk(i)) for i in "abc"))
    assert repo.claim_calls == [["a", "b", "c"]]
    assert (a.chunk_id, a.state, a.replicas) == ("a", ChunkState.LIVE, ())
    assert (b.chunk_id, b.state, b.replicas) == ("b", ChunkState.DELETING, ("w1",))
    assert c.chunk_id == "c"
    await claims.close()


class CommitStore:
    """``commit_versions`` only: a conflict for the path ``taken``."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    async def commit_versions(self, requests: list[CommitRequest]) -> list[str | Conflict]:
        self.calls.append([r.path for r in requests])
        return [Conflict(f"{r.path} changed") if r.path == "taken" else f"v:{r.path}"
                for r in requests]


def _request(path: str) -> CommitRequest:
    return CommitRequest(owner="u", path=path, chunks=(), size=0, blake3="0" * 64,
                         mode="strong", replicas_acked=2, versions_kept=0)


@bounded
async def test_commits_share_a_transaction_and_a_conflict_reaches_only_its_upload():
    store = CommitStore()
    commits = MetadataBatcher(store)  # type: ignore[arg-type]
    ok, conflict, other = await asyncio.gather(
        *(commits.commit(_request(p)) for p in ("a", "taken", "b")), return_exceptions=True)
    assert store.calls == [["a", "taken", "b"]]
    assert (ok, other) == ("v:a", "v:b")
    assert isinstance(conflict, Conflict)
    await commits.close()


class MixedStore:
    """Claims and commits, recording which transaction each batch was."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[str]]] = []

    async def claim_and_commit(self, chunks: list[NewChunk], requests: list[CommitRequest]):
        self.calls.append(("both", [c.chunk_id for c in chunks] + [r.path for r in requests]))
        claims = {c.chunk_id: ChunkClaim(c.chunk_id, ChunkState.LIVE, ()) for c in chunks}
        return claims, [f"v:{r.path}" for r in requests]

    async def claim_chunks(self, chunks: list[NewChunk]):
        self.calls.append(("claims", [c.chunk_id for c in chunks]))
        return {c.chunk_id: ChunkClaim(c.chunk_id, ChunkState.LIVE, ()) for c in chunks}


@bounded
async def test_claims_and_commits_waiting_together_share_one_transaction():
    store = MixedStore()
    batcher = MetadataBatcher(store)  # type: ignore[arg-type]
    first = asyncio.ensure_future(batcher.claim(_chunk("x")))
    await asyncio.sleep(0)  # the first transaction is under way
    a, committed, b = await asyncio.gather(
        batcher.claim(_chunk("a")), batcher.commit(_request("f")), batcher.claim(_chunk("b")))
    await first
    assert store.calls == [("claims", ["x"]), ("both", ["a", "b", "f"])]
    assert (a.chunk_id, b.chunk_id, committed) == ("a", "b", "v:f")
    await batcher.close()
