"""Upload sessions in the metadata store: sessions, the parts they hold and
those parts' chunks (see ``echofs.core.upload_sessions``).

Every write is one transaction that locks the session's row first (``FOR
UPDATE`` on PostgreSQL; SQLite serialises writers), so two masters taking
parts of one session, or a part racing ``complete``/``abort``, meet on that
row and the second one sees what the first did. A part's chunks are
referenced by ``upload_part_chunks`` from the moment the part is recorded:
the collector does not take them, however long the session stays open.
Completing commits the version with the steps of an ordinary commit
(``echofs.metadata.commits``) in the same transaction that closes the
session: the version appears exactly once, or not at all.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from echofs.core.consistency import Mode
from echofs.core.errors import Conflict, EchoFSError, NotFound
from echofs.core.manifest import FileRecord, NewChunk, VersionRecord
from echofs.core.upload_sessions import PartLayout, PartRecord, SessionState, UploadSession
from echofs.metadata.commits import (
    _add_versions,
    _lock_files_for_commit,
    _prune,
    _record_new_copies,
    _touch_live,
)
from echofs.metadata.memoized import Tag, chunk_tags, record_tags
from echofs.metadata.records import CommitRequest, ObjectMeta
from echofs.metadata.sql import Row, Sql, batches, marks
from echofs.metadata.transactions import NOTHING_READ_VISIBLE, Transactions, retried

_SESSION_COLUMNS = ("id, owner, path, total_size, part_size, mode, state, created_at, "
                    "expires_at, file_id, version, blake3")
_OPEN = SessionState.OPEN.value


class SessionQuotaExceeded(EchoFSError):
    """An owner has as many open sessions as it may (UPLOAD_SESSIONS_PER_USER)."""

    status = 429
    code = "too_many_sessions"


@dataclass(frozen=True, slots=True)
class StoredPart:
    """A part's bytes as stored: ready to be recorded in its session."""

    part: int
    size: int
    blake3: str
    sha256: str | None
    md5: str | None
    chunks: tuple[NewChunk, ...]
    replicas_acked: int


@dataclass(frozen=True, slots=True)
class SessionCommit:
    """What ``complete`` commits: the parts the file is made of, in order,
    by their digests (parts replaced meanwhile are noticed rather than
    committed under a digest that no longer fits), the file's size and
    BLAKE3. Held parts not named are dropped (their chunks collected).
    ``object_meta``: S3's metadata of the version, committed with it."""

    blake3: str
    parts: tuple[tuple[int, str], ...]
    size: int
    versions_kept: int
    object_meta: ObjectMeta | None = None


def _session(row: Row) -> UploadSession:
    (session_id, owner, path, total_size, part_size, mode, state, created_at, expires_at,
     file_id, version, blake3) = row
    layout = PartLayout(None if total_size is None else int(total_size), int(part_size))
    return UploadSession(session_id, owner, path, layout,
                         Mode(mode), SessionState(state), float(created_at), float(expires_at),
                         file_id, None if version is None else int(version), blake3)


def _lock_session(db: Sql, session_id: str) -> UploadSession:
    lock = " FOR UPDATE" if db.postgres else ""
    rows = db.rows(f"SELECT {_SESSION_COLUMNS} FROM upload_sessions WHERE id = ?{lock}",
                   (session_id,))
    if not rows:
        raise NotFound("no such upload session", code="session_not_found")
    return _session(rows[0])


def _require_open(session: UploadSession, now: float) -> None:
    if session.state != SessionState.OPEN:
        raise Conflict("this upload session is already completed", code="session_completed")
    if session.expired(now):
        raise NotFound("this upload session has expired", code="session_expired")


def _drop_parts(db: Sql, session_id: str, parts: Sequence[int] | None = None) -> None:
    """Forget parts of a session (all of them when ``parts`` is None); their
    chunks stay in the chunks table, for the collector to find unreferenced."""
    if parts is None:
        db.run("DELETE FROM upload_part_chunks WHERE session_id = ?", (session_id,))
        db.run("DELETE FROM upload_parts WHERE session_id = ?", (session_id,))
        return
    for batch in batches(list(parts)):
        db.run(f"DELETE FROM upload_part_chunks WHERE session_id = ? AND part IN "
               f"({marks(len(batch))})", [session_id, *batch])
        db.run(f"DELETE FROM upload_parts WHERE session_id = ? AND part IN "
               f"({marks(len(batch))})", [session_id, *batch])


def _part_rows(db: Sql, session_id: str) -> list[PartRecord]:
    return [PartRecord(int(part), int(size), b3, sha, md5, int(count), int(acked), float(at))
            for part, size, b3, sha, md5, count, acked, at in db.rows(
                "SELECT part, size, blake3, sha256, md5, chunk_count, replicas_acked, "
                "stored_at FROM upload_parts WHERE session_id = ? ORDER BY part",
                (session_id,))]


def _chunks_of_parts(db: Sql, session_id: str, parts: Sequence[int]) -> list[Row]:
    """(chunk id, size, stored size, compressed) of these parts' chunks, in
    the order of ``parts``, each part's in sequence."""
    rows = db.rows(
        "SELECT pc.part, pc.chunk_id, pc.size, c.stored_size, c.compressed FROM "
        "upload_part_chunks pc JOIN chunks c ON c.id = pc.chunk_id "
        "WHERE pc.session_id = ? ORDER BY pc.part, pc.seq", (session_id,))
    by_part: dict[int, list[Row]] = {}
    for part, *chunk in rows:
        by_part.setdefault(int(part), []).append(tuple(chunk))
    return [chunk for part in parts for chunk in by_part.get(part, [])]


class UploadSessions(Transactions):
    @retried
    async def create_upload_session(self, *, owner: str, path: str, layout: PartLayout,
                                    mode: Mode, lifetime: float,
                                    max_open: int) -> UploadSession:
        """A new open session, unless ``owner`` already has ``max_open`` open
        sessions that have not expired (429 ``too_many_sessions``)."""
        now = time.time()
        session = UploadSession(uuid.uuid4().hex, owner, path, layout, mode, SessionState.OPEN,
                                now, now + lifetime)

        def body(db: Sql) -> UploadSession:
            if max_open > 0:
                # Counted under the owner's lock on PostgreSQL: an advisory
                # lock keyed by the owner keeps two masters from both
                # admitting the last free place.
                if db.postgres:
                    db.rows("SELECT pg_advisory_xact_lock(hashtext(?))",
                            (f"echofs-upload-sessions:{owner}",))
                (count,), = db.rows(
                    "SELECT COUNT(*) FROM upload_sessions WHERE owner = ? AND state = ? "
                    "AND expires_at > ?", (owner, _OPEN, now))
                if int(count) >= max_open:
                    raise SessionQuotaExceeded(
                        f"{count} upload sessions are open already (the limit is {max_open}); "
                        "complete or abort one first")
            db.run("INSERT INTO upload_sessions (id, owner, path, total_size, part_size, "
                   "total_parts, mode, state, created_at, expires_at) "
                   "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   (session.session_id, owner, path, layout.total_size, layout.part_size,
                    layout.total_parts, mode.value, _OPEN, now, session.expires_at))
            return session

        return await self._transact(body, invalidates=NOTHING_READ_VISIBLE)

    async def get_upload_session(self, session_id: str) -> UploadSession:
        rows = await self._read_sql(lambda db: db.rows(
            f"SELECT {_SESSION_COLUMNS} FROM upload_sessions WHERE id = ?", (session_id,)))
        if not rows:
            raise NotFound("no such upload session", code="session_not_found")
        return _session(rows[0])

    async def upload_session_parts(self, session_id: str) -> list[PartRecord]:
        return await self._read_sql(lambda db: _part_rows(db, session_id))

    async def list_upload_sessions(self, owner: str | None) -> list[UploadSession]:
        """Open, unexpired sessions (of ``owner``, or everyone's), oldest first."""
        now = time.time()
        where, params = "state = ? AND expires_at > ?", [_OPEN, now]
        if owner is not None:
            where, params = where + " AND owner = ?", [*params, owner]
        rows = await self._read_sql(lambda db: db.rows(
            f"SELECT {_SESSION_COLUMNS} FROM upload_sessions WHERE {where} "
            "ORDER BY created_at LIMIT 1000", params))
        return [_session(row) for row in rows]

    @retried
    async def record_upload_part(self, session_id: str, stored: StoredPart) -> PartRecord:
        """Make ``stored`` the session's part ``stored.part`` (replacing what
        the part held before: a retry, or new bytes). Refused if the session
        is not open, or a chunk of the part was collected meanwhile."""
        now = time.time()
        ids = sorted({c.chunk_id for c in stored.chunks})

        def body(db: Sql) -> PartRecord:
            _require_open(_lock_session(db, session_id), now)
            live = _touch_live(db, ids, now)
            if any(chunk_id not in live for chunk_id in ids):
                raise Conflict("a chunk of this part was collected before it was recorded; "
                               "send the part again", code="chunk_collected")
            holder = CommitRequest(owner="", path="", chunks=stored.chunks, size=stored.size,
                                   blake3=stored.blake3, mode=Mode.STRONG,
                                   replicas_acked=stored.replicas_acked, versions_kept=1)
            _record_new_copies(db, [holder], now)
            _drop_parts(db, session_id, [stored.part])
            db.run("INSERT INTO upload_parts (session_id, part, size, blake3, sha256, md5, "
                   "chunk_count, replicas_acked, stored_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   (session_id, stored.part, stored.size, stored.blake3, stored.sha256,
                    stored.md5, len(stored.chunks), stored.replicas_acked, now))
            if stored.chunks:
                db.run_many("INSERT INTO upload_part_chunks (session_id, part, seq, chunk_id, "
                            "size) VALUES (?, ?, ?, ?, ?)",
                            [(session_id, stored.part, seq, c.chunk_id, c.size)
                             for seq, c in enumerate(stored.chunks)])
            return PartRecord(stored.part, stored.size, stored.blake3, stored.sha256,
                              stored.md5, len(stored.chunks), stored.replicas_acked, now)

        # Copies recorded for chunks other versions use: their memoized
        # replica lists are incomplete now.
        return await self._transact(body, invalidates=chunk_tags(ids))

    async def upload_session_manifest(self, session_id: str, parts: Sequence[int]
                                      ) -> list[NewChunk]:
        """The chunks of these parts of the session, in the order of
        ``parts``, with their replicas."""
        def body(db: Sql) -> list[NewChunk]:
            rows = _chunks_of_parts(db, session_id, parts)
            replicas: dict[str, list[str]] = {}
            ids = sorted({r[0] for r in rows})
            for batch in batches(ids):
                for chunk_id, worker_id in db.rows(
                        f"SELECT chunk_id, worker_id FROM chunk_replicas WHERE chunk_id IN "
                        f"({marks(len(batch))}) ORDER BY chunk_id, worker_id", batch):
                    replicas.setdefault(chunk_id, []).append(worker_id)
            return [NewChunk(chunk_id, int(size), int(stored), bool(compressed),
                             tuple(replicas.get(chunk_id, ())))
                    for chunk_id, size, stored, compressed in rows]

        return await self._read_sql(body)

    @retried
    async def complete_upload_session(self, session_id: str, commit: SessionCommit
                                      ) -> tuple[FileRecord, VersionRecord, bool]:
        """Make the session's parts its file's next version and close the
        session, in one transaction. Completing a completed session answers
        the version it made (a retried complete); the flag says whether
        this call made it."""
        now = time.time()
        changes: list[Tag] = []

        def body(db: Sql) -> tuple[str, int, bool]:
            session = _lock_session(db, session_id)
            if session.state == SessionState.COMPLETED:
                assert session.file_id is not None and session.version is not None
                return session.file_id, session.version, False
            _require_open(session, now)
            held = {p.part: p for p in _part_rows(db, session_id)}
            if any(n not in held or held[n].blake3 != b3 for n, b3 in commit.parts):
                raise Conflict("the session's parts changed while it was completing; "
                               "complete again", code="parts_changed")
            parts = [held[n] for n, _ in commit.parts]
            if sum(p.size for p in parts) != commit.size:
                raise Conflict("the parts do not add up to the file's size",
                               code="parts_changed")
            chunk_rows = _chunks_of_parts(db, session_id, [n for n, _ in commit.parts])
            chunks = tuple(NewChunk(cid, int(size), int(stored), bool(compressed), ())
                           for cid, size, stored, compressed in chunk_rows)
            ids = sorted({c.chunk_id for c in chunks})
            live = _touch_live(db, ids, now)
            if any(chunk_id not in live for chunk_id in ids):  # cannot happen: referenced
                raise Conflict("a chunk of this session was collected", code="chunk_collected")
            request = CommitRequest(
                owner=session.owner, path=session.path, chunks=chunks,
                size=commit.size, blake3=commit.blake3, mode=session.mode,
                replicas_acked=min((p.replicas_acked for p in parts), default=0),
                versions_kept=commit.versions_kept, object_meta=commit.object_meta)
            files = _lock_files_for_commit(db, [(session.owner, session.path)], now)
            committed = _add_versions(db, [request], files, now)
            _prune(db, {c.record.file_id: c.request.versions_kept for c in committed})
            changes.extend(tag for c in committed for tag in record_tags(c.record))
            record = committed[0].record
            _drop_parts(db, session_id)
            db.run("UPDATE upload_sessions SET state = ?, file_id = ?, version = ?, "
                   "blake3 = ? WHERE id = ?",
                   (SessionState.COMPLETED.value, record.file_id, record.current_version,
                    commit.blake3, session_id))
            return record.file_id, record.current_version, True

        file_id, number, made = await self._transact(body, invalidates=changes)
        record = await self.get_file(file_id, None)  # type: ignore[attr-defined]
        version = await self.get_version(file_id, number)  # type: ignore[attr-defined]
        return record, version, made

    @retried
    async def abort_upload_session(self, session_id: str) -> None:
        """Drop an open session and its parts (their chunks go to the collector)."""
        def body(db: Sql) -> None:
            session = _lock_session(db, session_id)
            if session.state == SessionState.COMPLETED:
                raise Conflict("this upload session is already completed",
                               code="session_completed")
            _drop_parts(db, session_id)
            db.run("DELETE FROM upload_sessions WHERE id = ?", (session_id,))

        await self._transact(body, invalidates=NOTHING_READ_VISIBLE)

    @retried
    async def expire_upload_sessions(self, now: float, limit: int = 100) -> int:
        """Drop sessions past their expiry (open ones lose their parts, whose
        chunks the collector then takes; completed ones are just forgotten)."""
        def body(db: Sql) -> int:
            lock = " FOR UPDATE SKIP LOCKED" if db.postgres else ""
            ids = [r[0] for r in db.rows(
                f"SELECT id FROM upload_sessions WHERE expires_at <= ? LIMIT {int(limit)}"
                f"{lock}", (now,))]
            for session_id in ids:
                _drop_parts(db, session_id)
            for batch in batches(ids):
                db.run(f"DELETE FROM upload_sessions WHERE id IN ({marks(len(batch))})", batch)
            return len(ids)

        return await self._transact(body, invalidates=NOTHING_READ_VISIBLE)
