"""The values the repository takes and gives besides the core records, and
the conversion of rows into core records (``echofs.core.manifest``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from echofs.core.consistency import Mode
from echofs.core.manifest import ChunkRef, FileRecord, NewChunk, VersionRecord
from echofs.core.vocabulary import ChunkState
from echofs.metadata.models import FileRow, VersionRow


@dataclass(frozen=True, slots=True)
class ChunkClaim:
    """What the store already knows of a chunk an upload is about to write."""

    chunk_id: str
    state: ChunkState
    replicas: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ObjectMeta:
    """S3's view of one version: ETag (quoted MD5), the content headers it
    was stored with, and its user metadata (``x-amz-meta-*``)."""

    etag: str
    headers: dict[str, str] = field(default_factory=dict)
    user_meta: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CommitRequest:
    """A fully stored upload waiting to become its file's next version.

    ``mode`` is coerced to a :class:`Mode` here, at the boundary: a caller
    may pass the mode's string, and an unknown one fails now rather than in
    the database's CHECK constraint inside a group commit.

    ``object_meta``: what S3 keeps of the version (``object_meta`` table),
    written in the version's own transaction, so no version S3 wrote is
    ever seen without its ETag."""

    owner: str
    path: str
    chunks: tuple[NewChunk, ...]
    size: int
    blake3: str
    mode: Mode
    replicas_acked: int
    versions_kept: int
    object_meta: ObjectMeta | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "mode", Mode(self.mode))


@dataclass(frozen=True, slots=True)
class StoreTotals:
    files: int
    versions: int
    chunks: int
    stored_bytes: int


def file_record(file_row: FileRow, version_row: VersionRow) -> FileRecord:
    return FileRecord(
        file_id=file_row.id,
        owner=file_row.owner,
        path=file_row.path,
        current_version=file_row.current_version,
        size=version_row.size,
        blake3=version_row.blake3,
        mode=Mode(version_row.mode),
        created_at=file_row.created_at,
        updated_at=file_row.updated_at,
    )


def version_record(
    file_id: str, row: VersionRow, chunks: tuple[ChunkRef, ...] = ()
) -> VersionRecord:
    return VersionRecord(
        file_id=file_id,
        version=row.version,
        size=row.size,
        blake3=row.blake3,
        chunk_count=row.chunk_count,
        mode=Mode(row.mode),
        replicas_acked=row.replicas_acked,
        created_at=row.created_at,
        chunks=chunks,
    )
