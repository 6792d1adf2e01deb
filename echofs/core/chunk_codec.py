"""How one chunk is identified, compressed and framed for storage.

A chunk's id is the BLAKE3 digest of its raw bytes (content addressing: the
same bytes always get the same id, so they are stored once). What a worker
stores is a small self-describing frame, so a worker (or its scrubber) can
verify a copy without asking the metadata store:

    magic "ECF1" | flags u8 | raw_len u64 BE | payload

``flags`` bit 0 says the payload is LZ4 (block format, no size prefix: the
size is in the header). LZ4 is used only when it actually shrinks the chunk.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import blake3
import lz4.block

from echofs.core.errors import CorruptChunk

MAGIC = b"ECF1"
FLAG_LZ4 = 0x01
_HEADER = struct.Struct(">4sBQ")
HEADER_SIZE = _HEADER.size
DIGEST_HEX_LEN = 64
# No chunk is larger than the largest chunk size (core.chunking); a header
# that claims more is damaged, and must not make us allocate it.
MAX_RAW_SIZE = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class EncodedChunk:
    chunk_id: str
    raw_size: int
    compressed: bool
    frame: bytes

    @property
    def stored_size(self) -> int:
        return len(self.frame)


def chunk_digest(raw: bytes | memoryview) -> str:
    return blake3.blake3(raw).hexdigest()


def encode_chunk(raw: bytes) -> EncodedChunk:
    """Digest and frame ``raw``; compress it when that saves space."""
    chunk_id = chunk_digest(raw)
    payload: bytes = raw
    flags = 0
    if raw:
        packed = lz4.block.compress(raw, store_size=False)
        # Keep compression only when it pays for its decompression cost.
        if len(packed) < len(raw) - len(raw) // 32:
            payload, flags = packed, FLAG_LZ4
    frame = _HEADER.pack(MAGIC, flags, len(raw)) + payload
    return EncodedChunk(chunk_id, len(raw), bool(flags & FLAG_LZ4), frame)


def decode_chunk(frame: bytes, expected_id: str) -> bytes:
    """Return the raw bytes of ``frame`` after checking they hash to ``expected_id``.

    Raises :class:`CorruptChunk` for any damage: bad header, bad compression,
    wrong length or wrong digest.
    """
    if len(frame) < HEADER_SIZE:
        raise CorruptChunk(f"chunk {expected_id}: frame shorter than its header")
    magic, flags, raw_len = _HEADER.unpack_from(frame)
    if magic != MAGIC:
        raise CorruptChunk(f"chunk {expected_id}: bad frame magic")
    if raw_len > MAX_RAW_SIZE:
        raise CorruptChunk(f"chunk {expected_id}: implausible length {raw_len}")
    payload = memoryview(frame)[HEADER_SIZE:]
    if flags & FLAG_LZ4:
        try:
            raw = lz4.block.decompress(payload, uncompressed_size=raw_len)
        except (lz4.block.LZ4BlockError, ValueError, OverflowError) as exc:
            raise CorruptChunk(f"chunk {expected_id}: LZ4 payload damaged") from exc
    else:
        raw = bytes(payload)
    if len(raw) != raw_len:
        raise CorruptChunk(f"chunk {expected_id}: length {len(raw)} != {raw_len}")
    if chunk_digest(raw) != expected_id:
        raise CorruptChunk(f"chunk {expected_id}: digest mismatch")
    return raw


def is_chunk_id(value: str) -> bool:
    return len(value) == DIGEST_HEX_LEN and all(c in "0123456789abcdef" for c in value)
