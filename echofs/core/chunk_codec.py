"""How one chunk is identified, compressed and framed for storage.

A chunk's id is the BLAKE3 digest of its raw bytes (content addressing: the
same bytes always get the same id, so they are stored once). What a worker
stores is a small self-describing frame, so a worker (or its scrubber) can
verify a copy without asking the metadata store:

    magic "ECF1" | flags u8 | raw_len u64 BE | payload

``flags`` bit 0 says the payload is LZ4 (block format, no size prefix: the
size is in the header). LZ4 is used only when it actually shrinks the chunk.
Whether it would is first asked of a small sample: on data that does not
compress (media, archives, encrypted files) a full LZ4 pass costs more CPU
than hashing the chunk, for nothing.
"""

from __future__ import annotations

import re
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
_CHUNK_ID = re.compile(f"[0-9a-f]{{{DIGEST_HEX_LEN}}}")
# No chunk is larger than the largest chunk size (core.chunking); a header
# that claims more is damaged, and must not make us allocate it.
MAX_RAW_SIZE = 64 * 1024 * 1024
# The compressibility sample: a few slices spread over the chunk, each far
# larger than LZ4's minimum match, compressed together (~1% of a 1 MiB chunk).
_SAMPLE_SLICES = 4
_SAMPLE_SLICE = 4 * 1024


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
    if raw and _may_compress(raw):
        packed = lz4.block.compress(raw, store_size=False)
        if _pays(len(packed), len(raw)):
            payload, flags = packed, FLAG_LZ4
    frame = _HEADER.pack(MAGIC, flags, len(raw)) + payload
    return EncodedChunk(chunk_id, len(raw), bool(flags & FLAG_LZ4), frame)


def _pays(packed: int, raw: int) -> bool:
    # Keep compression only when it pays for its decompression cost.
    return packed < raw - raw // 32


def _may_compress(raw: bytes) -> bool:
    """False when a sample of ``raw`` does not shrink: the whole would not either
    (a chunk compressible only where the sample missed stays uncompressed:
    space lost, never correctness)."""
    size = len(raw)
    if size < 2 * _SAMPLE_SLICES * _SAMPLE_SLICE:
        return True
    view = memoryview(raw)
    step = (size - _SAMPLE_SLICE) // (_SAMPLE_SLICES - 1)
    sample = b"".join(view[i * step : i * step + _SAMPLE_SLICE] for i in range(_SAMPLE_SLICES))
    return _pays(len(lz4.block.compress(sample, store_size=False)), len(sample))


def decode_chunk(frame: bytes, expected_id: str) -> bytes:
    """Return the raw bytes of ``frame`` after checking they hash to ``expected_id``.

    Raises :class:`CorruptChunk` for any damage: bad header, bad compression,
    wrong length or wrong digest.
    """
    raw = _verified_payload(frame, expected_id)
    return raw if isinstance(raw, bytes) else bytes(raw)


def decode_chunk_view(frame: bytes, expected_id: str) -> bytes | memoryview:
    """As :func:`decode_chunk`, but an uncompressed frame's payload comes back
    as a view into ``frame``, not a copy: a download hands it straight to the
    socket, and a 1 MiB copy per chunk is a good part of the master's work."""
    return _verified_payload(frame, expected_id)


def verify_frame(frame: bytes, expected_id: str) -> None:
    """Check ``frame`` as :func:`decode_chunk` does, without copying the payload
    of an uncompressed frame (a worker verifies every frame it is given)."""
    _verified_payload(frame, expected_id)


def _verified_payload(frame: bytes, expected_id: str) -> bytes | memoryview:
    if len(frame) < HEADER_SIZE:
        raise CorruptChunk(f"chunk {expected_id}: frame shorter than its header")
    magic, flags, raw_len = _HEADER.unpack_from(frame)
    if magic != MAGIC:
        raise CorruptChunk(f"chunk {expected_id}: bad frame magic")
    if raw_len > MAX_RAW_SIZE:
        raise CorruptChunk(f"chunk {expected_id}: implausible length {raw_len}")
    raw: bytes | memoryview = memoryview(frame)[HEADER_SIZE:]
    if flags & FLAG_LZ4:
        try:
            raw = lz4.block.decompress(raw, uncompressed_size=raw_len)
        except (lz4.block.LZ4BlockError, ValueError, OverflowError) as exc:
            raise CorruptChunk(f"chunk {expected_id}: LZ4 payload damaged") from exc
    if len(raw) != raw_len:
        raise CorruptChunk(f"chunk {expected_id}: length {len(raw)} != {raw_len}")
    if chunk_digest(raw) != expected_id:
        raise CorruptChunk(f"chunk {expected_id}: digest mismatch")
    return raw


def is_chunk_id(value: str) -> bool:
    # A compiled pattern: stores check every id they are given, and a
    # character-by-character test cost more than the rest of a small put.
    return _CHUNK_ID.fullmatch(value) is not None
