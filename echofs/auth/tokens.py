"""JWT access tokens: HS256 only, signed with ``JWT_SECRET``.

The algorithm is pinned on decode (no ``alg=none``, no key confusion), and
``exp``, ``iat``, ``nbf`` and ``sub`` are required and checked. The secret's
length is checked once, with the settings (:mod:`echofs.auth.jwt_secret`).

A valid token only says which account is asking: the account itself (does it
still exist, its role now, the token generation logout moved on) is checked
on every request by :mod:`echofs.auth.accounts`. ``gen`` is the account's
token generation at issue; a token without it (issued before generations
existed) counts as generation 0.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import jwt

from echofs.core.errors import Unauthorized

ALGORITHM = "HS256"
_LEEWAY = 5.0  # seconds of clock skew tolerated between masters


@dataclass(frozen=True, slots=True)
class Identity:
    user_id: str
    username: str
    role: str
    token_generation: int = 0

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def issue_token(identity: Identity, secret: str, ttl: float, now: float | None = None) -> str:
    issued = int(time.time() if now is None else now)
    claims = {"sub": identity.user_id, "name": identity.username, "role": identity.role,
              "gen": identity.token_generation, "iat": issued, "nbf": issued,
              "exp": issued + int(ttl)}
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def verify_token(token: str, secret: str) -> Identity:
    try:
        claims = jwt.decode(token, secret, algorithms=[ALGORITHM], leeway=_LEEWAY,
                            options={"require": ["exp", "iat", "nbf", "sub"]})
    except jwt.ExpiredSignatureError:
        raise Unauthorized("token expired", code="token_expired") from None
    except jwt.ImmatureSignatureError:
        raise Unauthorized("token not valid yet", code="token_not_yet_valid") from None
    except jwt.InvalidTokenError as exc:
        raise Unauthorized(f"invalid token: {exc}", code="invalid_token") from None
    name, role, generation = claims.get("name"), claims.get("role"), claims.get("gen", 0)
    if not isinstance(claims["sub"], str) or not isinstance(name, str) or role not in (
            "user", "admin") or type(generation) is not int:
        raise Unauthorized("invalid token: bad claims", code="invalid_token")
    return Identity(claims["sub"], name, role, generation)
