"""Password hashing with Argon2id.

Parameters are OWASP's minimum for Argon2id (19 MiB, 2 passes, 1 lane):
argon2-cffi's default (64 MiB, 4 lanes) took over a second per hash on a
2-core machine and held 64 MiB per concurrent login.
"""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)

MIN_PASSWORD = 8
MAX_PASSWORD = 1024


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def verify_password(stored_hash: str, password: str) -> bool:
    try:
        return _HASHER.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False
