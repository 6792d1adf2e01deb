"""Reading an upload's body in pieces: raw bodies and multipart parts.

Malformed or truncated input is a 400 with a code the client can act on,
never a 500; a form field is bounded (:data:`MAX_FIELD_BYTES`) and must be
UTF-8. Pieces are :data:`READ_PIECE` bytes (a chunk is assembled from several).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import BodyPartReader, MultipartReader
from aiohttp.http_exceptions import HttpProcessingError

from echofs.core.errors import BadRequest

READ_PIECE = 256 * 1024
MAX_FIELD_BYTES = 64 * 1024


async def next_part(reader: MultipartReader) -> BodyPartReader | None:
    try:
        part = await reader.next()
    except (ValueError, AssertionError, KeyError, HttpProcessingError) as exc:
        raise BadRequest(f"malformed multipart body: {exc}", code="malformed_multipart") from None
    if part is not None and not isinstance(part, BodyPartReader):
        raise BadRequest("nested multipart bodies are not supported", code="malformed_multipart")
    return part


async def part_pieces(part: BodyPartReader) -> AsyncIterator[bytes]:
    while True:
        try:
            piece = await part.read_chunk(READ_PIECE)
        except (ValueError, AssertionError, HttpProcessingError) as exc:
            raise BadRequest(f"malformed multipart body: {exc}",
                             code="malformed_multipart") from None
        if not piece:
            return
        yield piece


async def field_text(part: BodyPartReader) -> str:
    data = bytearray()
    async for piece in part_pieces(part):
        data += piece
        if len(data) > MAX_FIELD_BYTES:
            raise BadRequest(f"form field {part.name!r} is too long")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest(f"form field {part.name!r} is not UTF-8") from None


async def body_pieces(pieces: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    try:
        async for piece in pieces:
            yield piece
    except HttpProcessingError as exc:
        raise BadRequest(f"request body ended early or is malformed: {exc.message}",
                         code="incomplete_body") from None
