"""Chunk claims and version commits, group-committed together.

Every chunk is claimed in the metadata store before its bytes go to workers
(see ``MetadataRepository.claim_chunks``), and every finished upload becomes
a version with ``commit_versions``. Under load both kinds arrive all the
time, from different uploads; they share one :class:`GroupCommit`, so each
transaction carries whatever is waiting of either kind
(``claim_and_commit``): one transaction and one wait for the disk where
alternating claim and commit transactions took two, each holding the
store's write lock.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from echofs.core.errors import Conflict
from echofs.core.manifest import FileRecord, NewChunk, VersionRecord
from echofs.master.group_commit import GroupCommit
from echofs.metadata.repository import ChunkClaim, CommitRequest, MetadataRepository

Committed = tuple[FileRecord, VersionRecord]
_Item = NewChunk | CommitRequest
_Result = ChunkClaim | Committed

# A commit carries its manifest rows and a claim one row: bound the
# statement sizes of one transaction.
_MAX_BATCH = 256


class MetadataBatcher(GroupCommit[_Item, _Result]):
    def __init__(self, repo: MetadataRepository) -> None:
        super().__init__(self._write_all, max_batch=_MAX_BATCH)
        self.repo = repo

    async def claim(self, chunk: NewChunk) -> ChunkClaim:
        return cast(ChunkClaim, await self.submit(chunk))

    async def commit(self, request: CommitRequest) -> Committed:
        return cast(Committed, await self.submit(request))

    async def _write_all(self, items: list[_Item]) -> Sequence[_Result | Conflict]:
        chunks = [i for i in items if isinstance(i, NewChunk)]
        requests = [i for i in items if isinstance(i, CommitRequest)]
        if requests and chunks:
            claims, outcomes = await self.repo.claim_and_commit(chunks, requests)
        elif requests:
            claims, outcomes = {}, await self.repo.commit_versions(requests)
        else:
            claims, outcomes = await self.repo.claim_chunks(chunks), []
        committed = iter(outcomes)
        return [claims[i.chunk_id] if isinstance(i, NewChunk) else next(committed)
                for i in items]
