"""Reading an upload's body in pieces: raw bodies and multipart parts.

Malformed or truncated input is a 400 with a code the client can act on,
never a 500; a form field is bounded (:data:`MAX_FIELD_BYTES`) and must be
UTF-8. Pieces are :data:`READ_PIECE` bytes (a chunk is assembled from several).

A form is bounded as a whole too (:class:`FormBudget`): parsing a part costs
the event loop time whether or not its bytes are kept, and a body that is
already buffered is parsed without ever waiting — 100,000 tiny fields would
hold the loop (and every other request) for seconds.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, cast

from aiohttp import BodyPartReader, MultipartReader, StreamReader, web
from aiohttp.http_exceptions import HttpProcessingError

from echofs.core.errors import BadRequest, FormTooLarge, TooManyParts

READ_PIECE = 256 * 1024
MAX_FIELD_BYTES = 64 * 1024
# An upload form is a file and at most three text fields (path, user_id,
# consistency); the margin is for fields a browser or tool adds on its own.
MAX_PARTS = 16
# Everything in a form but the file, together: the three known fields at their
# limit, with room to spare.
MAX_FORM_BYTES = 256 * 1024
# Lines the parser reads: boundaries, part headers and any preamble. A form
# within MAX_PARTS needs a few dozen.
MAX_FORM_LINES = 1024
# The loop gets a turn every this many lines, however fast they come.
_LINES_PER_TURN = 64


class FormBudget:
    """What one multipart body may still spend: parts, and bytes outside the file."""

    def __init__(self) -> None:
        self.parts = 0
        self.field_bytes = 0
        self.lines = 0

    def count_part(self) -> None:
        self.parts += 1
        if self.parts > MAX_PARTS:
            raise TooManyParts(f"a form may have at most {MAX_PARTS} parts; an upload needs "
                               "a 'file' and at most 'path', 'user_id' and 'consistency'")

    def spend(self, size: int) -> None:
        self.field_bytes += size
        if self.field_bytes > MAX_FORM_BYTES:
            raise FormTooLarge(f"the form's fields other than 'file' exceed {MAX_FORM_BYTES} "
                               "bytes together")

    async def charge_line(self, size: int) -> None:
        self.lines += 1
        if self.lines > MAX_FORM_LINES:
            raise FormTooLarge(f"the form's boundaries, part headers and preamble exceed "
                               f"{MAX_FORM_LINES} lines")
        self.spend(size)
        if self.lines % _LINES_PER_TURN == 0:
            await asyncio.sleep(0)


class _BudgetedLines:
    """The request body as the multipart parser reads it, each line charged
    to the form's budget. The parser reads everything but part contents —
    preamble, boundaries, part headers — line by line, and would go through a
    buffered body of a million short lines in one go, never letting another
    request run. Everything but ``readline`` passes straight through."""

    def __init__(self, content: StreamReader, budget: FormBudget) -> None:
        self._content = content
        self._budget = budget

    async def readline(self, **kwargs: Any) -> bytes:
        line = await self._content.readline(**kwargs)
        if line:
            await self._budget.charge_line(len(line))
        return line

    def __getattr__(self, name: str) -> Any:
        return getattr(self._content, name)


def form_reader(request: web.Request, budget: FormBudget) -> MultipartReader:
    """A multipart reader over ``request``'s body that stays within ``budget``."""
    try:
        return MultipartReader(request.headers,
                               cast(StreamReader, _BudgetedLines(request.content, budget)))
    except (ValueError, AssertionError, KeyError) as exc:
        raise BadRequest(f"malformed multipart body: {exc}",
                         code="malformed_multipart") from None


async def next_part(reader: MultipartReader, budget: FormBudget) -> BodyPartReader | None:
    # Let other requests run between parts even when the whole body is
    # buffered already (reading it then never waits, so never yields).
    await asyncio.sleep(0)
    try:
        part = await reader.next()
    except (ValueError, AssertionError, KeyError, HttpProcessingError) as exc:
        raise BadRequest(f"malformed multipart body: {exc}", code="malformed_multipart") from None
    if part is None:
        return None
    budget.count_part()
    if not isinstance(part, BodyPartReader):
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


async def field_text(part: BodyPartReader, budget: FormBudget) -> str:
    data = bytearray()
    async for piece in part_pieces(part):
        budget.spend(len(piece))
        data += piece
        if len(data) > MAX_FIELD_BYTES:
            raise BadRequest(f"form field {part.name!r} is too long")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest(f"form field {part.name!r} is not UTF-8") from None


async def skip_part(part: BodyPartReader, budget: FormBudget) -> None:
    """Read past a field no upload uses, still paying for its bytes."""
    async for piece in part_pieces(part):
        budget.spend(len(piece))


async def body_pieces(pieces: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    try:
        async for piece in pieces:
            yield piece
    except HttpProcessingError as exc:
        raise BadRequest(f"request body ended early or is malformed: {exc.message}",
                         code="incomplete_body") from None
