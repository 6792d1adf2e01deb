"""Group commit for chunk claims.

Every chunk is claimed in the metadata store before its bytes go to workers
(see ``MetadataRepository.claim_chunks``). One transaction per chunk would
make the metadata store's commit latency the upload's speed limit (SQLite
serialises writers and fsyncs each commit), so concurrent claims — the
chunks of one upload in flight, and of every other upload — are gathered
and committed together: one transaction for whatever arrived while the
previous one ran.
"""

from __future__ import annotations

import asyncio
import contextlib

from echofs.core.manifest import NewChunk
from echofs.metadata.repository import ChunkClaim, MetadataRepository

_MAX_BATCH = 256


class ClaimBatcher:
    def __init__(self, repo: MetadataRepository) -> None:
        self.repo = repo
        self._pending: list[tuple[NewChunk, asyncio.Future[ChunkClaim]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self.transactions = 0

    async def claim(self, chunk: NewChunk) -> ChunkClaim:
        future: asyncio.Future[ChunkClaim] = asyncio.get_running_loop().create_future()
        self._pending.append((chunk, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[:_MAX_BATCH], self._pending[_MAX_BATCH:]
            try:
                claims = await self.repo.claim_chunks([chunk for chunk, _ in batch])
            except Exception as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            self.transactions += 1
            for chunk, future in batch:
                if not future.done():
                    future.set_result(claims[chunk.chunk_id])

    async def close(self) -> None:
        if self._flusher is not None:
            with contextlib.suppress(Exception):
                await self._flusher
