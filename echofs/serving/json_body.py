"""Reading a JSON request body within bounds — every JSON route reads its body here.

``request.json()`` reads as much as the application allows (the master allows
a whole upload) and hands any nesting to ``json.loads``, whose recursion a body
of 100,000 ``[`` turns into a ``RecursionError`` — a 500, without signing in.
Here the bytes are counted while they arrive (413 past the limit, whether the
client declared the length or streams the body) and the nesting depth is
measured *before* parsing (400 past :data:`MAX_DEPTH`), so the parser never
recurses deeper than that.
"""

from __future__ import annotations

import json
import re
from itertools import accumulate
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from echofs.core.errors import BadRequest, InvalidJSON, PayloadTooLarge

# Far above what any EchoFS JSON route takes (the largest, a list of 1,000
# critical keys, is under 70 KiB); a route with small bodies passes its own.
MAX_JSON_BYTES = 1024 * 1024
# No EchoFS request document nests more than three levels.
MAX_DEPTH = 64
_READ_PIECE = 64 * 1024

# An escape inside a string is a backslash and the character after it; outside
# a string a backslash is a syntax error anyway (see nesting_depth).
_ESCAPE = re.compile(rb"\\.", re.DOTALL)
_STRING = re.compile(rb'"[^"]*"')
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
# Opening brackets step the depth up (+1), closing ones down (0xff is -1 as a
# signed byte).
_STEPS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")


async def read_json(request: web.Request, *, max_bytes: int = MAX_JSON_BYTES,
                    max_depth: int = MAX_DEPTH) -> Any:
    """The request's body, parsed: at most ``max_bytes`` (else
    :class:`PayloadTooLarge`), UTF-8, nested at most ``max_depth`` deep and
    well-formed (else :class:`InvalidJSON`)."""
    return parse_json(await read_body(request, max_bytes=max_bytes), max_depth=max_depth)


async def read_body(request: web.Request, *, max_bytes: int) -> bytes:
    """The request's body, refused as soon as it is known to exceed ``max_bytes``:
    from ``Content-Length`` before reading, or while a chunked body streams in."""
    declared = request.content_length
    if declared is not None and declared > max_bytes:
        raise PayloadTooLarge(f"body of {declared} bytes exceeds the {max_bytes}-byte limit "
                              "for this request")
    data = bytearray()
    try:
        async for piece in request.content.iter_chunked(_READ_PIECE):
            data += piece
            if len(data) > max_bytes:
                raise PayloadTooLarge(f"body exceeds the {max_bytes}-byte limit for this "
                                      "request")
    except HttpProcessingError as exc:
        raise BadRequest(f"request body ended early or is malformed: {exc.message}",
                         code="incomplete_body") from None
    return bytes(data)


def parse_json(data: bytes, *, max_depth: int = MAX_DEPTH) -> Any:
    if nesting_depth(data) > max_depth:
        raise InvalidJSON(f"request body must be JSON nested at most {max_depth} levels "
                          "deep")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidJSON("request body must be UTF-8 encoded JSON") from None
    try:
        return json.loads(text)
    except ValueError as exc:  # JSONDecodeError, and numbers past int's digit limit
        raise InvalidJSON(f"request body must be JSON: {exc}") from None


def nesting_depth(data: bytes) -> int:
    """How deep ``json.loads(data)`` can recurse, at most: the deepest
    bracket nesting outside strings.

    Exact for valid JSON. For invalid JSON it never underestimates what the
    parser reaches before it stops: up to the first error both read the same
    prefix the same way (a valid prefix has no backslash outside strings),
    and the parser goes no further. Linear time, C loops only: no input can
    make the check itself slow.
    """
    outside_strings = _STRING.sub(b"", _ESCAPE.sub(b"", data))
    brackets = outside_strings.translate(None, _NOT_BRACKETS)
    if not brackets:
        return 0
    return max(0, max(accumulate(memoryview(brackets.translate(_STEPS)).cast("b"))))
