"""The records that describe stored files: files, versions and their chunks.

These are plain values passed between the metadata repository and the
pipelines; they know nothing of SQL or HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from echofs.core.consistency import Mode
from echofs.core.vocabulary import ReplicationReason


@dataclass(frozen=True, slots=True)
class ChunkRef:
    """One chunk of a version's manifest: its place in the file and its copies."""

    seq: int
    chunk_id: str
    offset: int
    size: int
    compressed: bool = False
    replicas: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class VersionRecord:
    file_id: str
    version: int
    size: int
    blake3: str
    chunk_count: int
    mode: Mode
    replicas_acked: int
    created_at: float
    chunks: tuple[ChunkRef, ...] = field(default=())

    @property
    def etag(self) -> str:
        return f'"{self.blake3}"'


@dataclass(frozen=True, slots=True)
class FileRecord:
    file_id: str
    owner: str
    path: str
    current_version: int
    size: int
    blake3: str
    mode: Mode
    created_at: float
    updated_at: float


@dataclass(frozen=True, slots=True)
class NewChunk:
    """What an upload learned about a chunk it stored (or found stored)."""

    chunk_id: str
    size: int
    stored_size: int
    compressed: bool
    replicas: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ReplicationTask:
    task_id: int
    chunk_id: str
    target_worker: str
    reason: ReplicationReason
    created_at: float
    attempts: int
