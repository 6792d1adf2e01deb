"""The one rule for ``JWT_SECRET``: long enough that HS256 is not guessable.

Kept apart from :mod:`echofs.auth.tokens` so settings can check it without
loading the JWT library (and its cryptography) on every ``echofs`` command.
"""

from __future__ import annotations

MIN_SECRET_BYTES = 32


def check_secret(secret: str) -> None:
    """Refuse a secret shorter than :data:`MIN_SECRET_BYTES` (UTF-8 bytes)."""
    if len(secret.encode()) < MIN_SECRET_BYTES:
        raise ValueError(f"JWT_SECRET must be at least {MIN_SECRET_BYTES} bytes")
