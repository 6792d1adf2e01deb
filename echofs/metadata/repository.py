"""The metadata repository: every query EchoFS makes, and nothing else.

Written once for SQLite and PostgreSQL. Concurrency rules it relies on:

- A new version is created in one transaction that locks the file's row
  (``SELECT ... FOR UPDATE``; SQLite serialises writers anyway), so two
  uploads to the same name get distinct, ordered version numbers.
- Chunks and the collector meet on the ``chunks`` row: an upload touches every
  chunk it uses (``touched_at``) and commits only if each is still ``live``;
  the collector claims a chunk (``state='deleting'``) only if nothing
  references it and nobody touched it within the grace period. Both are row
  updates, so on PostgreSQL one waits for the other and re-checks.

SQLite allows one writer at a time; an in-process lock queues our writers so
they never meet SQLITE_BUSY. PostgreSQL runs writers at once, from any number
of masters, and relies on row locks: transactions that lock several chunk rows
lock them in chunk-id order (``_lock_chunks``) so they cannot deadlock each
other, and the rare deadlock or serialization failure left (PostgreSQL picks a
victim) is retried as a whole by ``@_retried``: every write method is one
transaction, so running it again is safe.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import itertools
import random
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import ParamSpec, TypeVar

from sqlalchemy import and_, delete, exists, func, or_, select, text, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from echofs.core.errors import Conflict, NotFound
from echofs.core.manifest import (
    ChunkRef,
    FileRecord,
    NewChunk,
    ReplicationTask,
    VersionRecord,
)
from echofs.metadata import database
from echofs.metadata.models import (
    ChunkReplicaRow,
    ChunkRow,
    FileRow,
    ReplicationTaskRow,
    VersionChunkRow,
    VersionRow,
)
from echofs.metadata.read_memo import EVERYTHING, MAX_CHUNKS, ReadMemo

# Bound parameter lists well under SQLite's and PostgreSQL's limits.
_BATCH = 500


@dataclass(frozen=True, slots=True)
class ChunkClaim:
    """What the store already knows of a chunk an upload is about to write."""

    chunk_id: str
    state: str  # 'live' or 'deleting'
    replicas: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class CommitRequest:
    """A fully stored upload waiting to become its file's next version."""

    owner: str
    path: str
    chunks: tuple[NewChunk, ...]
    size: int
    blake3: str
    mode: str
    replicas_acked: int
    versions_kept: int


@dataclass(frozen=True, slots=True)
class StoreTotals:
    files: int
    versions: int
    chunks: int
    stored_bytes: int


def _batches(items: Sequence[str]) -> Iterable[Sequence[str]]:
    for i in range(0, len(items), _BATCH):
        yield items[i : i + _BATCH]


# PostgreSQL's deadlock_detected and serialization_failure: the transaction
# was rolled back and may simply be run again.
_RETRYABLE_SQLSTATES = frozenset({"40P01", "40001"})
_ATTEMPTS = 5
_P = ParamSpec("_P")
_T = TypeVar("_T")


def _retried(method: Callable[_P, Awaitable[_T]]) -> Callable[_P, Awaitable[_T]]:
    """Run a one-transaction write method again if PostgreSQL aborted it as a
    deadlock victim or a serialization failure."""

    @functools.wraps(method)
    async def run(*args: _P.args, **kwargs: _P.kwargs) -> _T:
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                return await method(*args, **kwargs)
            except DBAPIError as exc:
                sqlstate = getattr(exc.orig, "sqlstate", None)
                if sqlstate not in _RETRYABLE_SQLSTATES or attempt == _ATTEMPTS:
                    raise
            await asyncio.sleep(random.uniform(0.005, 0.05) * attempt)
        raise AssertionError("unreachable")

    return run


def _record_tags(value: object) -> tuple[Hashable, ...]:
    """The files a memoized answer describes (see read_memo)."""
    if isinstance(value, FileRecord):
        return (("file", value.file_id), ("path", value.owner, value.path))
    if isinstance(value, VersionRecord):
        # Also under each chunk: a copy added or removed changes its replicas.
        return (("file", value.file_id), *_chunk_tags(c.chunk_id for c in value.chunks))
    raise TypeError(f"cannot memoize a {type(value).__name__}")


def _chunk_tags(chunk_ids: Iterable[str]) -> tuple[Hashable, ...]:
    return tuple(("chunk", chunk_id) for chunk_id in dict.fromkeys(chunk_ids))


@dataclass(frozen=True, slots=True)
class _Missing:
    """A memoized "no such file" answer."""

    message: str


def _memoized(
    missing_tags: Callable[..., tuple[Hashable, ...]],
) -> Callable[[Callable[_P, Awaitable[_T]]], Callable[_P, Awaitable[_T]]]:
    """Serve a read method's answer from the repository's memo when it has
    one (this process is the store's only writer), keep new answers there.
    For methods with hashable arguments that return frozen records;
    ``missing_tags`` files a NotFound answer, from the same arguments."""

    def decorate(method: Callable[_P, Awaitable[_T]]) -> Callable[_P, Awaitable[_T]]:
        @functools.wraps(method)
        async def run(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            memo: ReadMemo | None = self.memo
            if memo is None:
                return await method(self, *args, **kwargs)
            key = (method.__name__, *args, *sorted(kwargs.items()))
            found, value = memo.get(key)
            if found:
                if isinstance(value, _Missing):
                    raise NotFound(value.message)
                return value
            began = memo.generation
            try:
                value = await method(self, *args, **kwargs)
            except NotFound as exc:
                memo.put(key, began, _Missing(exc.message), missing_tags(*args, **kwargs))
                raise
            if not isinstance(value, VersionRecord) or len(value.chunks) <= MAX_CHUNKS:
                memo.put(key, began, value, _record_tags(value))
            return value

        return run  # type: ignore[return-value]

    return decorate


def _file_id_tags(file_id: str, *_: object, **__: object) -> tuple[Hashable, ...]:
    return (("file", file_id),)


def _path_tags(owner: str, path: str) -> tuple[Hashable, ...]:
    return (("path", owner, path),)


class MetadataRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)
        self._dialect = engine.dialect.name
        self._write_lock = asyncio.Lock() if self._dialect == "sqlite" else None
        # Commits that need not wait for the disk (see _write's ``relaxed``).
        self._relaxed_engine: AsyncEngine | None = None
        self._relaxed_sessions = self._sessions
        if self._dialect == "sqlite" and engine.url.database not in (None, "", ":memory:"):
            self._relaxed_engine = database.create_engine(
                engine.url.render_as_string(hide_password=False), relaxed=True)
            self._relaxed_sessions = async_sessionmaker(self._relaxed_engine,
                                                        expire_on_commit=False)
        # Set by the master that owns the store alone (see read_memo).
        self.memo: ReadMemo | None = None

    def keep_read_answers(self) -> None:
        """Only for the store's sole writer: remember read answers until the
        next write that may change them."""
        self.memo = ReadMemo()

    async def close(self) -> None:
        await self.engine.dispose()
        if self._relaxed_engine is not None:
            await self._relaxed_engine.dispose()

    @asynccontextmanager
    async def _write(self, *, reads_unchanged: bool = False,
                     changes: list[Hashable] | None = None,
                     relaxed: bool = False) -> AsyncIterator[AsyncSession]:
        """One write transaction. ``reads_unchanged`` marks those that cannot
        change any memoized read answer (timestamps, queue bookkeeping);
        ``changes``, filled by the transaction, limits what it changes to
        those memo tags (see read_memo).

        ``relaxed``: the commit returns without waiting for the disk
        (SQLite synchronous=NORMAL, PostgreSQL synchronous_commit off). Only
        for writes nothing is acknowledged on: chunk claims and touches. The
        log is sequential in both databases, so the durable commit of the
        version that relies on a claim makes the claim durable too; a claim
        lost in a crash before that only leaves copies of an unacknowledged
        upload without a row, which the orphan sweeper removes. Skipping the
        wait matters: on a disk busy with chunk writes, a synchronous commit
        waits for all of them (ext4 orders its journal), tens of ms.
        """
        sessions = self._relaxed_sessions if relaxed else self._sessions
        committed = False
        try:
            if self._write_lock is None:
                async with sessions() as session, session.begin():
                    if relaxed:
                        await session.execute(text("SET LOCAL synchronous_commit TO OFF"))
                    yield session
            else:
                async with self._write_lock, sessions() as session, session.begin():
                    yield session
            committed = True
        finally:
            # After the commit (or the rollback): answers memoized from here
            # on were read after this write.
            if self.memo is not None and not reads_unchanged:
                if committed and changes is not None:
                    self.memo.invalidate(changes)
                else:
                    self.memo.invalidate_all()

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[AsyncSession]:
        async with self._sessions() as session:
            yield session

    def _insert(self, table):  # type: ignore[no-untyped-def]
        dialect = postgresql if self._dialect == "postgresql" else sqlite
        return dialect.insert(table)

    async def _lock_chunks(self, session: AsyncSession, ids: Iterable[str], *,
                           skip_locked: bool = False) -> list[str]:
        """Lock chunk rows in id order (PostgreSQL; SQLite's writers are
        serialised already) and return the ids locked. One order for every
        transaction means two of them never wait for each other in a cycle.
        ``skip_locked`` leaves out rows another transaction holds."""
        ordered = sorted(set(ids))
        if self._dialect != "postgresql":
            return ordered
        locked: list[str] = []
        for batch in _batches(ordered):
            result = await session.execute(
                select(ChunkRow.id).where(ChunkRow.id.in_(batch)).order_by(ChunkRow.id)
                .with_for_update(key_share=True, skip_locked=skip_locked)
            )
            locked.extend(result.scalars())
        return locked

    # -- chunks an upload writes -------------------------------------------------

    @_retried
    async def claim_chunks(self, chunks: Sequence[NewChunk]) -> dict[str, ChunkClaim]:
        """Register chunks before their bytes go to workers.

        Creates missing rows and touches live ones, so the collector leaves
        them alone while the upload runs, and reports where copies already
        exist (deduplication).
        """
        now = time.time()
        ids = list(dict.fromkeys(c.chunk_id for c in chunks))
        if not ids:
            return {}
        async with self._write(reads_unchanged=True, relaxed=True) as session:
            # Sorted: concurrent inserts of the same ids wait in one order.
            rows = [
                {
                    "id": c.chunk_id,
                    "raw_size": c.size,
                    "stored_size": c.stored_size,
                    "compressed": c.compressed,
                    "state": "live",
                    "touched_at": now,
                    "created_at": now,
                }
                for c in sorted({c.chunk_id: c for c in chunks}.values(),
                                key=lambda c: c.chunk_id)
            ]
            await session.execute(self._insert(ChunkRow).on_conflict_do_nothing(), rows)
            await self._lock_chunks(session, ids)
            await session.execute(
                update(ChunkRow)
                .where(ChunkRow.id.in_(ids), ChunkRow.state == "live")
                .values(touched_at=now)
            )
            states = dict(
                (
                    await session.execute(
                        select(ChunkRow.id, ChunkRow.state).where(ChunkRow.id.in_(ids))
                    )
                ).all()
            )
            replicas = await self._replicas_of(session, ids)
        return {
            cid: ChunkClaim(cid, states.get(cid, "deleting"), tuple(replicas.get(cid, ())))
            for cid in ids
        }

    async def _replicas_of(self, session: AsyncSession, ids: Sequence[str]) -> dict[str, list[str]]:
        found: dict[str, list[str]] = defaultdict(list)
        for batch in _batches(ids):
            result = await session.execute(
                select(ChunkReplicaRow.chunk_id, ChunkReplicaRow.worker_id)
                .where(ChunkReplicaRow.chunk_id.in_(batch))
                .order_by(ChunkReplicaRow.chunk_id, ChunkReplicaRow.worker_id)
            )
            for chunk_id, worker_id in result.all():
                found[chunk_id].append(worker_id)
        return found

    @_retried
    async def record_partial_write(self, chunk_id: str, stored_on: str, owed: Sequence[str],
                                   reason: str) -> None:
        """A chunk acknowledged with one copy: record it and, in the same
        transaction, the durable intents for the copies still owed."""
        now = time.time()
        async with self._write(changes=list(_chunk_tags([chunk_id]))) as session:
            await session.execute(self._insert(ChunkReplicaRow).on_conflict_do_nothing().values(
                chunk_id=chunk_id, worker_id=stored_on, stored_at=now))
            if owed:
                await session.execute(self._insert(ReplicationTaskRow).on_conflict_do_nothing(), [
                    {"chunk_id": chunk_id, "target_worker": w, "reason": reason,
                     "created_at": now, "next_attempt_at": now, "attempts": 0}
                    for w in owed
                ])

    @_retried
    async def touch_chunks(self, chunk_ids: Sequence[str]) -> None:
        """Tell the collector these chunks are in use (a long upload's)."""
        now = time.time()
        async with self._write(reads_unchanged=True, relaxed=True) as session:
            for batch in _batches(await self._lock_chunks(session, chunk_ids)):
                await session.execute(
                    update(ChunkRow)
                    .where(ChunkRow.id.in_(batch), ChunkRow.state == "live")
                    .values(touched_at=now)
                )

    @_retried
    async def add_replicas(self, chunk_id: str, worker_ids: Iterable[str]) -> None:
        rows = [
            {"chunk_id": chunk_id, "worker_id": w, "stored_at": time.time()} for w in worker_ids
        ]
        if not rows:
            return
        async with self._write(changes=list(_chunk_tags([chunk_id]))) as session:
            await session.execute(self._insert(ChunkReplicaRow).on_conflict_do_nothing(), rows)

    @_retried
    async def remove_replica(self, chunk_id: str, worker_id: str) -> None:
        async with self._write(changes=list(_chunk_tags([chunk_id]))) as session:
            await session.execute(
                delete(ChunkReplicaRow).where(
                    ChunkReplicaRow.chunk_id == chunk_id, ChunkReplicaRow.worker_id == worker_id
                )
            )

    async def replica_page(
        self, after: tuple[str, str] | None, limit: int
    ) -> list[tuple[str, str, int]]:
        """(chunk id, worker id, stored size) of live chunks' replicas in key
        order after ``after``: the scrubber's cursor over everything stored."""
        query = (
            select(ChunkReplicaRow.chunk_id, ChunkReplicaRow.worker_id, ChunkRow.stored_size)
            .join(ChunkRow, ChunkRow.id == ChunkReplicaRow.chunk_id)
            .where(ChunkRow.state == "live")
            .order_by(ChunkReplicaRow.chunk_id, ChunkReplicaRow.worker_id)
            .limit(limit)
        )
        if after is not None:
            chunk_id, worker_id = after
            query = query.where(or_(
                ChunkReplicaRow.chunk_id > chunk_id,
                and_(ChunkReplicaRow.chunk_id == chunk_id, ChunkReplicaRow.worker_id > worker_id),
            ))
        async with self._read() as session:
            return [(c, w, int(n)) for c, w, n in (await session.execute(query)).all()]

    async def known_worker_ids(self) -> list[str]:
        """Every worker the metadata mentions: holders of replicas and targets
        of pending replication."""
        async with self._read() as session:
            holders = set((await session.execute(
                select(ChunkReplicaRow.worker_id).distinct())).scalars())
            targets = set((await session.execute(
                select(ReplicationTaskRow.target_worker).distinct())).scalars())
        return sorted(holders | targets)

    async def replicas_of(self, chunk_ids: Sequence[str]) -> dict[str, tuple[str, ...]]:
        """Where each of these chunks has copies (chunks with none are absent)."""
        async with self._read() as session:
            found = await self._replicas_of(session, list(dict.fromkeys(chunk_ids)))
        return {chunk_id: tuple(workers) for chunk_id, workers in found.items()}

    async def replicas(self, chunk_id: str) -> tuple[str, ...]:
        async with self._read() as session:
            found = await self._replicas_of(session, [chunk_id])
        return tuple(found.get(chunk_id, ()))

    # -- versions ------------------------------------------------------------------

    async def commit_version(
        self,
        *,
        owner: str,
        path: str,
        chunks: Sequence[NewChunk],
        size: int,
        blake3: str,
        mode: str,
        replicas_acked: int,
        versions_kept: int,
    ) -> tuple[FileRecord, VersionRecord]:
        """Make a fully stored upload visible, atomically, as the next version."""
        [outcome] = await self.commit_versions([CommitRequest(
            owner=owner, path=path, chunks=tuple(chunks), size=size, blake3=blake3,
            mode=mode, replicas_acked=replicas_acked, versions_kept=versions_kept)])
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    @_retried
    async def commit_versions(
        self, requests: Sequence[CommitRequest]
    ) -> list[tuple[FileRecord, VersionRecord] | Conflict]:
        """Commit several finished uploads in one transaction (group commit).

        Each request becomes the next version of its file, in the order
        given (two requests for one name get consecutive numbers). A request
        whose chunks were collected meanwhile gets a ``Conflict`` in its place
        and leaves no trace; the others commit. The statements are set-based,
        so the cost of a transaction is shared by everything it commits.
        """
        now = time.time()
        all_ids = sorted({c.chunk_id for r in requests for c in r.chunks})
        changes: list[Hashable] = []
        async with self._write(changes=changes) as session:
            await self._lock_chunks(session, all_ids)
            live: set[str] = set()
            for batch in _batches(all_ids):
                await session.execute(
                    update(ChunkRow)
                    .where(ChunkRow.id.in_(batch), ChunkRow.state == "live")
                    .values(touched_at=now)
                )
                live.update((await session.execute(
                    select(ChunkRow.id).where(ChunkRow.id.in_(batch), ChunkRow.state == "live")
                )).scalars())
            outcomes: list[tuple[FileRecord, VersionRecord] | Conflict | None] = []
            accepted: list[CommitRequest] = []
            for request in requests:
                if all(c.chunk_id in live for c in request.chunks):
                    outcomes.append(None)
                    accepted.append(request)
                else:
                    # The collector claimed a chunk this upload relied on (only
                    # possible when the upload outlived the grace period).
                    outcomes.append(Conflict(
                        "a chunk of this upload was collected before commit; retry",
                        code="chunk_collected"))
            if not accepted:
                return [o for o in outcomes if o is not None]
            pairs = {(c.chunk_id, w) for r in accepted for c in r.chunks for w in c.replicas}
            known = await self._replicas_of(session, sorted({chunk_id for chunk_id, _ in pairs}))
            new_pairs = sorted(pair for pair in pairs if pair[1] not in known.get(pair[0], ()))
            # New copies of chunks other versions share: their memoized
            # replica lists are incomplete now.
            changes.extend(_chunk_tags(chunk_id for chunk_id, _ in new_pairs
                                       if chunk_id in known))
            replica_rows = [{"chunk_id": chunk_id, "worker_id": worker_id, "stored_at": now}
                            for chunk_id, worker_id in new_pairs]
            if replica_rows:
                await session.execute(
                    self._insert(ChunkReplicaRow).on_conflict_do_nothing(), replica_rows
                )
            files = await self._lock_files_for_commit(
                session, sorted({(r.owner, r.path) for r in accepted}), now)
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
            await session.flush()
            manifest_rows = []
            for request, _, version_row in new_versions:
                offset = 0
                for seq, chunk in enumerate(request.chunks):
                    manifest_rows.append({"version_id": version_row.id, "seq": seq,
                                          "chunk_id": chunk.chunk_id, "offset": offset,
                                          "size": chunk.size})
                    offset += chunk.size
            if manifest_rows:
                await session.execute(self._insert(VersionChunkRow), manifest_rows)
            kept = {file_row.id: request.versions_kept for request, file_row, _ in new_versions}
            await self._prune(session, kept)
            committed = [
                (request, FileRecord(
                    file_id=file_row.id, owner=file_row.owner, path=file_row.path,
                    current_version=version_row.version, size=version_row.size,
                    blake3=version_row.blake3, mode=version_row.mode,
                    created_at=file_row.created_at, updated_at=now),
                 _version_record(file_row.id, version_row))
                for request, file_row, version_row in new_versions
            ]
            changes.extend(tag for _, record, _ in committed for tag in _record_tags(record))
            remembered = self.memo is not None and EVERYTHING not in changes
            if remembered:
                replicas = await self._replicas_of(session, all_ids)
        if remembered:
            self._remember_commits(committed, replicas)
        results = iter([(record, version) for _, record, version in committed])
        return [next(results) if outcome is None else outcome for outcome in outcomes]

    def _remember_commits(self, committed: list[tuple[CommitRequest, FileRecord, VersionRecord]],
                          replicas: dict[str, list[str]]) -> None:
        """Write-through: a file just committed is likely read next, and
        its answers are known exactly now. Called right after the commit and
        its invalidation, with no await between: no write came in between."""
        assert self.memo is not None
        began = self.memo.generation
        for request, record, version in committed:  # in order: the last one is current
            if len(request.chunks) > MAX_CHUNKS:
                continue
            offsets = itertools.accumulate((c.size for c in request.chunks), initial=0)
            chunks = tuple(
                ChunkRef(seq, c.chunk_id, offset, c.size, c.compressed,
                         tuple(replicas.get(c.chunk_id, ())))
                for seq, (c, offset) in enumerate(zip(request.chunks, offsets, strict=False)))
            full = dataclasses.replace(version, chunks=chunks)
            # The keys the read paths use: find_file(owner, path) and
            # get_version(file_id, None, owner) (see _memoized).
            self.memo.put(("find_file", record.owner, record.path), began, record,
                          _record_tags(record))
            self.memo.put(("get_version", record.file_id, None, record.owner), began, full,
                          _record_tags(full))

    async def _lock_files_for_commit(self, session: AsyncSession, keys: list[tuple[str, str]],
                                     now: float) -> dict[tuple[str, str], FileRow]:
        """The rows of these (owner, path) names, created if missing, locked
        until commit (in name order, so two batches cannot deadlock).

        Another transaction may delete a row between our insert (which found
        it) and our lock (which then finds nothing): the insert is simply
        tried again, and this time creates the file anew."""
        found: dict[tuple[str, str], FileRow] = {}
        for _ in range(_ATTEMPTS):
            missing = [key for key in keys if key not in found]
            if not missing:
                return found
            await session.execute(self._insert(FileRow).on_conflict_do_nothing(), [
                {"id": uuid.uuid4().hex, "owner": owner, "path": path, "current_version": 0,
                 "created_at": now, "updated_at": now} for owner, path in missing])
            for batch in _batches(missing):
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

    async def _prune(self, session: AsyncSession, keep: dict[str, int]) -> None:
        """Delete the versions of these files beyond the newest ``keep[file]``."""
        rows = (await session.execute(
            select(VersionRow.id, VersionRow.file_id, VersionRow.version)
            .where(VersionRow.file_id.in_(list(keep)))
        )).all()
        by_file: dict[str, list[tuple[int, int]]] = defaultdict(list)
        for version_id, file_id, number in rows:
            by_file[file_id].append((number, version_id))
        doomed = [version_id for file_id, versions in by_file.items()
                  for _, version_id in sorted(versions, reverse=True)[keep[file_id]:]]
        if doomed:
            await self._delete_versions(session, doomed)

    async def _delete_versions(self, session: AsyncSession, version_ids: list[int]) -> None:
        await session.execute(
            delete(VersionChunkRow).where(VersionChunkRow.version_id.in_(version_ids))
        )
        await session.execute(delete(VersionRow).where(VersionRow.id.in_(version_ids)))

    @_memoized(_file_id_tags)
    async def get_file(self, file_id: str, owner: str | None = None) -> FileRecord:
        async with self._read() as session:
            row = await self._file_with_version(session, file_id, owner)
        return _file_record(*row)

    @_memoized(_path_tags)
    async def find_file(self, owner: str, path: str) -> FileRecord:
        async with self._read() as session:
            row = (await session.execute(
                select(FileRow, VersionRow)
                .join(VersionRow, (VersionRow.file_id == FileRow.id)
                      & (VersionRow.version == FileRow.current_version))
                .where(FileRow.owner == owner, FileRow.path == path)
            )).first()
        if row is None:
            raise NotFound(f"no file named {path!r}")
        return _file_record(row[0], row[1])

    async def _file_with_version(
        self, session: AsyncSession, file_id: str, owner: str | None
    ) -> tuple[FileRow, VersionRow]:
        query = (
            select(FileRow, VersionRow)
            .join(
                VersionRow,
                (VersionRow.file_id == FileRow.id)
                & (VersionRow.version == FileRow.current_version),
            )
            .where(FileRow.id == file_id)
        )
        if owner is not None:
            query = query.where(FileRow.owner == owner)
        row = (await session.execute(query)).first()
        if row is None:
            raise NotFound(f"no file with id {file_id!r}")
        return row[0], row[1]

    @_memoized(_file_id_tags)
    async def get_version(
        self, file_id: str, version: int | None = None, owner: str | None = None
    ) -> VersionRecord:
        """A version (default: the current one) with its manifest and replicas."""
        async with self._read() as session:
            file_row, current = await self._file_with_version(session, file_id, owner)
            row = current
            if version is not None and version != current.version:
                row = (
                    await session.execute(
                        select(VersionRow).where(
                            VersionRow.file_id == file_id, VersionRow.version == version
                        )
                    )
                ).scalar_one_or_none()
                if row is None:
                    raise NotFound(f"file {file_id!r} has no version {version}")
            manifest = (
                await session.execute(
                    select(VersionChunkRow, ChunkRow.compressed)
                    .join(ChunkRow, ChunkRow.id == VersionChunkRow.chunk_id)
                    .where(VersionChunkRow.version_id == row.id)
                    .order_by(VersionChunkRow.seq)
                )
            ).all()
            ids = list(dict.fromkeys(vc.chunk_id for vc, _ in manifest))
            replicas = await self._replicas_of(session, ids)
        chunks = tuple(
            ChunkRef(
                vc.seq,
                vc.chunk_id,
                vc.offset,
                vc.size,
                compressed,
                tuple(replicas.get(vc.chunk_id, ())),
            )
            for vc, compressed in manifest
        )
        return _version_record(file_row.id, row, chunks)

    async def list_versions(self, file_id: str, owner: str | None = None) -> list[VersionRecord]:
        async with self._read() as session:
            await self._file_with_version(session, file_id, owner)
            rows = (
                (
                    await session.execute(
                        select(VersionRow)
                        .where(VersionRow.file_id == file_id)
                        .order_by(VersionRow.version.desc())
                    )
                )
                .scalars()
                .all()
            )
        return [_version_record(file_id, row) for row in rows]

    async def list_files(
        self,
        *,
        owner: str | None,
        prefix: str = "",
        after: tuple[str, str] | None = None,
        limit: int = 100,
    ) -> list[FileRecord]:
        """Files in (path, owner) order; ``after`` is the last (path, owner) seen."""
        query = (
            select(FileRow, VersionRow)
            .join(
                VersionRow,
                (VersionRow.file_id == FileRow.id)
                & (VersionRow.version == FileRow.current_version),
            )
            .order_by(FileRow.path, FileRow.owner)
            .limit(limit)
        )
        if owner is not None:
            query = query.where(FileRow.owner == owner)
        if prefix:
            # substr, not LIKE: LIKE is case-insensitive on SQLite and treats
            # '%' and '_' in names as wildcards.
            query = query.where(func.substr(FileRow.path, 1, len(prefix)) == prefix)
        if after is not None:
            path, owner_seen = after
            query = query.where(
                or_(FileRow.path > path, and_(FileRow.path == path, FileRow.owner > owner_seen))
            )
        async with self._read() as session:
            rows = (await session.execute(query)).all()
        return [_file_record(f, v) for f, v in rows]

    @_retried
    async def delete_file(
        self, file_id: str, owner: str | None = None, version: int | None = None
    ) -> int:
        """Delete a file (or one version of it); returns how many versions went."""
        async with self._write() as session:
            query = select(FileRow).where(FileRow.id == file_id).with_for_update()
            if owner is not None:
                query = query.where(FileRow.owner == owner)
            file_row = (await session.execute(query)).scalar_one_or_none()
            if file_row is None:
                raise NotFound(f"no file with id {file_id!r}")
            versions = dict(
                (
                    await session.execute(
                        select(VersionRow.version, VersionRow.id).where(
                            VersionRow.file_id == file_id
                        )
                    )
                ).all()
            )
            if version is not None:
                if version not in versions:
                    raise NotFound(f"file {file_id!r} has no version {version}")
                doomed = [versions.pop(version)]
            else:
                doomed, versions = list(versions.values()), {}
            await self._delete_versions(session, doomed)
            if versions:
                file_row.current_version = max(versions)
                file_row.updated_at = time.time()
            else:
                await session.delete(file_row)
        return len(doomed)

    # -- garbage collection ------------------------------------------------------

    @_retried
    async def claim_garbage(self, touched_before: float, limit: int = 1000) -> list[str]:
        """Mark unreferenced, untouched chunks as 'deleting' and return them,
        together with chunks a previous (interrupted) collection had claimed."""
        unreferenced = ~exists().where(VersionChunkRow.chunk_id == ChunkRow.id)
        # Only unreferenced chunks: no memoized answer (a file, a version)
        # mentions them.
        async with self._write(reads_unchanged=True) as session:
            pending = list(
                (
                    await session.execute(
                        select(ChunkRow.id).where(ChunkRow.state == "deleting").limit(limit)
                    )
                ).scalars()
            )
            candidates = list(
                (
                    await session.execute(
                        select(ChunkRow.id)
                        .where(
                            ChunkRow.state == "live",
                            ChunkRow.touched_at < touched_before,
                            unreferenced,
                        )
                        .limit(max(0, limit - len(pending)))
                    )
                ).scalars()
            )
            claimed: list[str] = []
            # Rows an upload holds right now are in use: not garbage this pass.
            candidates = await self._lock_chunks(session, candidates, skip_locked=True)
            for batch in _batches(candidates):
                result = await session.execute(
                    update(ChunkRow)
                    .where(
                        ChunkRow.id.in_(batch),
                        ChunkRow.state == "live",
                        ChunkRow.touched_at < touched_before,
                        unreferenced,
                    )
                    .values(state="deleting")
                    .returning(ChunkRow.id)
                )
                claimed.extend(result.scalars())
        return pending + claimed

    @_retried
    async def forget_chunks(self, chunk_ids: Sequence[str]) -> None:
        """Drop the rows of chunks whose copies the collector has deleted."""
        # Collected chunks were unreferenced: no memoized answer mentions them.
        async with self._write(reads_unchanged=True) as session:
            for batch in _batches(await self._lock_chunks(session, chunk_ids)):
                await session.execute(
                    delete(ReplicationTaskRow).where(ReplicationTaskRow.chunk_id.in_(batch))
                )
                await session.execute(
                    delete(ChunkReplicaRow).where(ChunkReplicaRow.chunk_id.in_(batch))
                )
                await session.execute(
                    delete(ChunkRow).where(ChunkRow.id.in_(batch), ChunkRow.state == "deleting")
                )

    async def known_chunks(self, chunk_ids: Sequence[str]) -> set[str]:
        """Which of these ids the metadata store has a row for (any state)."""
        found: set[str] = set()
        async with self._read() as session:
            for batch in _batches(list(chunk_ids)):
                found.update((await session.execute(
                    select(ChunkRow.id).where(ChunkRow.id.in_(batch)))).scalars())
        return found

    async def chunk_state(self, chunk_id: str) -> str | None:
        async with self._read() as session:
            return (
                await session.execute(select(ChunkRow.state).where(ChunkRow.id == chunk_id))
            ).scalar_one_or_none()

    # -- replication queue ---------------------------------------------------------

    @_retried
    async def enqueue_replication(self, chunk_id: str, target_worker: str, reason: str) -> None:
        """Queue a copy of ``chunk_id`` for ``target_worker``. A chunk the
        collector removed meanwhile (a scrub or read that raced it) is owed
        to nobody: nothing is queued."""
        now = time.time()
        try:
            async with self._write(reads_unchanged=True) as session:
                await session.execute(
                    self._insert(ReplicationTaskRow)
                    .on_conflict_do_nothing()
                    .values(
                        chunk_id=chunk_id,
                        target_worker=target_worker,
                        reason=reason,
                        created_at=now,
                        next_attempt_at=now,
                        attempts=0,
                    )
                )
        except IntegrityError:
            if await self.chunk_state(chunk_id) is not None:
                raise

    @_retried
    async def expedite_replication(self, target_worker: str) -> int:
        """Make every task for ``target_worker`` due now (it just came back)."""
        async with self._write(reads_unchanged=True) as session:
            result = await session.execute(
                update(ReplicationTaskRow)
                .where(ReplicationTaskRow.target_worker == target_worker)
                .values(next_attempt_at=time.time())
            )
        return result.rowcount

    @_retried
    async def drop_replication(self, task: ReplicationTask) -> None:
        async with self._write(reads_unchanged=True) as session:
            await session.execute(delete(ReplicationTaskRow).where(
                ReplicationTaskRow.id == task.task_id))

    async def under_replicated(self, replication_factor: int, limit: int = 500
                               ) -> list[tuple[str, tuple[str, ...]]]:
        """Committed chunks with fewer than ``replication_factor`` recorded
        copies (say, written while a worker was away), with their replicas."""
        copies = func.count(ChunkReplicaRow.worker_id)
        referenced = exists().where(VersionChunkRow.chunk_id == ChunkRow.id)
        query = (
            select(ChunkRow.id)
            .outerjoin(ChunkReplicaRow, ChunkReplicaRow.chunk_id == ChunkRow.id)
            .where(ChunkRow.state == "live", referenced)
            .group_by(ChunkRow.id)
            .having(copies < replication_factor)
            .order_by(ChunkRow.id)
            .limit(limit)
        )
        async with self._read() as session:
            ids = list((await session.execute(query)).scalars())
            replicas = await self._replicas_of(session, ids)
        return [(cid, tuple(replicas.get(cid, ()))) for cid in ids]

    async def chunks_on_worker(
        self, worker_id: str, after: str | None, limit: int
    ) -> list[tuple[str, tuple[str, ...]]]:
        """Live chunks with a copy on ``worker_id`` (id order, after ``after``),
        each with all its replicas."""
        query = (
            select(ChunkReplicaRow.chunk_id)
            .join(ChunkRow, ChunkRow.id == ChunkReplicaRow.chunk_id)
            .where(ChunkReplicaRow.worker_id == worker_id, ChunkRow.state == "live")
            .order_by(ChunkReplicaRow.chunk_id).limit(limit)
        )
        if after is not None:
            query = query.where(ChunkReplicaRow.chunk_id > after)
        async with self._read() as session:
            ids = list((await session.execute(query)).scalars())
            replicas = await self._replicas_of(session, ids)
        return [(cid, tuple(replicas.get(cid, ()))) for cid in ids]

    async def due_replications(self, limit: int = 100) -> list[ReplicationTask]:
        async with self._read() as session:
            rows = (
                (
                    await session.execute(
                        select(ReplicationTaskRow)
                        .where(ReplicationTaskRow.next_attempt_at <= time.time())
                        .order_by(ReplicationTaskRow.next_attempt_at)
                        .limit(limit)
                    )
                )
                .scalars()
                .all()
            )
        return [
            ReplicationTask(r.id, r.chunk_id, r.target_worker, r.reason, r.created_at, r.attempts)
            for r in rows
        ]

    @_retried
    async def complete_replication(self, task: ReplicationTask) -> None:
        async with self._write(changes=list(_chunk_tags([task.chunk_id]))) as session:
            await session.execute(
                delete(ReplicationTaskRow).where(ReplicationTaskRow.id == task.task_id)
            )
            await session.execute(
                self._insert(ChunkReplicaRow)
                .on_conflict_do_nothing()
                .values(chunk_id=task.chunk_id, worker_id=task.target_worker, stored_at=time.time())
            )

    @_retried
    async def retry_replication(self, task: ReplicationTask, delay: float) -> None:
        async with self._write(reads_unchanged=True) as session:
            await session.execute(
                update(ReplicationTaskRow)
                .where(ReplicationTaskRow.id == task.task_id)
                .values(
                    attempts=ReplicationTaskRow.attempts + 1, next_attempt_at=time.time() + delay
                )
            )

    async def replication_backlog(self) -> tuple[int, float | None]:
        """Queue depth and the creation time of its oldest item."""
        async with self._read() as session:
            depth, oldest = (
                await session.execute(
                    select(
                        func.count(ReplicationTaskRow.id), func.min(ReplicationTaskRow.created_at)
                    )
                )
            ).one()
        return int(depth), oldest

    async def totals(self) -> StoreTotals:
        async with self._read() as session:
            files = (await session.execute(select(func.count(FileRow.id)))).scalar_one()
            versions = (await session.execute(select(func.count(VersionRow.id)))).scalar_one()
            chunks, stored = (
                await session.execute(
                    select(
                        func.count(ChunkRow.id), func.coalesce(func.sum(ChunkRow.stored_size), 0)
                    )
                )
            ).one()
        return StoreTotals(int(files), int(versions), int(chunks), int(stored))


def _file_record(file_row: FileRow, version_row: VersionRow) -> FileRecord:
    return FileRecord(
        file_id=file_row.id,
        owner=file_row.owner,
        path=file_row.path,
        current_version=file_row.current_version,
        size=version_row.size,
        blake3=version_row.blake3,
        mode=version_row.mode,
        created_at=file_row.created_at,
        updated_at=file_row.updated_at,
    )


def _version_record(
    file_id: str, row: VersionRow, chunks: tuple[ChunkRef, ...] = ()
) -> VersionRecord:
    return VersionRecord(
        file_id=file_id,
        version=row.version,
        size=row.size,
        blake3=row.blake3,
        chunk_count=row.chunk_count,
        mode=row.mode,
        replicas_acked=row.replicas_acked,
        created_at=row.created_at,
        chunks=chunks,
    )
