"""HTTP byte ranges (RFC 9110 §14) for downloads: one range per request.

Multi-range requests (``bytes=0-1,5-9``) would need multipart/byteranges; we
answer them with the whole file, which RFC 9110 allows (a server may ignore
Range).
"""

from __future__ import annotations

from dataclasses import dataclass

from echofs.core.errors import RangeNotSatisfiable


@dataclass(frozen=True, slots=True)
class ByteRange:
    start: int
    end: int  # inclusive

    @property
    def length(self) -> int:
        return self.end - self.start + 1

    def content_range(self, size: int) -> str:
        return f"bytes {self.start}-{self.end}/{size}"


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """Parse a ``Range`` header against a representation of ``size`` bytes.

    Returns None when the whole representation should be sent (no header, a
    unit other than bytes, a syntactically invalid or multi-range header — all
    of which RFC 9110 says to ignore). Raises :class:`RangeNotSatisfiable` when
    the range is valid but selects no byte.
    """
    if not header:
        return None
    unit, _, spec = header.strip().partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, sep, last = spec.strip().partition("-")
    if not sep:
        return None
    first, last = first.strip(), last.strip()
    try:
        if first == "":
            if not last.isdigit():
                return None
            suffix = int(last)
            if suffix == 0 or size == 0:
                raise _unsatisfiable(size)
            return ByteRange(max(0, size - suffix), size - 1)
        if not first.isdigit() or (last and not last.isdigit()):
            return None
        start = int(first)
        end = int(last) if last else size - 1
    except ValueError:
        return None
    if last and end < start:
        return None
    if start >= size:
        raise _unsatisfiable(size)
    return ByteRange(start, min(end, size - 1))


def _unsatisfiable(size: int) -> RangeNotSatisfiable:
    return RangeNotSatisfiable(f"range selects no byte of a {size}-byte file", size=size)
