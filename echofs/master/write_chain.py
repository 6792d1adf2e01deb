"""The master's end of the write pipeline: one chunk sent down a chain.

The frame leaves the master once, to the chain's head, which relays it down
(:mod:`echofs.rpc.chain_relay`); the head streams back one outcome per hop.
To the write policies a chain looks like the fan-out it replaces: one task
per target, ending when that target's copy is durable or failed, so
:func:`~echofs.master.quorum.until_quorum` and
:class:`~echofs.master.quorum.Stragglers` work on it unchanged.

The master is the chain's hop zero and cuts it the way the relays do: the
whole chain must answer within ``hop_timeout`` times its length. A target
the chain never reached (a hop before it failed or stalled, the head went
away, it or the hop is too old to relay) fails as
:class:`~echofs.worker.client.HopNotReached`, which the policy answers by
sending to it directly.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import aclosing

from echofs.core.errors import InsufficientStorage, Unavailable
from echofs.master.membership import WorkerRegistry
from echofs.master.quorum import Puts
from echofs.worker.client import ChainUnsupported, HopNotReached, HopOutcome, WorkerClient


class WriteChain:
    """One chunk on its way down a chain of targets (head first)."""

    def __init__(self, registry: WorkerRegistry, clients: list[WorkerClient],
                 chunk_id: str, frame: bytes, *, hop_timeout: float) -> None:
        self.registry = registry
        self.head = clients[0]
        self.chain = [c.worker_id for c in clients]
        downstream = [(c.worker_id, c.chain_address or "") for c in clients[1:]]
        loop = asyncio.get_running_loop()
        self._acks: dict[str, asyncio.Future[None]] = {w: loop.create_future()
                                                      for w in self.chain}
        self.deadline = hop_timeout * len(clients)
        self._started = time.monotonic()
        self._stream = asyncio.create_task(self._follow(
            self.head.put_chunk_chain(chunk_id, frame, downstream, hop_timeout)))
        self.puts: Puts = {asyncio.create_task(_landed(self._acks[w])): w for w in self.chain}
        for task in self.puts:
            task.add_done_callback(self._abandon_if_unwanted)

    async def _follow(self, outcomes: AsyncIterator[HopOutcome]) -> None:
        try:
            async with asyncio.timeout(self.deadline), aclosing(outcomes) as stream:
                async for outcome in stream:
                    self._settle(outcome)
        except ChainUnsupported as exc:
            # Nothing was stored anywhere: every target gets a direct put.
            self._fail_rest(HopNotReached(str(exc)), HopNotReached(str(exc)))
            return
        except TimeoutError:
            self._fail_rest(Unavailable(f"write pipeline: no ack within {self.deadline:.2f} s"),
                            HopNotReached("not reached: the write pipeline stalled above it"))
            return
        except Exception as exc:  # the head failed outright (away, crashed mid-stream)
            self._fail_rest(exc, HopNotReached(f"not reached: the head failed ({exc})"))
            return
        self._fail_rest(Unavailable("write pipeline ended without this hop's ack"),
                        HopNotReached("not reached: the write pipeline ended early"))

    def _settle(self, outcome: HopOutcome) -> None:
        ack = self._acks.get(outcome.worker_id)
        if ack is None or ack.done():
            return
        if isinstance(outcome.error, ChainUnsupported):
            # A worker too old to relay, down the chain: it gets its copy
            # directly now, and fan-out from now on.
            client = self.registry.client(outcome.worker_id)
            if client is not None:
                client.supports_chain = False
            ack.set_exception(HopNotReached(str(outcome.error)))
            return
        if outcome.error is None:
            if outcome.worker_id == self.head.worker_id:
                # Only the head's time is a call to it; the others' include relays.
                self.registry.observe_success(outcome.worker_id, time.monotonic() - self._started)
            ack.set_result(None)
            return
        if not isinstance(outcome.error, HopNotReached | InsufficientStorage):
            # It failed or stalled itself (a full disk is an answer, not a fault).
            self.registry.observe_failure(outcome.worker_id)
        ack.set_exception(outcome.error)

    def _fail_rest(self, head_error: Exception, not_reached: Exception) -> None:
        """Every hop without an outcome yet: the first one (where the chain
        broke) failed with ``head_error`` — counted against that worker unless
        nothing was sent at all — and those after it were not reached."""
        missing = [w for w in self.chain if not self._acks[w].done()]
        for index, worker_id in enumerate(missing):
            error = head_error if index == 0 else not_reached
            if index == 0 and not isinstance(error, HopNotReached):
                self.registry.observe_failure(worker_id)
            self._acks[worker_id].set_exception(error)

    def _abandon_if_unwanted(self, _: asyncio.Task[None]) -> None:
        # Every target's task ended (acked, failed, or cancelled by a caller
        # that gave up on them): nobody waits for the rest of the stream.
        if all(task.done() for task in self.puts):
            self._stream.cancel()


async def _landed(ack: asyncio.Future[None]) -> None:
    await ack
