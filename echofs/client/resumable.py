"""Resumable uploads from the client's side: a large local file sent as an
upload session's parts, resumed after the client was killed or the network
cut, from the parts the server already holds.

The session id is remembered in a small state file, one per upload, under
``$XDG_STATE_HOME/echofs/uploads/`` (``~/.local/state/...`` when unset),
named by a digest of (server, remote path, local file, size, mtime): the
same command run again finds it, asks the server which parts it holds
(``GET /files/upload/{id}``) and sends only the others. A changed local file
(other size or mtime) is a new upload. The state file goes once the upload
completes.

Memory stays flat: a part is read twice from the local disk (once to hash
it, then streamed to the server) rather than held, so ``concurrency`` parts
in flight cost ``concurrency`` read pieces.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import blake3

from echofs.client.errors import ConnectionFailed, EchoFSClientError
from echofs.client.transfers import PIECE, ProgressCallback

# Transient failures of one part: retried this many times, waiting longer each time.
PART_ATTEMPTS = 6
_RETRY_BASE = 0.5


def state_dir(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    base = env.get("XDG_STATE_HOME")
    root = Path(base) if base and Path(base).is_absolute() else Path.home() / ".local" / "state"
    return root / "echofs" / "uploads"


@dataclass(frozen=True, slots=True)
class LocalFile:
    path: Path
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, path: str | os.PathLike[str]) -> LocalFile:
        resolved = Path(path).resolve()
        st = resolved.stat()
        return cls(resolved, st.st_size, st.st_mtime_ns)


class ResumeState:
    """Where the session ids of unfinished uploads are remembered."""

    def __init__(self, folder: Path | None = None) -> None:
        self.folder = folder or state_dir()

    def _file(self, server: str, remote: str, local: LocalFile) -> Path:
        key = json.dumps([server, remote, str(local.path), local.size, local.mtime_ns])
        return self.folder / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.json"

    def load(self, server: str, remote: str, local: LocalFile) -> str | None:
        try:
            data = json.loads(self._file(server, remote, local).read_text())
            return str(data["session_id"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def save(self, server: str, remote: str, local: LocalFile, session_id: str) -> None:
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        target = self._file(server, remote, local)
        tmp = target.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({
            "session_id": session_id, "server": server, "remote": remote,
            "local": str(local.path), "size": local.size, "mtime_ns": local.mtime_ns,
            "saved_at": time.time()}))
        os.replace(tmp, target)  # whole or not at all, even if we are killed here

    def forget(self, server: str, remote: str, local: LocalFile) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._file(server, remote, local).unlink()


@dataclass(frozen=True, slots=True)
class ResumeInfo:
    """What the resumable upload found when it started."""

    session_id: str
    resumed: bool
    parts_held: int
    total_parts: int


def _read_range(path: Path, offset: int, size: int) -> bytes:
    with path.open("rb") as handle:
        handle.seek(offset)
        return handle.read(size)


async def part_digest(path: Path, offset: int, size: int) -> str:
    """BLAKE3 of a range of the file, read in pieces in a thread."""
    def run() -> str:
        hasher = blake3.blake3()
        with path.open("rb") as handle:
            handle.seek(offset)
            left = size
            while left > 0:
                piece = handle.read(min(PIECE, left))
                if not piece:
                    raise OSError(f"{path} shrank while it was being uploaded")
                hasher.update(piece)
                left -= len(piece)
        return hasher.hexdigest()

    return await asyncio.to_thread(run)


async def file_digest(path: Path) -> str:
    def run() -> str:
        hasher = blake3.blake3(max_threads=blake3.blake3.AUTO)
        if path.stat().st_size:  # mmap cannot map an empty file
            hasher.update_mmap(path)
        return hasher.hexdigest()

    return await asyncio.to_thread(run)


async def range_pieces(path: Path, offset: int, size: int,
                       sent: Callable[[int], None]) -> AsyncIterator[bytes]:
    """The bytes of a range of the file, piece by piece (reads in a thread)."""
    handle = await asyncio.to_thread(path.open, "rb")
    try:
        await asyncio.to_thread(handle.seek, offset)
        left = size
        while left > 0:
            piece = await asyncio.to_thread(handle.read, min(PIECE, left))
            if not piece:
                raise OSError(f"{path} shrank while it was being uploaded")
            left -= len(piece)
            yield piece
            sent(len(piece))
    finally:
        await asyncio.to_thread(handle.close)


def transient(exc: BaseException) -> bool:
    """Worth sending the part again: no answer, the server's 5xx/408/429, or
    a chunk of the part collected before it was recorded (409 chunk_collected)."""
    if isinstance(exc, ConnectionFailed):
        return True
    return isinstance(exc, EchoFSClientError) and (
        exc.status >= 500 or exc.status in (408, 429) or exc.code == "chunk_collected")


async def with_retries(action: Callable[[], Awaitable[Any]], attempts: int = PART_ATTEMPTS
                       ) -> Any:
    for attempt in range(attempts):
        try:
            return await action()
        except EchoFSClientError as exc:
            if not transient(exc) or attempt == attempts - 1:
                raise
            await asyncio.sleep(_RETRY_BASE * 2 ** attempt)
    raise AssertionError("unreachable")


class Progress:
    """Bytes the server holds or is being sent, reported as they grow."""

    def __init__(self, callback: ProgressCallback | None, total: int) -> None:
        self.callback = callback
        self.total = total
        self.done = 0

    def add(self, n: int) -> None:
        self.done += n
        if self.callback is not None:
            self.callback(min(self.done, self.total), self.total)

