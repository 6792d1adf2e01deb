"""Authentication at the HTTP edge: the auth endpoints and the middleware
that says who is asking.

Two modes:

- **open** (no ``JWT_SECRET``): single-user, only ever on loopback (the node
  refuses other addresses). Every request acts as the local admin; the
  original's ``user_id`` field still names file owners.
- **jwt**: every request but a few public ones needs ``Authorization: Bearer
  <token>``; files belong to the caller; the consistency and worker APIs are
  for admins. The token names the account; the account as it is now (it
  exists, its role, its token generation) decides (:mod:`echofs.auth.accounts`).

Login and register are limited per client address and per account
(:mod:`echofs.auth.attempt_limits`) and hash passwords on a bounded pool of
threads of their own (:mod:`echofs.auth.hashing`).
"""

from __future__ import annotations

import functools
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web

from echofs.auth.accounts import AccountCheck
from echofs.auth.attempt_limits import AttemptLimits
from echofs.auth.hashing import PasswordHashing
from echofs.auth.passwords import MAX_PASSWORD, MIN_PASSWORD, hash_password, verify_password
from echofs.auth.tokens import Identity, issue_token, verify_token
from echofs.cache.base import Cache
from echofs.core.errors import BadRequest, Conflict, Forbidden, NotFound, Unauthorized
from echofs.metadata.users import ROLES, UserRecord, UsersRepository
from echofs.serving.json_body import read_json
from echofs.serving.middleware import facts

if TYPE_CHECKING:
    from echofs.config import Settings

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
ADMIN_PREFIXES = ("/api/v1/consistency", "/api/v1/workers", "/api/v1/auth/users",
                  "/api/v1/replication", "/metrics/dashboard")
_USERNAME = re.compile(r"^[A-Za-z0-9_.@-]{3,64}$")
# A plain address: something@domain.tld, no spaces, quotes or control
# characters (RFC 5321 allows more; no mail system people use needs it).
_EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
MAX_EMAIL = 254


@functools.cache
def _dummy_hash() -> str:
    """Verified against when the username is unknown, so a login takes as
    long whether or not the account exists (made on first use, not at import)."""
    return hash_password("not-a-real-password")


def _verify_known_or_dummy(stored_hash: str | None, password: str) -> bool:
    return verify_password(stored_hash or _dummy_hash(), password) and stored_hash is not None


@dataclass(frozen=True)
class AuthConfig:
    jwt_secret: str | None
    token_ttl: float = 86400.0
    # Seconds a master keeps an account it read (see echofs.auth.accounts).
    account_cache_seconds: float = 5.0
    # Sign-in attempts a minute per client address / per account (0 = no limit).
    limit_per_address: int = 60
    limit_per_account: int = 10
    # Password hashes at once, and logins that may wait for one.
    hash_concurrency: int = 2
    hash_queue: int = 32

    @classmethod
    def from_settings(cls, settings: Settings) -> AuthConfig:
        return cls(settings.jwt_secret, settings.token_ttl,
                   account_cache_seconds=settings.auth_cache_seconds,
                   limit_per_address=settings.login_limit_per_address,
                   limit_per_account=settings.login_limit_per_account,
                   hash_concurrency=settings.password_hash_concurrency,
                   hash_queue=settings.password_hash_queue)

    @property
    def open(self) -> bool:
        return self.jwt_secret is None


def identity(request: web.Request) -> Identity:
    return request.get(IDENTITY) or OPEN_IDENTITY


def is_open(request: web.Request) -> bool:
    return identity(request) is OPEN_IDENTITY


def auth_middleware(config: AuthConfig, accounts: AccountCheck) -> Any:
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
            # The original's words first: its clients and scripts look for them.
            raise Unauthorized("Authorization header required: send 'Authorization: "
                               "Bearer <token>'", code="missing_token")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("Authorization must be 'Bearer <token>'", code="invalid_token")
        assert config.jwt_secret is not None
        who = await accounts.current(verify_token(token.strip(), config.jwt_secret))
        request[IDENTITY] = who
        facts(request).user = who.username
        if request.path.startswith(ADMIN_PREFIXES) and not who.is_admin:
            raise Forbidden("this endpoint is for administrators")
        return await handler(request)

    return middleware


def validate_credentials(body: Any) -> tuple[str, str]:
    """A new account's username and password (register): malformed is a 400."""
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


def validate_email(body: dict[str, Any]) -> str | None:
    """A new account's optional email (the original's register sends one),
    lowercased."""
    email = body.get("email")
    if email is None or email == "":
        return None
    if not isinstance(email, str) or len(email) > MAX_EMAIL or not _EMAIL.match(email):
        raise BadRequest("email must be an address like name@example.com "
                         f"(at most {MAX_EMAIL} characters)", code="invalid_email")
    return email.lower()


@dataclass(frozen=True, slots=True)
class LoginAttempt:
    """Who a login names and the password it gives. ``by_email``: named by
    the ``email`` field (the original's login), which only matches an
    account's address; a ``username`` matches a username, or an address."""

    name: str
    password: str
    by_email: bool

    @property
    def plausible(self) -> bool:
        """Worth a password check: anything else cannot match an account
        (and is answered 401 like any wrong credentials, unhashed)."""
        return (0 < len(self.name) <= MAX_EMAIL and 0 < len(self.password) <= MAX_PASSWORD
                and not any(ord(c) < 32 for c in self.name))


def login_attempt(body: Any) -> LoginAttempt:
    """A login's fields. Only a malformed request is a 400 (no JSON object,
    no name, no password); wrong credentials of any shape are for the caller
    to answer 401."""
    if not isinstance(body, dict):
        raise BadRequest("send a JSON object with email (or username) and password",
                         code="invalid_json")
    email, username, password = body.get("email"), body.get("username"), body.get("password")
    by_email = email not in (None, "")
    name = email if by_email else username
    if not isinstance(name, str) or not name:
        raise BadRequest("send email (or username) and password", code="missing_credentials")
    if not isinstance(password, str):
        raise BadRequest("send email (or username) and password as strings",
                         code="missing_credentials")
    return LoginAttempt(name, password, by_email=by_email)


async def _json(request: web.Request) -> Any:
    # Credentials are a few hundred bytes; the app-wide limit is an upload's.
    return await read_json(request, max_bytes=16 * 1024)


def user_json(user: UserRecord | Identity, email: str | None = None) -> dict[str, str | None]:
    if isinstance(user, UserRecord):
        email = user.email
    return {"id": user.user_id, "username": user.username, "email": email, "role": user.role}


class AuthAPI:
    """The auth endpoints and their middleware, sharing one account check
    (so a change made here is seen by this master's next request)."""

    def __init__(self, users: UsersRepository, config: AuthConfig, cache: Cache) -> None:
        self.users = users
        self.config = config
        self.accounts = AccountCheck(users, config.account_cache_seconds)
        self.limits = AttemptLimits(cache, config.limit_per_address, config.limit_per_account)
        self.hashing = PasswordHashing(config.hash_concurrency, config.hash_queue)
        self.middleware = auth_middleware(config, self.accounts)

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/api/v1/auth/register", self.register),
            web.post("/api/v1/auth/login", self.login),
            web.post("/api/v1/auth/logout", self.logout),
            web.get("/api/v1/auth/me", self.me),
            web.get("/api/v1/auth/profile", self.me),  # the original's name
            web.patch("/api/v1/auth/users/{username}", self.change_role),
            web.delete("/api/v1/auth/users/{username}", self.delete_user),
        ]

    async def hashing_threads(self, app: web.Application) -> AsyncIterator[None]:
        """For ``app.cleanup_ctx``: the hashing threads end with the app."""
        yield
        self.hashing.close()

    def _require_jwt(self) -> str:
        if self.config.jwt_secret is None:
            raise BadRequest("authentication is disabled: this node runs in single-user "
                             "open mode (set JWT_SECRET to enable accounts)",
                             code="auth_disabled")
        return self.config.jwt_secret

    def _token_response(self, user: UserRecord, status: int, message: str) -> web.Response:
        secret = self._require_jwt()
        who = Identity(user.user_id, user.username, user.role, user.token_generation)
        return web.json_response({
            # The original's envelope (success, message, token, user) and ours.
            "success": True, "message": message,
            "user": user_json(user), "token": issue_token(who, secret, self.config.token_ttl),
            "token_type": "bearer", "expires_in": int(self.config.token_ttl),
        }, status=status)

    async def register(self, request: web.Request) -> web.Response:
        self._require_jwt()
        await self.limits.charge_address(request)
        body = await _json(request)
        username, password = validate_credentials(body)
        email = validate_email(body)
        if email is not None and await self.users.by_email(email) is not None:
            # Checked before hashing (cheap); the unique index still decides a race.
            raise Conflict(f"email {email!r} is already registered", code="email_taken")
        password_hash = await self.hashing.run(hash_password, password)
        user = await self.users.create(username, password_hash, email=email)
        return self._token_response(user, 201, "User registered successfully")

    async def login(self, request: web.Request) -> web.Response:
        self._require_jwt()
        await self.limits.charge_address(request)
        attempt = login_attempt(await _json(request))
        wrong = Unauthorized("wrong username or password", code="invalid_credentials")
        if not attempt.plausible:
            raise wrong
        await self.limits.charge_account(attempt.name.lower() if attempt.by_email
                                         else attempt.name)
        user = await self._account_named(attempt)
        ok = await self.hashing.run(_verify_known_or_dummy,
                                    user.password_hash if user else None, attempt.password)
        if user is None or not ok:
            raise wrong
        return self._token_response(user, 200, "Login successful")

    async def _account_named(self, attempt: LoginAttempt) -> UserRecord | None:
        if attempt.by_email:
            return await self.users.by_email(attempt.name)
        user = await self.users.by_username(attempt.name)
        if user is None and "@" in attempt.name:
            user = await self.users.by_email(attempt.name)
        return user

    async def logout(self, request: web.Request) -> web.Response:
        """Revoke every token of the caller's account (on every device)."""
        self._require_jwt()
        who = identity(request)
        await self.users.revoke_tokens(who.user_id)
        self.accounts.forget(who.user_id)
        return web.Response(status=204)

    async def me(self, request: web.Request) -> web.Response:
        who = identity(request)
        if who is OPEN_IDENTITY:
            return web.json_response({"success": True, "user": user_json(who), "auth": "open"})
        # The name and role are the account's now (the middleware checked);
        # the address is read here, the one request that shows it.
        account = await self.users.by_id(who.user_id)
        email = account.email if account is not None else None
        return web.json_response({"success": True, "user": user_json(who, email),
                                  "auth": "jwt"})

    async def _named_account(self, request: web.Request) -> UserRecord:
        self._require_jwt()
        username = request.match_info["username"]
        user = await self.users.by_username(username)
        if user is None:
            raise NotFound(f"no account {username!r}", code="unknown_user")
        return user

    async def change_role(self, request: web.Request) -> web.Response:
        """Make an account an admin or a plain user (admins only)."""
        user = await self._named_account(request)
        body = await _json(request)
        role = body.get("role") if isinstance(body, dict) else None
        if role not in ROLES:
            raise BadRequest("send a JSON object with role: 'user' or 'admin'",
                             code="invalid_role")
        changed = await self.users.set_role(user.user_id, role)
        self.accounts.forget(user.user_id)
        if changed is None:
            raise NotFound(f"no account {user.username!r}", code="unknown_user")
        return web.json_response({"user": user_json(changed)})

    async def delete_user(self, request: web.Request) -> web.Response:
        """Remove an account (admins only); its files stay, owned by its id."""
        user = await self._named_account(request)
        await self.users.delete(user.user_id)
        self.accounts.forget(user.user_id)
        return web.Response(status=204)
