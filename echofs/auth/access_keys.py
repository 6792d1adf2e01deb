"""S3 access keys: an id and a secret per key, any number per account.

How the secret is kept: SigV4 proves knowledge of the secret by an HMAC the
server must recompute, so the server needs the secret itself — a one-way
hash (as for passwords) cannot verify a signature. Secrets are therefore
stored *encrypted*: AES-256-GCM under a key derived from the server secret
(``JWT_SECRET``, which accounts mode requires) with HKDF-SHA256 and a label
of its own, a random nonce per secret, and the access key id as associated
data (a sealed secret copied onto another key id does not open). A stolen
database alone yields no usable secret; rotating ``JWT_SECRET`` makes the
existing keys unusable (create new ones). The secret is shown once, when
the key is created; listing shows ids and creation times only.

REST (for the signed-in account; accounts mode only — single-user mode
accepts any well-formed signature, see ``echofs.s3.credentials``):

- ``POST /api/v1/auth/keys``                 create → ``{access_key_id, secret_access_key}``
- ``GET /api/v1/auth/keys``                  list
- ``DELETE /api/v1/auth/keys/{access_key_id}`` revoke
"""

from __future__ import annotations

import base64
import os
import secrets
import string
import time
from collections import OrderedDict
from dataclasses import dataclass

from aiohttp import web
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from echofs.auth.http import identity, is_open
from echofs.core.errors import BadRequest, NotFound
from echofs.metadata.access_keys import AccessKeyRecord, AccessKeysRepository

_KEY_LABEL = b"echofs s3 access key secrets v1"
_ID_ALPHABET = string.ascii_uppercase + string.digits
# Keys an account may hold at once (AWS allows 2 per IAM user; a store with
# scripts and tools per user wants a few more).
MAX_KEYS_PER_ACCOUNT = 20
# Keys a master remembers at once (see AccessKeys.ttl).
_MAX_KNOWN = 10_000


class SecretBox:
    """Seals and opens secrets with AES-256-GCM under a key derived from the
    server secret."""

    def __init__(self, server_secret: str) -> None:
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                   info=_KEY_LABEL).derive(server_secret.encode())
        self._aead = AESGCM(key)

    def seal(self, access_key_id: str, secret: str) -> str:
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, secret.encode(), access_key_id.encode())
        return base64.b64encode(nonce + sealed).decode()

    def open(self, access_key_id: str, sealed: str) -> str | None:
        """The secret, or None if it was sealed under another server secret
        (or for another key id)."""
        try:
            raw = base64.b64decode(sealed)
            return self._aead.decrypt(raw[:12], raw[12:], access_key_id.encode()).decode()
        except (InvalidTag, ValueError):
            return None


@dataclass(frozen=True, slots=True)
class KeyOwner:
    """Whose key signed a request, and its secret."""

    user_id: str
    secret: str


def new_access_key_id() -> str:
    return "EK" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(18))


def new_secret() -> str:
    return base64.b64encode(secrets.token_bytes(30)).decode()


class AccessKeys:
    """Keys are looked up once per ``ttl`` seconds per master (as accounts
    are, ``AUTH_CACHE_SECONDS``): a revocation through this master takes
    effect at once, through another within ``ttl``."""

    def __init__(self, repo: AccessKeysRepository, server_secret: str | None, *,
                 ttl: float = 5.0) -> None:
        self.repo = repo
        self.box = SecretBox(server_secret) if server_secret else None
        self.ttl = ttl
        self._known: OrderedDict[str, tuple[float, KeyOwner | None]] = OrderedDict()

    async def create(self, user_id: str) -> tuple[AccessKeyRecord, str]:
        if self.box is None:
            raise BadRequest("access keys need accounts (JWT_SECRET); single-user mode "
                             "accepts any signature", code="accounts_disabled")
        if len(await self.repo.of_user(user_id)) >= MAX_KEYS_PER_ACCOUNT:
            raise BadRequest(f"an account holds at most {MAX_KEYS_PER_ACCOUNT} access keys; "
                             "revoke one first", code="too_many_keys")
        key_id, secret = new_access_key_id(), new_secret()
        record = await self.repo.add(key_id, user_id, self.box.seal(key_id, secret))
        return record, secret

    async def owner_of(self, access_key_id: str) -> KeyOwner | None:
        """The account and secret of a key; None for an unknown or revoked key."""
        if self.box is None or len(access_key_id) > 32:
            return None
        now = time.monotonic()
        kept = self._known.get(access_key_id)
        if kept is not None and kept[0] > now:
            return kept[1]
        record = await self.repo.get(access_key_id)
        owner = None
        if record is not None:
            secret = self.box.open(record.access_key_id, record.secret_sealed)
            owner = None if secret is None else KeyOwner(record.user_id, secret)
        if self.ttl > 0 and owner is not None:
            # Only keys that exist are kept: a flood of made-up ids cannot
            # fill the memory, and a new key works at once.
            self._known[access_key_id] = (now + self.ttl, owner)
            self._known.move_to_end(access_key_id)
            while len(self._known) > _MAX_KNOWN:
                self._known.popitem(last=False)
        return owner

    def forget(self, access_key_id: str | None = None) -> None:
        """A key (or, None, every key) changed: look it up afresh."""
        if access_key_id is None:
            self._known.clear()
        else:
            self._known.pop(access_key_id, None)

    # -- REST ------------------------------------------------------------------------

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/api/v1/auth/keys", self.create_key),
            web.get("/api/v1/auth/keys", self.list_keys),
            web.delete("/api/v1/auth/keys/{access_key_id}", self.revoke_key),
        ]

    def _account(self, request: web.Request) -> str:
        if is_open(request):
            raise BadRequest("access keys need accounts (JWT_SECRET); in single-user mode "
                             "the S3 endpoint accepts any well-formed signature",
                             code="accounts_disabled")
        return identity(request).user_id

    async def create_key(self, request: web.Request) -> web.Response:
        record, secret = await self.create(self._account(request))
        return web.json_response({
            "access_key_id": record.access_key_id, "secret_access_key": secret,
            "created_at": record.created_at,
            "note": "the secret is shown only now: keep it"}, status=201)

    async def list_keys(self, request: web.Request) -> web.Response:
        records = await self.repo.of_user(self._account(request))
        return web.json_response({"keys": [
            {"access_key_id": r.access_key_id, "created_at": r.created_at,
             "age_seconds": round(time.time() - r.created_at)} for r in records]})

    async def revoke_key(self, request: web.Request) -> web.Response:
        key_id = request.match_info["access_key_id"]
        if not await self.repo.delete(key_id, self._account(request)):
            raise NotFound(f"you have no access key {key_id!r}", code="no_such_key")
        self.forget(key_id)
        return web.json_response({"access_key_id": key_id, "revoked": True})
