"""The metadata schema. Changed only together with an Alembic migration.

Times are UNIX epoch seconds (double precision): the same on SQLite and
PostgreSQL, and ages are plain subtraction.
"""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from echofs.core.consistency import Mode
from echofs.core.vocabulary import ChunkState

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

Epoch = Float(precision=53)


def one_of(column: str, words: type[StrEnum], name: str) -> CheckConstraint:
    """The database refuses a value outside the vocabulary (a typo, a mode
    that does not exist), whichever code path wrote it."""
    allowed = ", ".join(f"'{word.value}'" for word in words)
    return CheckConstraint(f"{column} IN ({allowed})", name=name)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class FileRow(Base):
    __tablename__ = "files"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    owner: Mapped[str] = mapped_column(String(255))
    path: Mapped[str] = mapped_column(String(1024))
    current_version: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[float] = mapped_column(Epoch)
    updated_at: Mapped[float] = mapped_column(Epoch)
    __table_args__ = (UniqueConstraint("owner", "path", name="uq_files_owner_path"),)


class VersionRow(Base):
    __tablename__ = "versions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    file_id: Mapped[str] = mapped_column(ForeignKey("files.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    size: Mapped[int] = mapped_column(BigInteger)
    blake3: Mapped[str] = mapped_column(String(64))
    chunk_count: Mapped[int] = mapped_column(Integer)
    mode: Mapped[str] = mapped_column(String(16))
    replicas_acked: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[float] = mapped_column(Epoch)
    __table_args__ = (
        UniqueConstraint("file_id", "version", name="uq_versions_file_version"),
        one_of("mode", Mode, "ck_versions_mode"),
    )


class ChunkRow(Base):
    __tablename__ = "chunks"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    raw_size: Mapped[int] = mapped_column(Integer)
    stored_size: Mapped[int] = mapped_column(Integer)
    compressed: Mapped[bool] = mapped_column(Boolean)
    # 'live', or 'deleting' once the collector has claimed it.
    state: Mapped[str] = mapped_column(String(16), default=ChunkState.LIVE)
    # Last time an upload wrote, reused or committed this chunk: the collector
    # leaves chunks touched within its grace period alone (in-flight uploads).
    touched_at: Mapped[float] = mapped_column(Epoch)
    created_at: Mapped[float] = mapped_column(Epoch)
    __table_args__ = (
        Index("ix_chunks_state_touched", "state", "touched_at"),
        one_of("state", ChunkState, "ck_chunks_state"),
    )


class VersionChunkRow(Base):
    __tablename__ = "version_chunks"
    version_id: Mapped[int] = mapped_column(
        ForeignKey("versions.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    chunk_id: Mapped[str] = mapped_column(ForeignKey("chunks.id"), index=True)
    offset: Mapped[int] = mapped_column(BigInteger)
    size: Mapped[int] = mapped_column(Integer)


class ChunkReplicaRow(Base):
    __tablename__ = "chunk_replicas"
    chunk_id: Mapped[str] = mapped_column(
        ForeignKey("chunks.id", ondelete="CASCADE"), primary_key=True
    )
    worker_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    stored_at: Mapped[float] = mapped_column(Epoch)


class ReplicationTaskRow(Base):
    """A durable intent to put a copy of a chunk on a worker (hinted handoff,
    under-replicated writes, read repair)."""

    __tablename__ = "replication_tasks"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    chunk_id: Mapped[str] = mapped_column(ForeignKey("chunks.id", ondelete="CASCADE"))
    target_worker: Mapped[str] = mapped_column(String(128))
    reason: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[float] = mapped_column(Epoch)
    next_attempt_at: Mapped[float] = mapped_column(Epoch)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    __table_args__ = (
        UniqueConstraint("chunk_id", "target_worker", name="uq_replication_chunk_target"),
        Index("ix_replication_due", "next_attempt_at"),
    )


# -- consistency controller ------------------------------------------------------


class ConsistencyModeRow(Base):
    """The current mode of each file the controller has decided on."""

    __tablename__ = "consistency_modes"
    object_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    mode: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(32))
    score: Mapped[float | None] = mapped_column(Epoch, nullable=True)
    changed_at: Mapped[float] = mapped_column(Epoch)
    __table_args__ = (one_of("mode", Mode, "ck_consistency_modes_mode"),)


class ConsistencyHintRow(Base):
    __tablename__ = "consistency_hints"
    object_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    hint: Mapped[str] = mapped_column(String(16))
    updated_at: Mapped[float] = mapped_column(Epoch)


class CriticalKeyRow(Base):
    __tablename__ = "critical_keys"
    object_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    added_at: Mapped[float] = mapped_column(Epoch)


class ControllerSettingRow(Base):
    """Cluster-wide controller levers (today: the global override)."""

    __tablename__ = "controller_settings"
    key: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[float] = mapped_column(Epoch)


class ModeTransitionRow(Base):
    """The audit log: every mode change, why, and the signals behind it."""

    __tablename__ = "mode_transitions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[float] = mapped_column(Epoch)
    object_id: Mapped[str] = mapped_column(String(64))
    from_mode: Mapped[str] = mapped_column(String(16))
    to_mode: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(32))
    score: Mapped[float | None] = mapped_column(Epoch, nullable=True)
    signals: Mapped[str] = mapped_column(Text)
    __table_args__ = (
        Index("ix_mode_transitions_at", "at"),
        Index("ix_mode_transitions_object", "object_id", "at"),
        one_of("from_mode", Mode, "ck_mode_transitions_from_mode"),
        one_of("to_mode", Mode, "ck_mode_transitions_to_mode"),
    )


# -- accounts ------------------------------------------------------------------------


class UserRow(Base):
    __tablename__ = "users"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[float] = mapped_column(Epoch)
    # Tokens carry the generation they were issued in; logout bumps it.
    token_generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Lowercased; unique among accounts that have one (None before 0006).
    email: Mapped[str | None] = mapped_column(String(254), nullable=True, unique=True,
                                              index=True)


# -- resumable upload sessions -------------------------------------------------------


class UploadSessionRow(Base):
    """A resumable upload: a file announced by size, sent as numbered parts,
    made a version by ``complete``. Open sessions past ``expires_at`` are
    dropped by the expirer, which leaves their parts' chunks to the collector."""

    __tablename__ = "upload_sessions"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    owner: Mapped[str] = mapped_column(String(255))
    path: Mapped[str] = mapped_column(String(1024))
    # Unknown (NULL) for a free layout: parts of any size, chosen at complete.
    total_size: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    part_size: Mapped[int] = mapped_column(BigInteger)
    total_parts: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # The mode every part is written in: fixed at init, like a plain upload's.
    mode: Mapped[str] = mapped_column(String(16))
    # 'open', then 'completed' (file_id/version say what it made).
    state: Mapped[str] = mapped_column(String(16))
    file_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    blake3: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[float] = mapped_column(Epoch)
    expires_at: Mapped[float] = mapped_column(Epoch)
    __table_args__ = (
        Index("ix_upload_sessions_owner_state", "owner", "state"),
        Index("ix_upload_sessions_expires", "expires_at"),
        one_of("mode", Mode, "ck_upload_sessions_mode"),
        CheckConstraint("state IN ('open', 'completed')", name="ck_upload_sessions_state"),
    )


class UploadPartRow(Base):
    """One part a session holds: its bytes' digest and how many chunks."""

    __tablename__ = "upload_parts"
    session_id: Mapped[str] = mapped_column(
        ForeignKey("upload_sessions.id", ondelete="CASCADE"), primary_key=True
    )
    part: Mapped[int] = mapped_column(Integer, primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    # Digests of the part's bytes, checked against what the client sent
    # (SHA-256 and MD5 only when it sent one or they were asked for).
    blake3: Mapped[str] = mapped_column(String(64))
    sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    md5: Mapped[str | None] = mapped_column(String(32), nullable=True)
    chunk_count: Mapped[int] = mapped_column(Integer)
    replicas_acked: Mapped[int] = mapped_column(Integer)
    stored_at: Mapped[float] = mapped_column(Epoch)


class UploadPartChunkRow(Base):
    """A part's manifest. While a row names a chunk, the chunk is referenced:
    the collector leaves it alone however long the session stays open."""

    __tablename__ = "upload_part_chunks"
    session_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    part: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    chunk_id: Mapped[str] = mapped_column(ForeignKey("chunks.id"), index=True)
    size: Mapped[int] = mapped_column(Integer)
    __table_args__ = (
        ForeignKeyConstraint(["session_id", "part"],
                             ["upload_parts.session_id", "upload_parts.part"],
                             ondelete="CASCADE",
                             name="fk_upload_part_chunks_part_upload_parts"),
    )


# -- S3 ------------------------------------------------------------------------------


class BucketRow(Base):
    """An S3 bucket: a name (unique in the store, as in S3) and its owner.
    Its objects are the owner's files named ``<bucket>/<key>``."""

    __tablename__ = "buckets"
    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    owner: Mapped[str] = mapped_column(String(255), index=True)
    created_at: Mapped[float] = mapped_column(Epoch)


class ObjectMetaRow(Base):
    """What S3 keeps about one version of a file beyond its bytes: the MD5
    (S3's ETag), the content headers to send back and the user metadata
    (``x-amz-meta-*``, as a JSON object)."""

    __tablename__ = "object_meta"
    file_id: Mapped[str] = mapped_column(ForeignKey("files.id", ondelete="CASCADE"),
                                         primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    etag: Mapped[str] = mapped_column(String(64))
    headers: Mapped[str] = mapped_column(Text)
    user_meta: Mapped[str] = mapped_column(Text)


class AccessKeyRow(Base):
    """An S3 access key of an account. The secret is stored encrypted with a
    key derived from the server's secret (SigV4 needs the secret itself to
    recompute signatures, so a one-way hash cannot serve)."""

    __tablename__ = "access_keys"
    access_key_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(32), index=True)
    secret_sealed: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[float] = mapped_column(Epoch)


class S3UploadRow(Base):
    """An S3 multipart upload: the upload session it is, its bucket and key,
    and the content headers and user metadata (JSON) its object gets. Goes
    with its session (cascade) when that is aborted or expires."""

    __tablename__ = "s3_uploads"
    session_id: Mapped[str] = mapped_column(
        ForeignKey("upload_sessions.id", ondelete="CASCADE"), primary_key=True)
    bucket: Mapped[str] = mapped_column(String(63))
    key: Mapped[str] = mapped_column(String(1024))
    headers: Mapped[str] = mapped_column(Text)
    user_meta: Mapped[str] = mapped_column(Text)
    __table_args__ = (Index("ix_s3_uploads_bucket_key", "bucket", "key"),)
