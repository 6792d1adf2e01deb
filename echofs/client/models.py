"""Typed results of the client's calls.

Each is built from the server's JSON with ``from_json`` and keeps that JSON in
``raw`` (not compared, not shown), so ``--json`` output and fields a newer
server adds are never lost to the typing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

JSON = dict[str, Any]


def _opt_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


@dataclass(frozen=True)
class User:
    username: str
    role: str
    id: str | None = None
    raw: JSON = field(default_factory=dict, repr=False, compare=False)

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @classmethod
    def from_json(cls, body: JSON) -> User:
        return cls(username=str(body["username"]), role=str(body.get("role", "user")),
                   id=None if body.get("id") is None else str(body["id"]), raw=body)


@dataclass(frozen=True)
class Identity:
    """Who the server thinks we are, and how it authenticates (``open`` or ``jwt``)."""

    user: User
    auth: str
    raw: JSON = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, body: JSON) -> Identity:
        return cls(user=User.from_json(body["user"]), auth=str(body.get("auth", "jwt")),
                   raw=body)


@dataclass(frozen=True)
class Session:
    """A login or registration: the account and its bearer token."""

    user: User
    token: str
    expires_in: int | None
    raw: JSON = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, body: JSON) -> Session:
        return cls(user=User.from_json(body["user"]), token=str(body["token"]),
                   expires_in=_opt_int(body.get("expires_in")), raw=body)


@dataclass(frozen=True)
class FileInfo:
    """A file as listings show it: its current version's size, digest and mode."""

    file_id: str
    path: str
    owner: str
    size: int
    version: int
    mode: str
    blake3: str
    created_at: str
    updated_at: str
    raw: JSON = field(default_factory=dict, repr=False, compare=False)

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    @classmethod
    def from_json(cls, body: JSON) -> FileInfo:
        return cls(file_id=str(body.get("file_id") or body["id"]), path=str(body["path"]),
                   owner=str(body.get("owner", "")), size=int(body["size"]),
                   version=int(body.get("current_version") or body["version"]),
                   mode=str(body.get("mode", "")), blake3=str(body.get("blake3", "")),
                   created_at=str(body.get("created_at", "")),
                   updated_at=str(body.get("updated_at", "")), raw=body)


@dataclass(frozen=True)
class FilePage:
    files: list[FileInfo]
    next_cursor: str | None
    raw: JSON = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, body: JSON) -> FilePage:
        return cls(files=[FileInfo.from_json(f) for f in body["files"]],
                   next_cursor=body.get("next_cursor"), raw=body)


@dataclass(frozen=True)
class VersionInfo:
    version: int
    size: int
    blake3: str
    chunks: int
    mode: str
    replicas_acked: int
    created_at: str
    current: bool
    raw: JSON = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, body: JSON) -> VersionInfo:
        return cls(version=int(body["version"]), size=int(body["size"]),
                   blake3=str(body.get("blake3", "")), chunks=int(body.get("chunks", 0)),
                   mode=str(body.get("mode", "")),
                   replicas_acked=int(body.get("replicas_acked", 0)),
                   created_at=str(body.get("created_at", "")),
                   current=bool(body.get("current", False)), raw=body)


@dataclass(frozen=True)
class ChunkInfo:
    seq: int
    chunk_id: str
    offset: int
    size: int
    compressed: bool
    replicas: tuple[str, ...]

    @classmethod
    def from_json(cls, body: JSON) -> ChunkInfo:
        return cls(seq=int(body["seq"]), chunk_id=str(body["chunk_id"]),
                   offset=int(body["offset"]), size=int(body["size"]),
                   compressed=bool(body.get("compressed", False)),
                   replicas=tuple(str(r) for r in body.get("replicas", ())))


@dataclass(frozen=True)
class FileDetails:
    """``stat``: the file, the version asked for (default the current one), its
    chunks with their replicas, and the mode the master applies right now."""

    file: FileInfo
    version: VersionInfo
    current_version: int
    consistency_mode: str
    chunks: tuple[ChunkInfo, ...]
    raw: JSON = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, body: JSON) -> FileDetails:
        return cls(file=FileInfo.from_json(body), version=VersionInfo.from_json(body),
                   current_version=int(body["current_version"]),
                   consistency_mode=str(body.get("consistency_mode", "")),
                   chunks=tuple(ChunkInfo.from_json(c) for c in body.get("chunk_list", ())),
                   raw=body)


@dataclass(frozen=True)
class VersionList:
    file_id: str
    path: str
    current_version: int
    versions: list[VersionInfo]
    raw: JSON = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, body: JSON) -> VersionList:
        return cls(file_id=str(body["file_id"]), path=str(body["path"]),
                   current_version=int(body["current_version"]),
                   versions=[VersionInfo.from_json(v) for v in body["versions"]], raw=body)


@dataclass(frozen=True)
class UploadResult:
    file: FileInfo
    version: int
    size: int
    chunks: int
    blake3: str
    mode: str
    replicas_acked: int
    chunks_deduplicated: int
    bytes_deduplicated: int
    raw: JSON = field(default_factory=dict, repr=False, compare=False)

    @property
    def file_id(self) -> str:
        return self.file.file_id

    @classmethod
    def from_json(cls, body: JSON) -> UploadResult:
        return cls(file=FileInfo.from_json(body), version=int(body["version"]),
                   size=int(body["size"]), chunks=int(body.get("chunks", 0)),
                   blake3=str(body.get("blake3", "")), mode=str(body.get("mode", "")),
                   replicas_acked=int(body.get("replicas_acked", 0)),
                   chunks_deduplicated=int(body.get("chunks_deduplicated", 0)),
                   bytes_deduplicated=int(body.get("bytes_deduplicated", 0)), raw=body)


@dataclass(frozen=True)
class DownloadResult:
    """What a download wrote: where, how much, which version, and whether the
    server said it was stale (an ``available``-mode read of an older version)."""

    file_id: str | None
    name: str | None
    dest: Path | None
    size: int
    version: int | None
    blake3: str | None
    mode: str | None
    stale: bool
    verified: bool

    def to_json(self) -> JSON:
        return {"file_id": self.file_id, "name": self.name,
                "dest": None if self.dest is None else str(self.dest), "size": self.size,
                "version": self.version, "blake3": self.blake3, "mode": self.mode,
                "stale": self.stale, "verified": self.verified}


@dataclass(frozen=True)
class DeleteResult:
    file_id: str
    deleted_versions: int
    raw: JSON = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, body: JSON) -> DeleteResult:
        return cls(file_id=str(body["file_id"]),
                   deleted_versions=int(body["deleted_versions"]), raw=body)


@dataclass(frozen=True)
class WorkerInfo:
    worker_id: str
    state: str
    store: str | None
    capacity_bytes: int | None
    free_bytes: int | None
    bytes_stored: int | None
    chunk_count: int | None
    rtt_ms: float | None
    seconds_since_heartbeat: float | None
    raw: JSON = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, body: JSON) -> WorkerInfo:
        return cls(worker_id=str(body["id"]), state=str(body["state"]),
                   store=body.get("store"), capacity_bytes=_opt_int(body.get("capacity_bytes")),
                   free_bytes=_opt_int(body.get("free_bytes")),
                   bytes_stored=_opt_int(body.get("bytes_stored")),
                   chunk_count=_opt_int(body.get("chunk_count")),
                   rtt_ms=_opt_float(body.get("rtt_ms")),
                   seconds_since_heartbeat=_opt_float(body.get("seconds_since_heartbeat")),
                   raw=body)


@dataclass(frozen=True)
class ModeInfo:
    """A file's consistency mode as the controller decided it, and why."""

    object_id: str
    mode: str
    reason: str
    score: float | None
    changed_at: str | None
    raw: JSON = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, body: JSON) -> ModeInfo:
        return cls(object_id=str(body["object_id"]), mode=str(body["mode"]),
                   reason=str(body.get("reason", "")), score=_opt_float(body.get("score")),
                   changed_at=body.get("changed_at"), raw=body)


@dataclass(frozen=True)
class Transition:
    """One entry of the controller's audit log."""

    id: int
    at: str | None
    object_id: str
    from_mode: str | None
    to_mode: str
    reason: str
    score: float | None
    signals: JSON
    raw: JSON = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, body: JSON) -> Transition:
        return cls(id=int(body["id"]), at=body.get("at"), object_id=str(body["object_id"]),
                   from_mode=body.get("from"), to_mode=str(body["to"]),
                   reason=str(body.get("reason", "")), score=_opt_float(body.get("score")),
                   signals=dict(body.get("signals") or {}), raw=body)
