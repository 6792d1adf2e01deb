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
        # The pieces of the chunk being assembled, held as they came: each byte
        # is copied once, when its chunk completes, not on arrival and again on
        # the way out (this runs on the event loop, for every byte uploaded).
        self._pieces: list[memoryview] = []
        self.buffered = 0
        self.total = 0

    def feed(self, data: bytes | bytearray | memoryview) -> list[bytes]:
        """Add ``data``; return every chunk it completed (possibly none)."""
        self.total += len(data)
        if not len(data):
            return []
        # bytes cannot change under us and are kept as they are; a caller may
        # reuse any other buffer, so that is copied now.
        piece = memoryview(data if isinstance(data, bytes) else bytes(data))
        chunks: list[bytes] = []
        while len(piece) >= self.chunk_size - self.buffered:
            room = self.chunk_size - self.buffered
            self._pieces.append(piece[:room])
            chunks.append(self._take())
            piece = piece[room:]
        if len(piece):
            self._pieces.append(piece)
            self.buffered += len(piece)
        return chunks

    def finish(self) -> bytes | None:
        """The final short chunk, or None when the stream ended on a boundary.

        A zero-byte file has no chunks at all.
        """
        return self._take() if self._pieces else None

    def _take(self) -> bytes:
        pieces, self._pieces, self.buffered = self._pieces, [], 0
        if len(pieces) == 1 and isinstance(pieces[0].obj, bytes) \
                and len(pieces[0]) == len(pieces[0].obj):
            return pieces[0].obj  # a piece that is exactly one chunk: no copy
        return b"".join(pieces)
