"""Chunk claims and version commits, group-committed.

Every chunk is claimed in the metadata store before its bytes go to workers
(see ``MetadataRepository.claim_chunks``), and every finished upload becomes
a version with ``commit_versions``. Both are a :class:`GroupCommit`: the
chunks of one upload in flight and of every other upload share claim
transactions, and uploads finishing together share a commit transaction.
"""

from __future__ import annotations

from collections.abc import Sequence

from echofs.core.errors import Conflict
from echofs.core.manifest import FileRecord, NewChunk, VersionRecord
from echofs.master.group_commit import GroupCommit
from echofs.metadata.repository import ChunkClaim, CommitRequest, MetadataRepository

_MAX_CLAIMS = 256
# A commit carries its manifest rows; bound the statement sizes.
_MAX_COMMITS = 64


class ClaimBatcher(GroupCommit[NewChunk, ChunkClaim]):
    def __init__(self, repo: MetadataRepository) -> None:
        super().__init__(self._claim_all, max_batch=_MAX_CLAIMS)
        self.repo = repo

    async def claim(self, chunk: NewChunk) -> ChunkClaim:
        return await self.submit(chunk)

    async def _claim_all(self, chunks: list[NewChunk]) -> list[ChunkClaim]:
        claims = await self.repo.claim_chunks(chunks)
        return [claims[chunk.chunk_id] for chunk in chunks]


class CommitBatcher(GroupCommit[CommitRequest, tuple[FileRecord, VersionRecord]]):
    def __init__(self, repo: MetadataRepository) -> None:
        super().__init__(self._commit_all, max_batch=_MAX_COMMITS)
        self.repo = repo

    async def commit(self, request: CommitRequest) -> tuple[FileRecord, VersionRecord]:
        return await self.submit(request)

    async def _commit_all(self, requests: list[CommitRequest]
                          ) -> Sequence[tuple[FileRecord, VersionRecord] | Conflict]:
        return await self.repo.commit_versions(requests)
