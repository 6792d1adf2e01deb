"""Authentication at the HTTP edge: the auth endpoints and the middleware
that says who is asking.

Two modes:

- **open** (no ``JWT_SECRET``): single-user, only ever on loopback (the node
  refuses other addresses). Every request acts as the local admin; the
  original's ``user_id`` field still names file owners.
- **jwt**: every request but a few public ones needs ``Authorization: Bearer
  <token>``; files belong to the caller; the consistency and worker APIs are
  for admins.
"""

from __future__ import annotations

import asyncio
import functools
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from echofs.auth.passwords import MAX_PASSWORD, MIN_PASSWORD, hash_password, verify_password
from echofs.auth.tokens import Identity, issue_token, verify_token
from echofs.core.errors import BadRequest, Forbidden, Unauthorized
from echofs.metadata.users import UserRecord, UsersRepository
from echofs.serving.json_body import read_json
from echofs.serving.middleware import facts

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

IDENTITY = web.RequestKey("echofs_identity", Identity)
OPEN_IDENTITY = Identity("local", "local", "admin")

# Reachable without a token (the UI's shell and assets must load to log in).
_PUBLIC = {
    ("POST", "/api/v1/auth/register"), ("POST", "/api/v1/auth/login"),
    ("GET", "/api/v1/health"), ("GET", "/api/v1/openapi.json"), ("GET", "/"),
    ("GET", "/favicon.ico"), ("GET", "/metrics"),
}
_PUBLIC_PREFIXES = ("/static/",)
ADMIN_PREFIXES = ("/api/v1/consistency", "/api/v1/workers")
_USERNAME = re.compile(r"^[A-Za-z0-9_.@-]{3,64}$")


@functools.cache
def _dummy_hash() -> str:
    """Verified against when the username is unknown, so a login takes as
    long whether or not the account exists (made on first use, not at import)."""
    return hash_password("not-a-real-password")


@dataclass(frozen=True)
class AuthConfig:
    jwt_secret: str | None
    token_ttl: float = 86400.0

    @property
    def open(self) -> bool:
        return self.jwt_secret is None


def identity(request: web.Request) -> Identity:
    return request.get(IDENTITY) or OPEN_IDENTITY


def is_open(request: web.Request) -> bool:
    return identity(request) is OPEN_IDENTITY


def auth_middleware(config: AuthConfig) -> Any:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if config.open:
            request[IDENTITY] = OPEN_IDENTITY
            return await handler(request)
        public = (request.method, request.path) in _PUBLIC or (request.method in (
            "GET", "HEAD") and request.path.startswith(_PUBLIC_PREFIXES))
        header = request.headers.get("Authorization")
        if header is None:
            if public:
                return await handler(request)
            raise Unauthorized("authentication required: send 'Authorization: Bearer <token>'",
                               code="missing_token")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("Authorization must be 'Bearer <token>'", code="invalid_token")
        assert config.jwt_secret is not None
        who = verify_token(token.strip(), config.jwt_secret)
        request[IDENTITY] = who
        facts(request).user = who.username
        if request.path.startswith(ADMIN_PREFIXES) and not who.is_admin:
            raise Forbidden("this endpoint is for administrators")
        return await handler(request)

    return middleware


def validate_credentials(body: Any) -> tuple[str, str]:
    if not isinstance(body, dict):
        raise BadRequest("send a JSON object with username and password", code="invalid_json")
    username, password = body.get("username"), body.get("password")
    if not isinstance(username, str) or not _USERNAME.match(username):
        raise BadRequest("username must be 3-64 characters: letters, digits, _ . @ -",
                         code="invalid_username")
    if not isinstance(password, str) or not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise BadRequest(f"password must be {MIN_PASSWORD}-{MAX_PASSWORD} characters",
                         code="invalid_password")
    return username, password


async def _json(request: web.Request) -> Any:
    # Credentials are a few hundred bytes; the app-wide limit is an upload's.
    return await read_json(request, max_bytes=16 * 1024)


def user_json(user: UserRecord | Identity) -> dict[str, str]:
    return {"id": user.user_id, "username": user.username, "role": user.role}


class AuthAPI:
    def __init__(self, users: UsersRepository, config: AuthConfig) -> None:
        self.users = users
        self.config = config

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/api/v1/auth/register", self.register),
            web.post("/api/v1/auth/login", self.login),
            web.get("/api/v1/auth/me", self.me),
            web.get("/api/v1/auth/profile", self.me),  # the original's name
        ]

    def _require_jwt(self) -> str:
        if self.config.jwt_secret is None:
            raise BadRequest("authentication is disabled: this node runs in single-user "
                             "open mode (set JWT_SECRET to enable accounts)",
                             code="auth_disabled")
        return self.config.jwt_secret

    def _token_response(self, user: UserRecord, status: int) -> web.Response:
        secret = self._require_jwt()
        who = Identity(user.user_id, user.username, user.role)
        return web.json_response({
            "user": user_json(user), "token": issue_token(who, secret, self.config.token_ttl),
            "token_type": "bearer", "expires_in": int(self.config.token_ttl),
        }, status=status)

    async def register(self, request: web.Request) -> web.Response:
        self._require_jwt()
        username, password = validate_credentials(await _json(request))
        password_hash = await asyncio.to_thread(hash_password, password)
        user = await self.users.create(username, password_hash)
        return self._token_response(user, 201)

    async def login(self, request: web.Request) -> web.Response:
        self._require_jwt()
        username, password = validate_credentials(await _json(request))
        user = await self.users.by_username(username)
        stored = user.password_hash if user else await asyncio.to_thread(_dummy_hash)
        ok = await asyncio.to_thread(verify_password, stored, password)
        if user is None or not ok:
            raise Unauthorized("wrong username or password", code="invalid_credentials")
        return self._token_response(user, 200)

    async def me(self, request: web.Request) -> web.Response:
        who = identity(request)
        if who is OPEN_IDENTITY:
            return web.json_response({"user": user_json(who), "auth": "open"})
        if await self.users.by_id(who.user_id) is None:
            raise Unauthorized("this account no longer exists", code="unknown_user")
        return web.json_response({"user": user_json(who), "auth": "jwt"})
