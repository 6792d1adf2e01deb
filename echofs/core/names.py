"""What a file name (path) may be.

Names are slash-separated relative paths owned by a user. They are stored as
given after Unicode NFC normalisation and never touch a filesystem, but we still
reject what would be dangerous or ambiguous for clients that map them onto one
(``..`` segments, absolute paths, NUL and other control characters).
"""

from __future__ import annotations

import unicodedata
import urllib.parse

from echofs.core.errors import InvalidName

# A name is at most 1024 characters: the store's path columns hold that many
# (PostgreSQL's VARCHAR counts characters). In bytes it may be twice that, so
# that an S3 key of S3's full 1024 bytes still fits under its bucket's name
# once escaped (``echofs.s3.keys``: a long key that is not a valid name is
# packed into CJK ideographs, 3 bytes each). 2048 bytes, with the owner, also
# stays under PostgreSQL's limit on a unique index entry (2704 bytes).
MAX_NAME_CHARS = 1024
MAX_NAME_BYTES = 2048
MAX_SEGMENT_BYTES = 255


def normalize_name(raw: str) -> str:
    """Return the canonical form of ``raw`` or raise :class:`InvalidName`."""
    if not isinstance(raw, str) or raw == "":
        raise InvalidName("file name must not be empty")
    name = unicodedata.normalize("NFC", raw)
    if len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        raise InvalidName(f"file name is longer than {MAX_NAME_BYTES} bytes")
    if len(name) > MAX_NAME_CHARS:
        raise InvalidName(f"file name is longer than {MAX_NAME_CHARS} characters")
    if any(_is_control(c) for c in name):
        raise InvalidName("file name contains a control character")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidName("file name is not valid Unicode") from exc
    if "\\" in name:
        raise InvalidName("file name must use '/' as separator, not '\\'")
    if name.startswith("/"):
        raise InvalidName("file name must be relative, not start with '/'")
    segments = name.split("/")
    for segment in segments:
        if segment in ("", ".", ".."):
            raise InvalidName(
                "file name must not contain empty, '.' or '..' path segments"
            )
        if len(segment.encode("utf-8")) > MAX_SEGMENT_BYTES:
            raise InvalidName(f"a path segment is longer than {MAX_SEGMENT_BYTES} bytes")
    return name


def require_utf8_escapes(raw: str, what: str = "file name") -> None:
    """Raise :class:`InvalidName` unless the percent escapes in ``raw`` (part
    of a URL exactly as sent) decode to UTF-8.

    URL decoders leave an escape that is not UTF-8 as it was: ``%ff%fe``
    would arrive as the literal text ``%ff%fe`` and name the same file as the
    correct spelling of that text, ``%25ff%25fe``. Such a URL names nothing.
    """
    try:
        urllib.parse.unquote_to_bytes(raw).decode("utf-8")
    except UnicodeError:  # bad escapes, or raw bytes that were not UTF-8 either
        raise InvalidName(f"{what} in the URL has percent escapes that are not UTF-8") \
            from None


def basename(name: str) -> str:
    return name.rsplit("/", 1)[-1]


def _is_control(char: str) -> bool:
    return unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp") and char != "\u200d"
