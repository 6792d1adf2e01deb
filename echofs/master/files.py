"""The file service: what the master does for a file, without HTTP.

An upload runs begin → write … → :meth:`FileService.commit`, and the commit
carries every effect of a new version with it, in one place: the manifest
cache forgets the file on every master, the write counts as activity for the
controller (with the workers it went to), the replicator is woken if copies
are owed, and deduplication is counted. A read asks :meth:`FileService.read`
which version it gets — the file's consistency mode picks the read policy
(:mod:`echofs.master.read_policies`) — and a delete forgets the file and wakes
the collector. The mode of a new write comes from the local mode table only:
nothing on a request's path waits for the controller.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

from echofs.core.consistency import Hint, Mode
from echofs.core.errors import NotFound
from echofs.core.manifest import FileRecord, VersionRecord
from echofs.core.ranges import ByteRange
from echofs.master.download import ChunkReader, stream_version
from echofs.master.modes import ModeTable, WriteActivity
from echofs.master.read_policies import READ_POLICIES, VersionSources
from echofs.master.upload import Upload, UploadPipeline, UploadResult
from echofs.metadata.records import ObjectMeta
from echofs.metadata.repository import MetadataRepository
from echofs.observability import metrics


class Wakeable(Protocol):
    """A background daemon that can be told its work is due now."""

    def wake(self) -> None: ...


@dataclass(frozen=True, slots=True)
class FileRead:
    """The version a read serves, under which mode, and whether it is older
    than the file's latest committed version."""

    version: VersionRecord
    mode: Mode
    stale: bool


class FileService:
    def __init__(self, repo: MetadataRepository, uploads: UploadPipeline,
                 sources: VersionSources, reader: ChunkReader, modes: ModeTable,
                 activity: WriteActivity, *, replicator: Wakeable,
                 collector: Wakeable) -> None:
        self.repo = repo
        self.uploads = uploads
        self.sources = sources
        self.reader = reader
        self.modes = modes
        self.activity = activity
        self.replicator = replicator
        self.collector = collector
        # Reads that served an older version than the latest (health reports it).
        self.stale_reads = 0

    # -- writes ----------------------------------------------------------------------

    async def write_mode(self, owner: str, path: str | None, hint: Hint | None) -> Mode:
        """The mode a new write to (owner, path) uses; never asks the controller."""
        file_id = None
        # Only a file with a mode of its own can differ from the default:
        # with none, skip finding the file.
        if path is not None and self.modes.has_file_modes():
            try:
                file_id = (await self.repo.find_file(owner, path)).file_id
            except NotFound:
                file_id = None
        return self.modes.mode_for_write(file_id, hint)

    async def begin(self, owner: str, path: str | None, hint: Hint | None) -> Upload:
        """Start an upload; its mode is fixed now, before any byte is stored."""
        return self.uploads.begin(await self.write_mode(owner, path, hint))

    async def commit(self, upload: Upload, *, owner: str, path: str,
                     object_meta: ObjectMeta | None = None) -> UploadResult:
        """Make the upload a new version of (owner, path), then apply its
        effects. ``object_meta`` (S3's ETag and headers) commits with it."""
        result = await upload.commit(owner=owner, path=path, object_meta=object_meta)
        file_id = result.file.file_id
        await self.sources.manifests.invalidate(file_id)
        self.activity.record(file_id, upload.targets)
        if upload.deferred_copies:
            self.replicator.wake()  # owed copies: start now, not at the next tick
        metrics.DEDUP_CHUNKS.inc(result.chunks_deduplicated)
        metrics.DEDUP_BYTES.inc(result.bytes_deduplicated)
        return result

    async def delete(self, file_id: str, owner: str | None, version: int | None) -> int:
        """Delete a file (or one version); returns how many versions went."""
        deleted = await self.repo.delete_file(file_id, owner, version)
        await self.sources.manifests.invalidate(file_id)
        self.collector.wake()
        return deleted

    # -- reads -----------------------------------------------------------------------

    def mode_of(self, file_id: str) -> Mode:
        return self.modes.lookup(file_id)[0]

    async def get(self, file_id: str, owner: str | None) -> FileRecord:
        return await self.repo.get_file(file_id, owner)

    async def find(self, owner: str, path: str) -> FileRecord:
        return await self.repo.find_file(owner, path)

    async def list_files(self, *, owner: str | None, prefix: str, after: tuple[str, str] | None,
                   limit: int) -> list[FileRecord]:
        return await self.repo.list_files(owner=owner, prefix=prefix, after=after, limit=limit)

    async def versions(self, record: FileRecord) -> list[VersionRecord]:
        return await self.repo.list_versions(record.file_id, record.owner)

    async def version(self, record: FileRecord, number: int | None) -> VersionRecord:
        """A version's manifest with its replicas, strictly (stat shows it)."""
        return await self.sources.manifests.version(record, number)

    async def read(self, record: FileRecord, number: int | None) -> FileRead:
        """The version a download of ``record`` serves, by the file's mode."""
        mode = self.mode_of(record.file_id)
        choice = await READ_POLICIES[mode].choose(record, number, self.sources)
        if choice.stale:
            self.stale_reads += 1
        return FileRead(choice.version, mode, choice.stale)

    def stream(self, version: VersionRecord, byte_range: ByteRange | None,
               read_ahead: int) -> AsyncIterator[bytes]:
        """The bytes of ``version`` (or of ``byte_range``), verified, in order."""
        return stream_version(self.reader, version, byte_range, read_ahead)
