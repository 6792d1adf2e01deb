"""Cutting a byte stream into fixed-size chunks as it arrives.

``ChunkSplitter`` is fed pieces of any size (network reads) and hands back
complete chunks; it never holds more than one chunk's worth of bytes, which is
what keeps an upload's memory bounded whatever the file size.
"""

from __future__ import annotations

MIN_CHUNK_SIZE = 4 * 1024
MAX_CHUNK_SIZE = 64 * 1024 * 1024


def validate_chunk_size(chunk_size: int) -> int:
    if not MIN_CHUNK_SIZE <= chunk_size <= MAX_CHUNK_SIZE:
        raise ValueError(
            f"chunk size must be between {MIN_CHUNK_SIZE} and {MAX_CHUNK_SIZE} bytes, "
            f"got {chunk_size}"
        )
    return chunk_size


class ChunkSplitter:
    def __init__(self, chunk_size: int) -> None:
        self.chunk_size = validate_chunk_size(chunk_size)
        self._buffer = bytearray()
        self.total = 0

    def feed(self, data: bytes | bytearray | memoryview) -> list[bytes]:
        """Add ``data``; return every chunk it completed (possibly none)."""
        self.total += len(data)
        self._buffer += data
        size = self.chunk_size
        if len(self._buffer) < size:
            return []
        view = memoryview(self._buffer)
        count = len(self._buffer) // size
        chunks = [bytes(view[i * size : (i + 1) * size]) for i in range(count)]
        view.release()
        del self._buffer[: count * size]
        return chunks

    def finish(self) -> bytes | None:
        """The final short chunk, or None when the stream ended on a boundary.

        A zero-byte file has no chunks at all.
        """
        if not self._buffer:
            return None
        tail = bytes(self._buffer)
        self._buffer.clear()
        return tail
