"""Making finished uploads visible: the group commit of new versions.

One transaction for a batch of uploads, in named steps: touch and check the
chunks they rely on, record new copies, lock (or create) their files,
number and write the versions, their manifests and S3's metadata of them
(``CommitRequest.object_meta``), prune beyond each file's
``versions_kept`` (``echofs.core.retention``), and finally write the answers
through to the read memo.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import time
import uuid
from collections import defaultdict
from collections.abc import Sequence

from echofs.core.errors import Conflict
from echofs.core.manifest import ChunkRef, FileRecord, NewChunk, VersionRecord
from echofs.core.retention import versions_to_prune
from echofs.core.vocabulary import ChunkState
from echofs.metadata.chunks import claim
from echofs.metadata.files import FileQueries
from echofs.metadata.memoized import Tag, chunk_tags, memo_key, record_tags
from echofs.metadata.read_memo import MAX_CHUNKS
from echofs.metadata.records import ChunkClaim, CommitRequest, ObjectMeta
from echofs.metadata.sql import (
    Sql,
    batches,
    delete_versions,
    lock_chunks,
    marks,
    replicas_of,
    touch_live,
)
from echofs.metadata.transactions import ATTEMPTS, Transactions, retried

Outcome = tuple[FileRecord, VersionRecord] | Conflict
_LIVE = ChunkState.LIVE.value


@dataclasses.dataclass(frozen=True, slots=True)
class _Committed:
    request: CommitRequest
    record: FileRecord
    version: VersionRecord


class Commits(Transactions):
    async def commit_versions(self, requests: Sequence[CommitRequest]) -> list[Outcome]:
        """Commit several finished uploads in one transaction (group commit).

        Each request becomes the next version of its file, in the order
        given (two requests for one name get consecutive numbers). A request
        whose chunks were collected meanwhile gets a ``Conflict`` in its place
        and leaves no trace; the others commit. The statements are set-based,
        so the cost of a transaction is shared by everything it commits.
        """
        return (await self.claim_and_commit((), requests))[1]

    @retried
    async def claim_and_commit(self, chunks: Sequence[NewChunk],
                               requests: Sequence[CommitRequest]
                               ) -> tuple[dict[str, ChunkClaim], list[Outcome]]:
        """``claim_chunks(chunks)`` and ``commit_versions(requests)`` in one
        transaction: the group commit of every upload in flight, whatever
        step each is at, pays one transaction and one wait for the disk."""
        now = time.time()
        all_ids = sorted({c.chunk_id for r in requests for c in r.chunks})
        # Filled as the steps learn it: the files committed to, and chunks
        # whose other versions gain copies.
        changes: list[Tag] = []

        def body(db: Sql) -> tuple[dict[str, ChunkClaim], list[Outcome | None],
                                   list[_Committed], dict[str, list[str]]]:
            claims = claim(db, chunks, now)
            if not requests:
                return claims, [], [], {}
            live = _touch_live(db, all_ids, now)
            outcomes: list[Outcome | None] = [
                None if all(c.chunk_id in live for c in r.chunks) else _collected()
                for r in requests
            ]
            accepted = [r for r, o in zip(requests, outcomes, strict=True) if o is None]
            if not accepted:
                return claims, outcomes, [], {}
            changes.extend(_record_new_copies(db, accepted, now))
            files = _lock_files_for_commit(db, sorted({(r.owner, r.path) for r in accepted}),
                                           now)
            committed = _add_versions(db, accepted, files, now)
            _prune(db, {c.record.file_id: c.request.versions_kept for c in committed})
            changes.extend(tag for c in committed for tag in record_tags(c.record))
            replicas = replicas_of(db, all_ids) if self.memo is not None else {}
            return claims, outcomes, committed, replicas

        # Claims alone need not wait for the disk (see Transactions._write).
        claims, outcomes, committed, replicas = await self._transact(
            body, invalidates=changes, relaxed=not requests)
        if self.memo is not None and committed:
            self._remember_commits(committed, replicas)
        results = iter([(c.record, c.version) for c in committed])
        return claims, [next(results) if outcome is None else outcome for outcome in outcomes]

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


# -- the steps, inside the transaction (on the loop or in run_sync: plain SQL,
# touching nothing but the database) ------------------------------------------------


@dataclasses.dataclass(slots=True)
class _FileRow:
    id: str
    owner: str
    path: str
    current_version: int
    created_at: float


def _touch_live(db: Sql, ids: list[str], now: float) -> set[str]:
    """Touch the chunks a batch relies on and return those still live."""
    lock_chunks(db, ids)
    return {chunk_id for chunk_id, state in touch_live(db, ids, now).items()
            if state == _LIVE}


def _record_new_copies(db: Sql, accepted: list[CommitRequest], now: float) -> tuple[Tag, ...]:
    """Record the copies the uploads stored that the store did not know of;
    return the tags of chunks other versions already used (their memoized
    replica lists are incomplete now)."""
    pairs = {(c.chunk_id, w) for r in accepted for c in r.chunks for w in c.replicas}
    known = replicas_of(db, sorted({chunk_id for chunk_id, _ in pairs}))
    new_pairs = sorted(pair for pair in pairs if pair[1] not in known.get(pair[0], ()))
    if new_pairs:
        db.run_many("INSERT INTO chunk_replicas (chunk_id, worker_id, stored_at) "
                    "VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                    [(chunk_id, worker_id, now) for chunk_id, worker_id in new_pairs])
    return chunk_tags(chunk_id for chunk_id, _ in new_pairs if chunk_id in known)


def _lock_files_for_commit(db: Sql, keys: list[tuple[str, str]],
                           now: float) -> dict[tuple[str, str], _FileRow]:
    """The rows of these (owner, path) names, created if missing, locked
    until commit (in name order, so two batches cannot deadlock).

    Another transaction may delete a row between our insert (which found it)
    and our lock (which then finds nothing): the insert is simply tried
    again, and this time creates the file anew."""
    found: dict[tuple[str, str], _FileRow] = {}
    lock = " FOR UPDATE" if db.postgres else ""
    for _ in range(ATTEMPTS):
        missing = [key for key in keys if key not in found]
        if not missing:
            return found
        db.run_many("INSERT INTO files (id, owner, path, current_version, created_at, "
                    "updated_at) VALUES (?, ?, ?, 0, ?, ?) ON CONFLICT DO NOTHING",
                    [(uuid.uuid4().hex, owner, path, now, now) for owner, path in missing])
        # One owner at a time (in order): "owner = ? AND path IN (...)" is a
        # search of the (owner, path) index, where a row-value IN is a scan.
        by_owner: dict[str, list[str]] = defaultdict(list)
        for owner, path in missing:
            by_owner[owner].append(path)
        for owner in sorted(by_owner):
            for batch in batches(by_owner[owner]):
                rows = db.rows(
                    "SELECT id, owner, path, current_version, created_at FROM files "
                    f"WHERE owner = ? AND path IN ({marks(len(batch))}) ORDER BY path{lock}",
                    [owner, *batch])
                found.update(((row[1], row[2]), _FileRow(*row)) for row in rows)
    if all(key in found for key in keys):
        return found
    raise Conflict("a file kept being deleted during this upload; retry",
                   code="concurrent_delete")


def _add_versions(db: Sql, accepted: list[CommitRequest],
                  files: dict[tuple[str, str], _FileRow], now: float) -> list[_Committed]:
    """Number each request's version after its file's current one (in
    request order), and write the versions and their manifests."""
    numbered: list[tuple[CommitRequest, _FileRow, int]] = []
    for request in accepted:
        file_row = files[(request.owner, request.path)]
        file_row.current_version += 1
        numbered.append((request, file_row, file_row.current_version))
    touched = {id(f): f for _, f, _ in numbered}.values()
    db.run_many("UPDATE files SET current_version = ?, updated_at = ? WHERE id = ?",
                [(f.current_version, now, f.id) for f in touched])
    version_ids: dict[tuple[str, int], int] = {}
    for batch in batches(numbered):
        values = ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?)"] * len(batch))
        params = [p for request, file_row, number in batch for p in (
            file_row.id, number, request.size, request.blake3, len(request.chunks),
            request.mode.value, request.replicas_acked, now)]
        for version_id, file_id, number in db.rows(
                "INSERT INTO versions (file_id, version, size, blake3, chunk_count, mode, "
                f"replicas_acked, created_at) VALUES {values} RETURNING id, file_id, version",
                params):
            version_ids[(file_id, number)] = version_id
    manifest_rows = [
        (version_ids[(file_row.id, number)], seq, chunk.chunk_id, offset, chunk.size)
        for request, file_row, number in numbered
        for seq, (chunk, offset) in enumerate(zip(request.chunks, _offsets(request),
                                                  strict=False))
    ]
    if manifest_rows:
        db.run_many('INSERT INTO version_chunks (version_id, seq, chunk_id, "offset", size) '
                    "VALUES (?, ?, ?, ?, ?)", manifest_rows)
    _record_object_meta(db, [(file_row.id, number, request.object_meta)
                             for request, file_row, number in numbered
                             if request.object_meta is not None])
    return [
        _Committed(request, FileRecord(
            file_id=file_row.id, owner=file_row.owner, path=file_row.path,
            current_version=number, size=request.size, blake3=request.blake3,
            mode=request.mode, created_at=file_row.created_at, updated_at=now),
            VersionRecord(file_id=file_row.id, version=number, size=request.size,
                          blake3=request.blake3, chunk_count=len(request.chunks),
                          mode=request.mode, replicas_acked=request.replicas_acked,
                          created_at=now))
        for request, file_row, number in numbered
    ]


def _record_object_meta(db: Sql, metas: list[tuple[str, int, ObjectMeta]]) -> None:
    """S3's metadata of versions just numbered, in their transaction. A row
    for that (file, version) could only be one left behind by an older
    release (version numbers are never reused): it is replaced."""
    if metas:
        db.run_many(
            "INSERT INTO object_meta (file_id, version, etag, headers, user_meta) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (file_id, version) DO UPDATE SET "
            "etag = excluded.etag, headers = excluded.headers, user_meta = excluded.user_meta",
            [(file_id, number, meta.etag, json.dumps(meta.headers, sort_keys=True),
              json.dumps(meta.user_meta, sort_keys=True)) for file_id, number, meta in metas])


def _prune(db: Sql, keep: dict[str, int]) -> None:
    """Delete the versions of these files beyond the newest ``keep[file]``."""
    by_file: dict[str, dict[int, int]] = defaultdict(dict)
    file_ids = list(keep)
    for batch in batches(file_ids):
        for version_id, file_id, number in db.rows(
                f"SELECT id, file_id, version FROM versions WHERE file_id IN "
                f"({marks(len(batch))})", batch):
            by_file[file_id][number] = version_id
    doomed = [ids[number] for file_id, ids in by_file.items()
              for number in versions_to_prune(list(ids), keep[file_id])]
    if doomed:
        delete_versions(db, doomed)


def _offsets(request: CommitRequest) -> itertools.accumulate[int]:
    """Each chunk's offset in the file (one more than there are chunks)."""
    return itertools.accumulate((c.size for c in request.chunks), initial=0)


def _collected() -> Conflict:
    # The collector claimed a chunk this upload relied on (only possible
    # when the upload outlived the grace period).
    return Conflict("a chunk of this upload was collected before commit; retry",
                    code="chunk_collected")
