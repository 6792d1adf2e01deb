"""Making finished uploads visible: the group commit of new versions.

One transaction for a batch of uploads, in named steps: touch and check the
chunks they rely on, record new copies, lock (or create) their files,
number and write the versions and manifests, prune beyond each file's
``versions_kept`` (``echofs.core.retention``), and finally write the answers
through to the read memo.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
import uuid
from collections import defaultdict
from collections.abc import Sequence

from sqlalchemy import select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from echofs.core.errors import Conflict
from echofs.core.manifest import ChunkRef, FileRecord, VersionRecord
from echofs.core.retention import versions_to_prune
from echofs.core.vocabulary import ChunkState
from echofs.metadata.files import FileQueries, delete_versions
from echofs.metadata.memoized import Tag, chunk_tags, memo_key, record_tags
from echofs.metadata.models import ChunkReplicaRow, ChunkRow, FileRow, VersionChunkRow, VersionRow
from echofs.metadata.read_memo import MAX_CHUNKS
from echofs.metadata.records import CommitRequest, version_record
from echofs.metadata.transactions import ATTEMPTS, Transactions, batches, retried

Outcome = tuple[FileRecord, VersionRecord] | Conflict


@dataclasses.dataclass(frozen=True, slots=True)
class _Committed:
    request: CommitRequest
    record: FileRecord
    version: VersionRecord


class Commits(Transactions):
    @retried
    async def commit_versions(self, requests: Sequence[CommitRequest]) -> list[Outcome]:
        """Commit several finished uploads in one transaction (group commit).

        Each request becomes the next version of its file, in the order
        given (two requests for one name get consecutive numbers). A request
        whose chunks were collected meanwhile gets a ``Conflict`` in its place
        and leaves no trace; the others commit. The statements are set-based,
        so the cost of a transaction is shared by everything it commits.
        """
        now = time.time()
        all_ids = sorted({c.chunk_id for r in requests for c in r.chunks})
        # Filled as the steps learn it: the files committed to, and chunks
        # whose other versions gain copies.
        changes: list[Tag] = []
        replicas: dict[str, list[str]] = {}
        async with self._write(invalidates=changes) as session:
            live = await self._touch_live(session, all_ids, now)
            outcomes: list[Outcome | None] = [
                None if all(c.chunk_id in live for c in r.chunks) else _collected()
                for r in requests
            ]
            accepted = [r for r, o in zip(requests, outcomes, strict=True) if o is None]
            if not accepted:
                return [o for o in outcomes if o is not None]
            changes.extend(await self._record_new_copies(session, accepted, now))
            files = await self._lock_files_for_commit(
                session, sorted({(r.owner, r.path) for r in accepted}), now)
            committed = await self._add_versions(session, accepted, files, now)
            await self._prune(session, {c.record.file_id: c.request.versions_kept
                                        for c in committed})
            changes.extend(tag for c in committed for tag in record_tags(c.record))
            if self.memo is not None:
                replicas = await self._replicas_of(session, all_ids)
        if self.memo is not None:
            self._remember_commits(committed, replicas)
        results = iter([(c.record, c.version) for c in committed])
        return [next(results) if outcome is None else outcome for outcome in outcomes]

    async def _touch_live(self, session: AsyncSession, ids: list[str], now: float) -> set[str]:
        """Touch the chunks a batch relies on and return those still live."""
        await self._lock_chunks(session, ids)
        live: set[str] = set()
        for batch in batches(ids):
            await session.execute(
                update(ChunkRow)
                .where(ChunkRow.id.in_(batch), ChunkRow.state == ChunkState.LIVE)
                .values(touched_at=now)
            )
            live.update((await session.execute(
                select(ChunkRow.id).where(ChunkRow.id.in_(batch),
                                          ChunkRow.state == ChunkState.LIVE)
            )).scalars())
        return live

    async def _record_new_copies(self, session: AsyncSession, accepted: list[CommitRequest],
                                 now: float) -> tuple[Tag, ...]:
        """Record the copies the uploads stored that the store did not know
        of; return the tags of chunks other versions already used (their
        memoized replica lists are incomplete now)."""
        pairs = {(c.chunk_id, w) for r in accepted for c in r.chunks for w in c.replicas}
        known = await self._replicas_of(session, sorted({chunk_id for chunk_id, _ in pairs}))
        new_pairs = sorted(pair for pair in pairs if pair[1] not in known.get(pair[0], ()))
        if new_pairs:
            await session.execute(
                self._insert(ChunkReplicaRow).on_conflict_do_nothing(),
                [{"chunk_id": chunk_id, "worker_id": worker_id, "stored_at": now}
                 for chunk_id, worker_id in new_pairs],
            )
        return chunk_tags(chunk_id for chunk_id, _ in new_pairs if chunk_id in known)

    async def _lock_files_for_commit(self, session: AsyncSession, keys: list[tuple[str, str]],
                                     now: float) -> dict[tuple[str, str], FileRow]:
        """The rows of these (owner, path) names, created if missing, locked
        until commit (in name order, so two batches cannot deadlock).

        Another transaction may delete a row between our insert (which found
        it) and our lock (which then finds nothing): the insert is simply
        tried again, and this time creates the file anew."""
        found: dict[tuple[str, str], FileRow] = {}
        for _ in range(ATTEMPTS):
            missing = [key for key in keys if key not in found]
            if not missing:
                return found
            await session.execute(self._insert(FileRow).on_conflict_do_nothing(), [
                {"id": uuid.uuid4().hex, "owner": owner, "path": path, "current_version": 0,
                 "created_at": now, "updated_at": now} for owner, path in missing])
            for batch in batches(missing):
                rows = (await session.execute(
                    select(FileRow)
                    .where(tuple_(FileRow.owner, FileRow.path).in_(batch))
                    .order_by(FileRow.owner, FileRow.path)
                    .with_for_update()
                )).scalars()
                found.update(((row.owner, row.path), row) for row in rows)
        if all(key in found for key in keys):
            return found
        raise Conflict("a file kept being deleted during this upload; retry",
                       code="concurrent_delete")

    async def _add_versions(self, session: AsyncSession, accepted: list[CommitRequest],
                            files: dict[tuple[str, str], FileRow],
                            now: float) -> list[_Committed]:
        """Number each request's version after its file's current one (in
        request order), and write the versions and their manifests."""
        new_versions: list[tuple[CommitRequest, FileRow, VersionRow]] = []
        for request in accepted:
            file_row = files[(request.owner, request.path)]
            file_row.current_version += 1
            file_row.updated_at = now
            new_versions.append((request, file_row, VersionRow(
                file_id=file_row.id, version=file_row.current_version,
                size=request.size, blake3=request.blake3,
                chunk_count=len(request.chunks), mode=request.mode,
                replicas_acked=request.replicas_acked, created_at=now)))
        session.add_all([version_row for _, _, version_row in new_versions])
        await session.flush()  # assigns the versions' ids the manifests refer to
        manifest_rows = [
            {"version_id": version_row.id, "seq": seq, "chunk_id": chunk.chunk_id,
             "offset": offset, "size": chunk.size}
            for request, _, version_row in new_versions
            for seq, (chunk, offset) in enumerate(zip(
                request.chunks, _offsets(request), strict=False))
        ]
        if manifest_rows:
            await session.execute(self._insert(VersionChunkRow), manifest_rows)
        return [
            _Committed(request, FileRecord(
                file_id=file_row.id, owner=file_row.owner, path=file_row.path,
                current_version=version_row.version, size=version_row.size,
                blake3=version_row.blake3, mode=request.mode,
                created_at=file_row.created_at, updated_at=now),
                version_record(file_row.id, version_row))
            for request, file_row, version_row in new_versions
        ]

    async def _prune(self, session: AsyncSession, keep: dict[str, int]) -> None:
        """Delete the versions of these files beyond the newest ``keep[file]``."""
        rows = (await session.execute(
            select(VersionRow.id, VersionRow.file_id, VersionRow.version)
            .where(VersionRow.file_id.in_(list(keep)))
        )).all()
        by_file: dict[str, dict[int, int]] = defaultdict(dict)
        for version_id, file_id, number in rows:
            by_file[file_id][number] = version_id
        doomed = [ids[number] for file_id, ids in by_file.items()
                  for number in versions_to_prune(list(ids), keep[file_id])]
        if doomed:
            await delete_versions(session, doomed)

    def _remember_commits(self, committed: list[_Committed],
                          replicas: dict[str, list[str]]) -> None:
        """Write-through: a file just committed is likely read next, and
        its answers are known exactly now. Called right after the commit and
        its invalidation, with no await between: no write came in between.
        Filed under the keys the read paths' own calls compute."""
        assert self.memo is not None
        began = self.memo.generation
        for c in committed:  # in order: the last one of a file is its current
            if len(c.request.chunks) > MAX_CHUNKS:
                continue
            chunks = tuple(
                ChunkRef(seq, chunk.chunk_id, offset, chunk.size, chunk.compressed,
                         tuple(replicas.get(chunk.chunk_id, ())))
                for seq, (chunk, offset) in enumerate(zip(
                    c.request.chunks, _offsets(c.request), strict=False)))
            full = dataclasses.replace(c.version, chunks=chunks)
            record = c.record
            self.memo.put(memo_key(FileQueries.find_file, record.owner, record.path),
                          began, record, record_tags(record))
            self.memo.put(memo_key(FileQueries.get_version, record.file_id, owner=record.owner),
                          began, full, record_tags(full))


def _offsets(request: CommitRequest) -> itertools.accumulate[int]:
    """Each chunk's offset in the file (one more than there are chunks)."""
    return itertools.accumulate((c.size for c in request.chunks), initial=0)


def _collected() -> Conflict:
    # The collector claimed a chunk this upload relied on (only possible
    # when the upload outlived the grace period).
    return Conflict("a chunk of this upload was collected before commit; retry",
                    code="chunk_collected")
