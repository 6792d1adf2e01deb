"""Names longer than a DynamoDB key may hold, as sort-key text.

DynamoDB caps a sort key at 1024 bytes, but a file name may be 2048 bytes
(``echofs.core.names``), an S3 key 1024, and an owner (open mode's
``user_id``) 255 characters. Where such text goes into a sort key it goes
through :func:`key_text`: text of at most ``bound`` UTF-8 bytes is its own
key; longer text is keyed by its longest prefix of at most ``bound`` bytes
that ends on a character, then ``LONG``, then 32 hex digits of the blake3
of the whole text. The item keeps the whole text as an attribute.

Why the order of keys is still the order of the texts, except among long
texts with the same cut prefix (which sort by digest): let ``s`` be short,
``t + LONG + d`` the key of a long ``L``. Where ``s`` and ``t`` differ, both
orders agree; where ``s`` is a prefix of ``t``, ``s`` sorts first in both.
Where ``t`` is a proper prefix of ``s``, the character ``c`` of ``s`` after
``t`` fitted within ``bound`` while ``L``'s next character ``x`` did not, so
``c`` has fewer UTF-8 bytes than ``x``, hence a lower code point: ``s`` sorts
first, and its key too, because ``LONG`` (4 bytes) sorts after every
character of 3 bytes or fewer. The same argument orders two long texts whose
cut prefixes are not equal. ``LONG`` is therefore only ever compared with
characters of at most 3 bytes, so a name holding U+10FFFF itself changes
nothing.

A prefix of at most ``bound`` bytes is a prefix of the key of every text
that starts with it (and of no other's); a longer prefix is matched by the
keys that begin with :func:`key_prefix` (its cut prefix and ``LONG``), which
readers then filter on the whole text.
"""

from __future__ import annotations

import blake3

# A path is its own key up to this many bytes: with the 36 bytes a long
# one's mark and digest add, and a listing key's owner (OWNER_KEY_BYTES,
# plus as much), a key stays within DynamoDB's 1024 bytes.
PATH_KEY_BYTES = 880
# Owners of up to this many bytes (every account name: at most 64 ASCII
# characters) are their own keys; open mode's longer ``user_id`` is cut.
OWNER_KEY_BYTES = 64
# The last code point: sorts after every character of at most 3 UTF-8 bytes.
LONG = "\U0010ffff"
DIGEST_CHARS = 32


def cut(text: str, bound: int) -> str:
    """The longest prefix of ``text`` of at most ``bound`` UTF-8 bytes that
    ends on a character."""
    return text.encode()[:bound].decode(errors="ignore")


def key_text(text: str, bound: int = PATH_KEY_BYTES) -> str:
    """``text`` as sort-key text of at most ``bound + 36`` bytes."""
    raw = text.encode()
    if len(raw) <= bound:
        return text
    return cut(text, bound) + LONG + blake3.blake3(raw).hexdigest()[:DIGEST_CHARS]


def key_prefix(prefix: str, bound: int = PATH_KEY_BYTES) -> tuple[str, bool]:
    """What the keys of texts starting with ``prefix`` start with, and
    whether the matches must also be filtered on the whole text (a prefix
    longer than ``bound``: its keys are those of every long text sharing its
    cut prefix)."""
    if len(prefix.encode()) <= bound:
        return prefix, False
    return cut(prefix, bound) + LONG, True
