"""The write pipeline's relay: one ack per hop, in the order copies become
durable; a failing, unreachable or stalled hop is cut out where it happens."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from grpclib.const import Status

from echofs.core.errors import BadRequest, InsufficientStorage
from echofs.rpc.chain_relay import ChainRelay
from echofs.rpc.generated.echofs.v1 import ChainAck, ChainHop, PutChunkChainRequest


class _Grid:
    """Relays wired to each other in-process: a forward is a direct call of
    the next relay, unless the test makes that hop away or frozen."""

    def __init__(self, *worker_ids: str) -> None:
        self.stored: dict[str, list[str]] = {w: [] for w in worker_ids}
        self.gates = {w: asyncio.Event() for w in worker_ids}
        for gate in self.gates.values():
            gate.set()
        self.refuse: set[str] = set()
        self.away: set[str] = set()
        self.frozen: set[str] = set()
        self.relays = {w: ChainRelay(w, self._store_for(w), self._forward) for w in worker_ids}

    def _store_for(self, worker_id: str):
        async def store(chunk_id: str, frame: bytes) -> None:
            await self.gates[worker_id].wait()
            if worker_id in self.refuse:
                raise InsufficientStorage(f"{worker_id} is full")
            self.stored[worker_id].append(chunk_id)
        return store

    async def _forward(self, hop: ChainHop, request: PutChunkChainRequest,
                       seconds: float) -> AsyncIterator[ChainAck]:
        if hop.worker_id in self.away:
            raise ConnectionRefusedError(f"{hop.worker_id} is down")
        if hop.worker_id in self.frozen:
            await asyncio.Event().wait()
        async for ack in self.relays[hop.worker_id].relay(request):
            yield ack

    async def write(self, chain: list[str], hop_timeout: float = 5.0) -> list[ChainAck]:
        request = PutChunkChainRequest(
            chunk_id="c1", frame=b"frame", hop_timeout=hop_timeout,
            downstream=[ChainHop(worker_id=w, address=f"{w}:1") for w in chain[1:]])
        return [ack async for ack in self.relays[chain[0]].relay(request)]


def _outcomes(acks: list[ChainAck]) -> dict[str, tuple[Status, bool]]:
    return {a.worker_id: (Status(a.status), a.not_reached) for a in acks}


async def test_every_hop_stores_and_acks_once():
    grid = _Grid("w1", "w2", "w3")
    acks = await grid.write(["w1", "w2", "w3"])
    assert sorted(a.worker_id for a in acks) == ["w1", "w2", "w3"]
    assert all(Status(a.status) is Status.OK for a in acks)
    assert grid.stored == {"w1": ["c1"], "w2": ["c1"], "w3": ["c1"]}


async def test_acks_come_in_the_order_copies_become_durable():
    grid = _Grid("w1", "w2", "w3")
    grid.gates["w1"].clear()  # the head is slow to store: the others ack first
    writing = asyncio.create_task(grid.write(["w1", "w2", "w3"]))
    await asyncio.sleep(0.05)
    assert grid.stored["w2"] == grid.stored["w3"] == ["c1"]
    grid.gates["w1"].set()
    acks = await writing
    assert [a.worker_id for a in acks][-1] == "w1"
    assert {a.worker_id for a in acks[:2]} == {"w2", "w3"}


async def test_a_hop_that_refuses_the_copy_still_relays_it():
    grid = _Grid("w1", "w2", "w3")
    grid.refuse.add("w2")
    outcomes = _outcomes(await grid.write(["w1", "w2", "w3"]))
    assert outcomes == {"w1": (Status.OK, False), "w2": (Status.RESOURCE_EXHAUSTED, False),
                        "w3": (Status.OK, False)}


async def test_the_last_hop_refusing_is_reported_for_itself_only():
    grid = _Grid("w1", "w2", "w3")
    grid.refuse.add("w3")
    outcomes = _outcomes(await grid.write(["w1", "w2", "w3"]))
    assert outcomes["w3"] == (Status.RESOURCE_EXHAUSTED, False)
    assert outcomes["w1"] == outcomes["w2"] == (Status.OK, False)


async def test_an_unreachable_hop_fails_and_the_hops_after_it_are_not_reached():
    grid = _Grid("w1", "w2", "w3")
    grid.away.add("w2")
    outcomes = _outcomes(await grid.write(["w1", "w2", "w3"]))
    assert outcomes == {"w1": (Status.OK, False), "w2": (Status.UNAVAILABLE, False),
                        "w3": (Status.UNAVAILABLE, True)}
    assert grid.stored["w3"] == []


async def test_a_stalled_hop_is_cut_out_at_its_deadline():
    grid = _Grid("w1", "w2", "w3")
    grid.frozen.add("w2")
    started = time.monotonic()
    acks = await grid.write(["w1", "w2", "w3"], hop_timeout=0.1)
    elapsed = time.monotonic() - started
    assert _outcomes(acks) == {"w1": (Status.OK, False),
                               "w2": (Status.DEADLINE_EXCEEDED, False),
                               "w3": (Status.UNAVAILABLE, True)}
    # Two hops left below the head: 2 x 0.1 s, not a caller's write timeout.
    assert 0.15 < elapsed < 1.0
    assert acks[0].worker_id == "w1"  # the head's own copy was not held back


async def test_a_stall_deeper_down_is_reported_by_the_nearest_live_hop():
    grid = _Grid("w1", "w2", "w3")
    grid.frozen.add("w3")
    started = time.monotonic()
    outcomes = _outcomes(await grid.write(["w1", "w2", "w3"], hop_timeout=0.1))
    # w2 gives up on w3 after 0.1 s, before w1's own 0.2 s deadline for w2.
    assert outcomes == {"w1": (Status.OK, False), "w2": (Status.OK, False),
                        "w3": (Status.DEADLINE_EXCEEDED, False)}
    assert time.monotonic() - started < 0.19


async def test_a_single_hop_chain_is_a_plain_put():
    grid = _Grid("w1")
    acks = await grid.write(["w1"])
    assert _outcomes(acks) == {"w1": (Status.OK, False)}


@pytest.mark.parametrize(("downstream", "hop_timeout"), [
    (["w2", "w2"], 1.0), (["w2", "w1"], 1.0), (["w2"], 0.0)])
def test_a_chain_it_could_not_answer_once_per_hop_is_refused(downstream, hop_timeout):
    relay = _Grid("w1", "w2").relays["w1"]
    request = PutChunkChainRequest(
        chunk_id="c1", frame=b"frame", hop_timeout=hop_timeout,
        downstream=[ChainHop(worker_id=w, address=f"{w}:1") for w in downstream])
    with pytest.raises(BadRequest):
        relay.check(request)
