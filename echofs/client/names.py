"""Names between the client and the server's URLs and headers: file paths
percent-encoded for a URL, a file id told from a path, and the file name a
download announces, reduced to something safe to create locally."""

from __future__ import annotations

import re
import urllib.parse

FILE_ID = re.compile(r"[0-9a-f]{32}")


def quote_path(path: str) -> str:
    """Percent-encode a file path for a URL. ``.`` and ``..`` segments are
    encoded too: left bare, the URL library would resolve them and send the
    request to another path instead of letting the server refuse the name."""
    return "/".join(quote_segment(segment) for segment in path.split("/"))


def quote_segment(segment: str) -> str:
    if segment in (".", ".."):
        return "%2E" * len(segment)
    return urllib.parse.quote(segment, safe="")


def filename_from(disposition: str | None) -> str | None:
    """The file name of a ``Content-Disposition`` header (RFC 6266 ``filename*``
    first), reduced to one safe path segment."""
    if not disposition:
        return None
    name = None
    star = re.search(r"filename\*=UTF-8''([^;]+)", disposition, re.IGNORECASE)
    if star:
        name = urllib.parse.unquote(star.group(1).strip())
    else:
        plain = re.search(r'filename="([^"]*)"', disposition)
        name = plain.group(1) if plain else None
    if name is None:
        return None
    # Never let a server-supplied name leave the folder we were given.
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    if name in ("", ".", "..") or "\x00" in name:
        return None
    return name
