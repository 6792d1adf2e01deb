"""Streaming transfers: upload bodies read in pieces, downloads written as
their bytes arrive and verified before they appear.

Uploads read their source in :data:`PIECE` pieces and downloads write as bytes
arrive, so memory stays flat for any size. Both report progress through a
:data:`ProgressCallback`. Full downloads are checked against the size and
BLAKE3 digest the server announced (``Content-Length``, ``ETag``) before the
file appears under its final name; a short or corrupt transfer raises
:class:`~echofs.client.errors.IntegrityError` and leaves nothing behind.
File reads and writes run in threads so the event loop keeps serving other
transfers. The requests themselves are :class:`~echofs.client.aio.AsyncClient`'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator
from pathlib import Path
from typing import IO

import aiohttp
import blake3

from echofs.client.errors import ConnectionFailed, IntegrityError
from echofs.client.models import DownloadResult
from echofs.client.names import filename_from

ProgressCallback = Callable[[int, int | None], None]
"""Called with (bytes transferred so far, total bytes or None if unknown)."""

# -- uploads ---------------------------------------------------------------------------

Source = bytes | str | os.PathLike[str] | IO[bytes] | AsyncIterable[bytes] | Iterable[bytes]
"""What can be uploaded: bytes, a file path, a binary file object, or an
(async) iterable of byte pieces."""

PIECE = 1024 * 1024


def source_size(source: Source) -> int | None:
    if isinstance(source, bytes):
        return len(source)
    if isinstance(source, str | os.PathLike):
        return os.stat(source).st_size
    if hasattr(source, "fileno") and hasattr(source, "seekable"):
        handle: IO[bytes] = source  # type: ignore[assignment]
        try:
            if handle.seekable():
                return max(0, os.fstat(handle.fileno()).st_size - handle.tell())
        except (OSError, ValueError):
            return None
    return None


async def pieces(source: Source) -> AsyncIterator[bytes]:
    """``source`` as pieces of at most :data:`PIECE` bytes; file reads happen
    in a thread so the event loop keeps serving other transfers."""
    if isinstance(source, bytes):
        for start in range(0, len(source), PIECE):
            yield source[start:start + PIECE]
        if not source:
            yield b""
        return
    if isinstance(source, str | os.PathLike):
        handle = await asyncio.to_thread(open, source, "rb")
        try:
            async for piece in pieces(handle):
                yield piece
        finally:
            await asyncio.to_thread(handle.close)
        return
    if hasattr(source, "read"):
        reader: IO[bytes] = source  # type: ignore[assignment]
        while piece := await asyncio.to_thread(reader.read, PIECE):
            yield piece
        return
    if isinstance(source, AsyncIterable):
        async for piece in source:
            yield bytes(piece)
        return
    iterator: Iterator[bytes] = iter(source)
    sentinel = object()
    while (piece := await asyncio.to_thread(next, iterator, sentinel)) is not sentinel:
        yield bytes(piece)  # type: ignore[arg-type]


async def counted(pieces: AsyncIterator[bytes], progress: ProgressCallback | None,
                   total: int | None) -> AsyncIterator[bytes]:
    done = 0
    if progress is not None:
        progress(0, total)
    async for piece in pieces:
        yield piece
        # Reported after aiohttp took the piece: it waits for the socket to
        # drain, so this tracks what was sent rather than what was read.
        done += len(piece)
        if progress is not None:
            progress(done, total)


# -- downloads -------------------------------------------------------------------------

Destination = str | os.PathLike[str] | IO[bytes]
"""Where a download goes: a file path, an existing folder (the server's file
name is used), or a binary file object (e.g. ``sys.stdout.buffer``)."""

# Downloads are written to disk in batches of this size, off the event loop.
_WRITE_BATCH = 1024 * 1024


class DownloadStream:
    """An open download: what the server announced, and its bytes as they arrive."""

    def __init__(self, response: aiohttp.ClientResponse, file_id: str | None) -> None:
        self._response = response
        headers = response.headers
        self.file_id = file_id
        self.status = response.status
        self.size: int | None = response.content_length
        etag = headers.get("ETag")
        self.blake3 = etag.strip().removeprefix("W/").strip('"') if etag else None
        version = headers.get("X-EchoFS-Version")
        self.version = int(version) if version and version.isdigit() else None
        self.mode = headers.get("X-EchoFS-Mode")
        self.stale = headers.get("X-EchoFS-Stale", "").lower() == "true"
        self.name = filename_from(headers.get("Content-Disposition"))
        self.partial = response.status == 206

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for piece in self._response.content.iter_chunked(PIECE):
                yield piece
        except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError) as exc:
            raise ConnectionFailed(f"download interrupted: {exc}") from None


class _Sink:
    """Writes a download to a file object, hashing as it goes (runs in a thread)."""

    def __init__(self, out: IO[bytes], hashing: bool) -> None:
        self.out = out
        self.hasher = blake3.blake3() if hashing else None

    def write(self, data: bytes) -> None:
        if self.hasher is not None:
            self.hasher.update(data)
        self.out.write(data)


async def save(download: DownloadStream, dest: Destination,
                progress: ProgressCallback | None, verify: bool) -> DownloadResult:
    """Write ``download`` to ``dest`` (see :data:`Destination`); a file path
    is written beside its final name and renamed there only once complete
    (and verified, unless ``verify`` is off or the download is partial)."""
    check = verify and not download.partial and download.blake3 is not None
    if hasattr(dest, "write"):
        sink = _Sink(dest, check)  # type: ignore[arg-type]
        size = await _pump(download, sink, progress)
        _check(download, sink, size, check)
        return _result(download, None, size, check)
    target = Path(dest)  # type: ignore[arg-type]
    if await asyncio.to_thread(target.is_dir):
        target = target / (download.name or download.file_id or "download")
    part = target.with_name(f".{target.name}.{os.getpid()}.part")
    try:
        handle = await asyncio.to_thread(open, part, "wb")
    except OSError as exc:
        # The hidden name is ours, not the caller's: name the path they gave.
        raise OSError(exc.errno, exc.strerror, str(target)) from None
    try:
        sink = _Sink(handle, check)
        size = await _pump(download, sink, progress)
        await asyncio.to_thread(handle.close)
        _check(download, sink, size, check)
        try:
            await asyncio.to_thread(os.replace, part, target)
        except OSError as exc:
            raise OSError(exc.errno, exc.strerror, str(target)) from None
    except BaseException:
        handle.close()
        with contextlib.suppress(FileNotFoundError):
            part.unlink()
        raise
    return _result(download, target, size, check)


async def _pump(download: DownloadStream, sink: _Sink,
                progress: ProgressCallback | None) -> int:
    size = 0
    batch = bytearray()
    if progress is not None:
        progress(0, download.size)
    async for piece in download:
        batch += piece
        size += len(piece)
        if len(batch) >= _WRITE_BATCH:
            await asyncio.to_thread(sink.write, bytes(batch))
            batch.clear()
        if progress is not None:
            progress(size, download.size)
    if batch:
        await asyncio.to_thread(sink.write, bytes(batch))
    await asyncio.to_thread(sink.out.flush)
    return size


def _check(download: DownloadStream, sink: _Sink, size: int, check: bool) -> None:
    if download.size is not None and size != download.size:
        raise IntegrityError(f"download ended after {size} of {download.size} bytes")
    if check and sink.hasher is not None and sink.hasher.hexdigest() != download.blake3:
        raise IntegrityError("downloaded bytes do not match the file's BLAKE3 digest")


def _result(download: DownloadStream, dest: Path | None, size: int,
            verified: bool) -> DownloadResult:
    return DownloadResult(file_id=download.file_id, name=download.name, dest=dest, size=size,
                          version=download.version, blake3=download.blake3, mode=download.mode,
                          stale=download.stale, verified=verified)
