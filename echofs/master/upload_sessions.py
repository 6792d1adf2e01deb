"""Resumable uploads: the session service, without HTTP.

A client announces a file by its size (:meth:`UploadSessionService.create`),
sends its parts in any order, on any master, as often as it likes
(:meth:`put_part`), asks which parts are held (:meth:`status`) and finally
:meth:`complete` s the session: the parts' chunks, already stored and
referenced by the session, become the file's next version in one
transaction, nothing copied. :meth:`abort` and expiry (:class:`SessionExpirer`)
drop a session; its parts' chunks are then unreferenced and the collector
removes them after its grace period.

Each part goes through the ordinary upload pipeline (chunking, the session's
consistency mode, placement, quorum): a part is a small upload whose chunks
are recorded in its session instead of committed as a version. A part sent
again replaces the one held (identical bytes are deduplicated, so a retry
costs the transfer only). Everything a session is lives in the metadata
store, so a master restart loses nothing and a session started on one master
may be continued on another that shares the database.

S3 multipart uploads are meant to sit on this service as they are.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import logging
import time
from collections.abc import AsyncIterable, Mapping, Sequence
from dataclasses import dataclass

import blake3

from echofs.core.consistency import Hint, Mode
from echofs.core.errors import BadRequest, Conflict, EchoFSError, NotFound, PayloadTooLarge
from echofs.core.manifest import ChunkRef, FileRecord, VersionRecord
from echofs.core.upload_sessions import (
    MAX_PARTS,
    PartLayout,
    PartRecord,
    SessionState,
    UploadSession,
)
from echofs.daemon import Daemon
from echofs.master.download import ChunkReader, stream_version
from echofs.master.files import FileService, Wakeable
from echofs.metadata.records import ObjectMeta
from echofs.metadata.repository import MetadataRepository
from echofs.metadata.upload_sessions import SessionCommit, StoredPart
from echofs.observability import metrics

log = logging.getLogger(__name__)

# Hash read-back pieces this large off the event loop (BLAKE3 drops the GIL).
_HASH_OFF_LOOP = 64 * 1024


@dataclass(frozen=True, slots=True)
class SessionSettings:
    # How long a session stays open (UPLOAD_SESSION_TTL_SECONDS).
    lifetime: float
    # Open sessions one user may have at once (0 = no limit).
    max_open_per_user: int
    # The part size a session gets when the client names none, and the
    # largest one it may name.
    default_part_size: int
    max_part_size: int
    max_upload_size: int
    versions_kept: int
    read_ahead: int


@dataclass(frozen=True, slots=True)
class PartDigests:
    """What the client says a part's bytes hash to (hex; any may be absent)."""

    blake3: str | None = None
    sha256: str | None = None
    md5: str | None = None


@dataclass(frozen=True, slots=True)
class SessionStatus:
    session: UploadSession
    parts: list[PartRecord]

    @property
    def missing(self) -> list[int]:
        """Parts a fixed layout still lacks (a free layout lacks none)."""
        total = self.session.total_parts
        held = {p.part for p in self.parts}
        return [] if total is None else [n for n in range(total) if n not in held]


@dataclass(frozen=True, slots=True)
class CompletedUpload:
    file: FileRecord
    version: VersionRecord
    # False when the session had been completed before (a retried complete).
    created: bool


def check_digest(name: str, value: str | None) -> str | None:
    """A client's hex digest, lower-cased; 400 if it cannot be one."""
    if value is None or value == "":
        return None
    value = value.strip().lower()
    if len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
        raise BadRequest(f"{name} must be 64 hex digits", code="invalid_digest")
    return value


class UploadSessionService:
    def __init__(self, repo: MetadataRepository, files: FileService, reader: ChunkReader,
                 settings: SessionSettings, *, collector: Wakeable) -> None:
        self.repo = repo
        self.files = files
        self.reader = reader
        self.settings = settings
        self.collector = collector

    # -- create ------------------------------------------------------------------------

    def layout(self, total_size: int | None, part_size: int | None) -> PartLayout:
        """The parts a file of ``total_size`` bytes is sent in (None: a free
        layout, parts of up to ``part_size`` bytes); 4xx when the request is
        out of bounds."""
        s = self.settings
        if total_size is not None and total_size < 0:
            raise BadRequest("file_size must not be negative", code="invalid_size")
        if total_size is not None and total_size > s.max_upload_size:
            raise PayloadTooLarge(f"file of {total_size} bytes exceeds the "
                                  f"{s.max_upload_size}-byte limit")
        default = s.default_part_size if total_size is not None else s.max_part_size
        size = default if part_size is None else part_size
        if size < 1:
            raise BadRequest("chunk_size must be at least 1 byte", code="invalid_part_size")
        if size > s.max_part_size:
            raise PayloadTooLarge(f"chunk_size {size} exceeds the {s.max_part_size}-byte part "
                                  "limit", code="part_too_large")
        layout = PartLayout(total_size, size)
        if (layout.total_parts or 0) > MAX_PARTS:
            raise BadRequest(f"{layout.total_parts} parts exceed the limit of {MAX_PARTS}; "
                             "use a larger chunk_size", code="too_many_parts")
        return layout

    async def create(self, owner: str, path: str, total_size: int | None,
                     part_size: int | None, hint: Hint | None) -> UploadSession:
        """A new session for ``path``: a fixed layout when ``total_size`` is
        known, else a free one (parts chosen at :meth:`complete`)."""
        layout = self.layout(total_size, part_size)
        # The mode is fixed now, before any byte is stored, like a plain upload's.
        mode = await self.files.write_mode(owner, path, hint)
        session = await self.repo.create_upload_session(
            owner=owner, path=path, layout=layout, mode=mode,
            lifetime=self.settings.lifetime, max_open=self.settings.max_open_per_user)
        metrics.UPLOAD_SESSION_EVENTS.labels("created").inc()
        return session

    # -- the session as its owner sees it -------------------------------------------------

    async def session(self, session_id: str, owner: str | None) -> UploadSession:
        """The session, if ``owner`` may see it (None: anyone may); another
        user's session is a 404, so its existence does not leak."""
        session = await self.repo.get_upload_session(session_id)
        if owner is not None and session.owner != owner:
            raise NotFound("no such upload session", code="session_not_found")
        if session.state == SessionState.OPEN and session.expired(time.time()):
            raise NotFound("this upload session has expired", code="session_expired")
        return session

    async def status(self, session_id: str, owner: str | None) -> SessionStatus:
        session = await self.session(session_id, owner)
        parts = ([] if session.state == SessionState.COMPLETED
                 else await self.repo.upload_session_parts(session_id))
        return SessionStatus(session, parts)

    async def list_open(self, owner: str | None) -> list[UploadSession]:
        return await self.repo.list_upload_sessions(owner)

    # -- parts ---------------------------------------------------------------------------

    async def put_part(self, session_id: str, owner: str | None, part: int,
                       body: AsyncIterable[bytes], digests: PartDigests,
                       declared_length: int | None = None, *,
                       keep_md5: bool = False) -> PartRecord:
        """Store part ``part`` from ``body`` and record it in the session.

        The bytes must be exactly the part's size (a free layout: at most
        the part size), and match the digests the client sent; otherwise
        nothing is recorded (what was stored is left to the collector) and a
        4xx says why. ``keep_md5``: record the part's MD5 even if the client
        sent none (an S3 part's ETag)."""
        session = await self.session(session_id, owner)
        if session.state != SessionState.OPEN:
            raise Conflict("this upload session is already completed", code="session_completed")
        layout = session.layout
        if not layout.has(part):
            last = MAX_PARTS if layout.total_parts is None else layout.total_parts - 1
            raise BadRequest(f"part {part} does not exist: this session has parts 0 to "
                             f"{last}", code="invalid_part")
        expected = layout.size(part)
        limit = layout.part_size if expected is None else expected
        if declared_length is not None and (
                declared_length > limit if expected is None else declared_length != expected):
            metrics.UPLOAD_SESSION_EVENTS.labels("part_refused").inc()
            raise _wrong_size(part, expected, limit, declared_length)
        hashers = {name: hashlib.new(name) for name, wanted in (
            ("sha256", digests.sha256), ("md5", digests.md5 or keep_md5)) if wanted}
        upload = self.files.uploads.begin(session.mode)
        received = 0
        try:
            async for piece in body:
                received += len(piece)
                if received > limit:
                    raise _wrong_size(part, expected, limit, received)
                for hasher in hashers.values():
                    if len(piece) >= _HASH_OFF_LOOP:
                        await asyncio.to_thread(hasher.update, piece)
                    else:
                        hasher.update(piece)
                await upload.write(piece)
            if expected is not None and received != expected:
                raise BadRequest(f"part {part} must be {expected} bytes; {received} were sent",
                                 code="part_size_mismatch")
            stored = await upload.finish()
        except (BadRequest, PayloadTooLarge):
            metrics.UPLOAD_SESSION_EVENTS.labels("part_refused").inc()
            await upload.abort()
            raise
        except BaseException:
            await upload.abort()
            raise
        found = {name: hasher.hexdigest() for name, hasher in hashers.items()}
        try:
            self._verify(part, digests, stored.blake3, found)
        except BadRequest:
            metrics.UPLOAD_SESSION_EVENTS.labels("part_refused").inc()
            raise
        record = await self.repo.record_upload_part(session_id, StoredPart(
            part, stored.size, stored.blake3, found.get("sha256"), found.get("md5"),
            stored.chunks, stored.replicas_acked))
        if upload.deferred_copies:
            self.files.replicator.wake()  # owed copies: start now, not at the next tick
        metrics.UPLOAD_SESSION_EVENTS.labels("part_stored").inc()
        return record

    @staticmethod
    def _verify(part: int, digests: PartDigests, blake3_hex: str, found: dict[str, str]
                ) -> None:
        for name, wanted, got in (("BLAKE3", digests.blake3, blake3_hex),
                                  ("SHA-256", digests.sha256, found.get("sha256")),
                                  ("MD5", digests.md5, found.get("md5"))):
            if wanted is not None and wanted != got:
                raise BadRequest(f"part {part} does not match its {name} digest: the client "
                                 f"sent {wanted}, the bytes received hash to {got}; send "
                                 "the part again", code="digest_mismatch")

    # -- complete and abort -----------------------------------------------------------------

    async def complete(self, session_id: str, owner: str | None,
                       file_blake3: str | None = None,
                       parts: Sequence[int] | None = None,
                       part_blake3: Mapping[int, str] | None = None,
                       object_meta: ObjectMeta | None = None) -> CompletedUpload:
        """Make the session's parts its file's next version (answers the same
        version again if it is already completed). A fixed layout needs all
        its parts; a free one is made of ``parts`` (ascending; default:
        every part held), and held parts not named are dropped.
        ``part_blake3``: the parts as the caller checked them (S3 compares
        ETags first); a part sent again since is a 409, not committed.
        ``object_meta``: S3's metadata of the version, committed with it."""
        status = await self.status(session_id, owner)
        session = status.session
        if session.state == SessionState.COMPLETED:
            return await self._committed(session, file_blake3)
        held = {p.part: p for p in status.parts}
        chosen = self._chosen(session, status, parts)
        absent = [n for n in chosen if n not in held]
        if absent:
            shown = ", ".join(map(str, absent[:20]))
            more = "…" if len(absent) > 20 else ""
            raise Conflict(f"{len(absent)} part(s) missing: {shown}{more}",
                           code="parts_missing")
        if part_blake3 is not None and any(held[n].blake3 != part_blake3.get(n)
                                           for n in chosen):
            raise Conflict("a part was sent again after it was checked; complete again",
                           code="parts_changed")
        size = sum(held[n].size for n in chosen)
        if size > self.settings.max_upload_size:
            raise PayloadTooLarge(f"file of {size} bytes exceeds the "
                                  f"{self.settings.max_upload_size}-byte limit")
        digest = await self._file_digest(session_id, chosen, size)
        if file_blake3 is not None and file_blake3 != digest:
            raise BadRequest(f"the file does not match its BLAKE3 digest: the client sent "
                             f"{file_blake3}, the parts held hash to {digest}",
                             code="digest_mismatch")
        record, version, created = await self.repo.complete_upload_session(
            session_id, SessionCommit(digest, tuple((n, held[n].blake3) for n in chosen),
                                      size, self.settings.versions_kept, object_meta))
        if created:
            # The effects of a new version (as FileService.commit applies them):
            # every master forgets the file; the write counts for the controller.
            await self.files.sources.manifests.invalidate(record.file_id)
            self.files.activity.record(record.file_id,
                                       {w for c in version.chunks for w in c.replicas})
            metrics.UPLOAD_SESSION_EVENTS.labels("completed").inc()
        return CompletedUpload(record, version, created)

    @staticmethod
    def _chosen(session: UploadSession, status: SessionStatus,
                parts: Sequence[int] | None) -> list[int]:
        total = session.total_parts
        if total is not None:
            if parts is not None and list(parts) != list(range(total)):
                raise BadRequest("this session's parts are fixed: complete takes all of "
                                 "them", code="invalid_parts")
            return list(range(total))
        if parts is None:
            return [p.part for p in status.parts]
        chosen = list(parts)
        if any(b <= a for a, b in itertools.pairwise(chosen)):
            raise BadRequest("parts must be named in ascending order, each once",
                             code="invalid_parts")
        return chosen

    async def _committed(self, session: UploadSession, file_blake3: str | None
                         ) -> CompletedUpload:
        assert session.file_id is not None and session.version is not None
        if file_blake3 is not None and file_blake3 != session.blake3:
            raise BadRequest("this session was completed with another BLAKE3 digest",
                             code="digest_mismatch")
        record = await self.repo.get_file(session.file_id)
        version = await self.repo.get_version(session.file_id, session.version)
        return CompletedUpload(record, version, False)

    async def _file_digest(self, session_id: str, parts: Sequence[int], size: int) -> str:
        """BLAKE3 of the whole file, read back from the parts' chunks (each
        verified on the way): parts arrive in any order and on any master, so
        no single process saw the bytes in order. Streams; memory stays at
        ``read_ahead`` chunks."""
        chunks = await self.repo.upload_session_manifest(session_id, parts)
        refs, offset = [], 0
        for seq, chunk in enumerate(chunks):
            refs.append(ChunkRef(seq, chunk.chunk_id, offset, chunk.size, chunk.compressed,
                                 chunk.replicas))
            offset += chunk.size
        if offset != size:
            raise Conflict(f"the parts hold {offset} bytes, {size} were expected",
                           code="parts_changed")
        manifest = VersionRecord("", 0, size, "", len(refs), Mode.STRONG, 0, 0.0,
                                 tuple(refs))
        hasher = blake3.blake3()
        async for piece in stream_version(self.reader, manifest, None,
                                          self.settings.read_ahead):
            if len(piece) >= _HASH_OFF_LOOP:
                await asyncio.to_thread(hasher.update, piece)
            else:
                hasher.update(piece)
        return hasher.hexdigest()

    async def abort(self, session_id: str, owner: str | None) -> None:
        await self.session(session_id, owner)
        await self.repo.abort_upload_session(session_id)
        metrics.UPLOAD_SESSION_EVENTS.labels("aborted").inc()
        self.collector.wake()


class SessionExpirer(Daemon):
    """Drops sessions past their expiry, on every master (the deletes are
    idempotent), and wakes the collector for the chunks they held."""

    name = "session-expirer"

    def __init__(self, repo: MetadataRepository, collector: Wakeable, *,
                 interval: float) -> None:
        super().__init__(interval)
        self.repo = repo
        self.collector = collector

    async def run_once(self) -> int:
        total = 0
        while (dropped := await self.repo.expire_upload_sessions(time.time())) > 0:
            total += dropped
        if total:
            metrics.UPLOAD_SESSION_EVENTS.labels("expired").inc(total)
            log.info("expired %d upload session(s)", total)
            self.collector.wake()
        return total


def _wrong_size(part: int, expected: int | None, limit: int, got: int) -> EchoFSError:
    if expected is None:
        return PayloadTooLarge(f"part {part} may hold at most {limit} bytes; {got} were sent",
                               code="part_too_large")
    return BadRequest(f"part {part} must be {expected} bytes; {got} were sent",
                      code="part_size_mismatch")
