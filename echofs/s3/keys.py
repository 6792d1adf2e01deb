"""Which file an S3 key is, and which key a file is.

S3 takes any key of 1 to 1024 UTF-8 bytes; an EchoFS name has no empty,
``.`` or ``..`` segment, no leading ``/``, no backslash or control
character, is in Unicode NFC, and its segments hold at most 255 bytes
(``echofs.core.names``). The map is:

- a key ``k`` for which ``<bucket>/k`` is a valid name, as it is, and whose
  first segment is not :data:`RESERVED`, is the file ``<bucket>/k``;
- every other key is a file under ``<bucket>/.echofs-s3/``, escaped:

  - *readable* when that fits a name: each ``/``-segment of the key
    percent-encoded (``%``, ``\\``, control characters and every non-ASCII
    byte as ``%XX``; a segment ``.`` or ``..`` as ``%2E``/``%2E%2E``), an
    empty segment as a lone ``%``, and a segment longer than 255 bytes cut
    into pieces, each but the last ending in ``%`` (continued in the next).
    ``dir/`` is ``.echofs-s3/dir/%``, ``a//b`` is ``.echofs-s3/a/%/b``;
  - *packed* otherwise (a key too long for its readable form): the key's
    bytes, then a 1 bit, then 0 bits up to a multiple of 14, each 14 bits one
    CJK ideograph from U+4E00, 85 to a segment. 1024 bytes make 586
    ideographs: 1758 bytes, within ``MAX_NAME_BYTES`` and 1024 characters.

The readable form is pure ASCII and the packed one has no ASCII but ``/``, so
the two never meet, and each key has exactly one file (keys starting with the
reserved segment are escaped too). A file whose name is not what its key maps
to (one made through the REST API under ``.echofs-s3/``, say) is no object:
:func:`key_of` answers None for it.
"""

from __future__ import annotations

import re
import urllib.parse

from echofs.core.errors import InvalidName
from echofs.core.names import MAX_SEGMENT_BYTES, normalize_name
from echofs.s3.errors import S3Error

MAX_KEY_BYTES = 1024
# The first segment, under a bucket, of every escaped key.
RESERVED = ".echofs-s3"
# Printable ASCII a readable segment keeps as it is ('/' never reaches it).
_SAFE = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) not in "%\\/")
_ESCAPE = re.compile(r"%[0-9A-F]{2}")
# Packed form: 14 bits per CJK Unified Ideograph (U+4E00..U+8DFF: no
# decompositions, nothing composes with them, all 3 UTF-8 bytes).
_BITS = 14
_BASE = 0x4E00
_PER_SEGMENT = MAX_SEGMENT_BYTES // 3


def file_path(bucket: str, key: str) -> str:
    """The file the object ``key`` of ``bucket`` is (see the module's doc).
    KeyTooLongError beyond 1024 bytes."""
    size = len(key.encode("utf-8", "surrogatepass"))
    if size > MAX_KEY_BYTES:
        raise S3Error("KeyTooLongError", resource=f"/{bucket}/{key}")
    if size == 0:
        raise S3Error("InvalidArgument", "the object key must not be empty")
    if "\x00" in key:
        # XML cannot carry it, even as a character reference: no listing or
        # DeleteObjects could name the object.
        raise S3Error("InvalidArgument", "the object key must not contain NUL",
                      resource=f"/{bucket}")
    try:
        key.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate (from XML character references)
        raise S3Error("InvalidArgument", "the object key is not valid UTF-8",
                      resource=f"/{bucket}") from None
    plain = f"{bucket}/{key}"
    if key.split("/", 1)[0] != RESERVED and _is_name(plain):
        return plain
    readable = f"{bucket}/{RESERVED}/{_readable(key)}"
    if _is_name(readable):
        return readable
    return f"{bucket}/{RESERVED}/{_packed(key)}"


def escaped_root(bucket: str) -> str:
    """The folder every escaped key of ``bucket`` is under (with its '/')."""
    return f"{bucket}/{RESERVED}/"


def key_of(bucket: str, path: str) -> str | None:
    """The key whose file is ``path`` (a name under ``<bucket>/``), or None
    if no key maps to it."""
    base = f"{bucket}/"
    if not path.startswith(base):
        return None
    rest = path[len(base):]
    root = RESERVED + "/"
    if rest.startswith(root):
        escaped = rest[len(root):]
        key = _unpacked(escaped) if escaped[:1] >= chr(_BASE) else _unreadable(escaped)
    else:
        key = rest
    if key is None:
        return None
    try:
        return key if file_path(bucket, key) == path else None
    except S3Error:
        return None


def _is_name(path: str) -> bool:
    try:
        return normalize_name(path) == path
    except InvalidName:
        return False


# -- the readable form ----------------------------------------------------------------------


def _readable(key: str) -> str:
    return "/".join(_readable_segment(segment) for segment in key.split("/"))


def _readable_segment(segment: str) -> str:
    if segment == "":
        return "%"
    text = urllib.parse.quote(segment, safe=_SAFE)
    pieces = []
    while len(text) > MAX_SEGMENT_BYTES:
        cut = MAX_SEGMENT_BYTES - 1  # room for the '%' that says "continued"
        # Never inside an escape: back up to its '%'.
        escape = text.rfind("%", cut - 2, cut)
        if escape >= 0:
            cut = escape
        pieces.append(text[:cut] + "%")
        text = text[cut:]
    if text in (".", ".."):
        text = text.replace(".", "%2E")
    pieces.append(text)
    return "/".join(pieces)


def _unreadable(escaped: str) -> str | None:
    segments: list[str] = []
    held = ""
    for piece in escaped.split("/"):
        if piece == "%":
            if held:
                return None
            segments.append("")
        elif piece.endswith("%"):
            held += piece[:-1]
        else:
            segments.append(held + piece)
            held = ""
    if held:
        return None
    try:
        decoded = [_unquote(segment) for segment in segments]
    except ValueError:
        return None
    return "/".join(decoded)


def _unquote(text: str) -> str:
    # Every '%' must start an escape; what the escapes make must be UTF-8.
    if text.count("%") != len(_ESCAPE.findall(text)):
        raise ValueError("a '%' that is not an escape")
    return urllib.parse.unquote_to_bytes(text).decode("utf-8")


# -- the packed form ------------------------------------------------------------------------


def _packed(key: str) -> str:
    data = key.encode("utf-8")
    bits = len(data) * 8 + 1
    width = -(-bits // _BITS) * _BITS
    number = ((int.from_bytes(data, "big") << 1) | 1) << (width - bits)
    chars = [chr(_BASE + ((number >> shift) & ((1 << _BITS) - 1)))
             for shift in range(width - _BITS, -1, -_BITS)]
    return "/".join("".join(chars[i:i + _PER_SEGMENT])
                    for i in range(0, len(chars), _PER_SEGMENT))


def _unpacked(escaped: str) -> str | None:
    number, width = 0, 0
    for char in escaped.replace("/", ""):
        value = ord(char) - _BASE
        if not 0 <= value < 1 << _BITS:
            return None
        number = (number << _BITS) | value
        width += _BITS
    if number == 0:
        return None
    padding = (number & -number).bit_length()  # the 1 bit and the 0s after it
    width -= padding
    number >>= padding
    if width % 8:
        return None
    try:
        return number.to_bytes(width // 8, "big").decode("utf-8")
    except UnicodeDecodeError:
        return None


def escaped_ranges(bucket: str, prefix: str) -> list[tuple[str, str | None]]:
    """Where the files of the escaped keys starting with ``prefix`` are:
    (name prefix, after this name or None) pairs to list, which together
    hold all of them (and maybe others, which :func:`key_of` sorts out).

    A readable form starts with the encoding of the prefix's whole segments;
    packed forms keep no order of the key, and are all listed (they are the
    keys too long for the readable form: few)."""
    root = escaped_root(bucket)
    if "/" not in prefix:
        return [(root, None)]
    head = prefix[:prefix.rindex("/")]
    # Packed names start with an ideograph, after every ASCII readable name.
    return [(f"{root}{_readable(head)}/", None), (root, root + chr(_BASE - 1))]
