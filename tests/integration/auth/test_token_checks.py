"""A token names an account; the account decides. Every request checks that
the account still exists, takes its *current* role, and refuses a token
revoked by logout (issue 17, defect 15)."""

from __future__ import annotations

import asyncio
import time
import uuid

import aiohttp
import jwt
import pytest

from echofs.testing.http import error_of
from echofs.testing.node import running_node

SECRET = "t" * 40
# Short, so changes made behind this master's back show within a test.
CACHE_SECONDS = 0.5


@pytest.fixture
async def node(tmp_path):
    async with running_node(tmp_path / "d", jwt_secret=SECRET,
                            auth_cache_seconds=CACHE_SECONDS) as n:
        yield n


@pytest.fixture
async def http(node):
    async with aiohttp.ClientSession(base_url=node.url) as session:
        yield session


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def signed(sub: str, name: str, role: str) -> str:
    """A token as this node would sign it: valid signature, valid times."""
    now = int(time.time())
    return jwt.encode({"sub": sub, "name": name, "role": role, "iat": now, "nbf": now,
                       "exp": now + 600}, SECRET, algorithm="HS256")


async def register(http, username: str) -> dict:
    async with http.post("/api/v1/auth/register",
                         json={"username": username, "password": "correct horse"}) as resp:
        body = await resp.json()
        assert resp.status == 201, body
        return body


async def status_of(http, method: str, path: str, token: str, **kwargs) -> tuple[int, str]:
    async with http.request(method, path, headers=bearer(token), **kwargs) as resp:
        if resp.status >= 400:
            return resp.status, (await error_of(resp))["code"]
        return resp.status, ""


async def test_token_of_an_account_that_does_not_exist_is_refused(http):
    await register(http, "alice")
    for role in ("user", "admin"):
        phantom = signed(uuid.uuid4().hex, "ghost", role)
        for method, path, kwargs in [
            ("GET", "/api/v1/files", {}),
            ("PUT", "/api/v1/files/content/ghost.txt", {"data": b"boo"}),
            ("GET", "/api/v1/workers/health", {}),
            ("GET", "/api/v1/consistency/status", {}),
            ("GET", "/api/v1/auth/me", {}),
        ]:
            assert await status_of(http, method, path, phantom, **kwargs) == (
                401, "unknown_user"), (role, method, path)
    async with http.get("/api/v1/files", params={"all": "true"},
                        headers=bearer((await register(http, "bob"))["token"])) as resp:
        assert resp.status == 403  # bob is no admin; nothing of the ghost's was stored


async def test_role_comes_from_the_account_not_the_token(http):
    await register(http, "alice")  # the first account: admin
    bob = await register(http, "bob")
    promoted = signed(bob["user"]["id"], "bob", "admin")
    assert await status_of(http, "GET", "/api/v1/workers/health", promoted) == (
        403, "forbidden")
    async with http.get("/api/v1/auth/me", headers=bearer(promoted)) as resp:
        assert (await resp.json())["user"]["role"] == "user"


async def test_demoted_and_deleted_accounts_lose_access_at_once(http):
    alice = (await register(http, "alice"))["token"]
    bob = (await register(http, "bob"))["token"]
    carol = (await register(http, "carol"))["token"]
    assert await status_of(http, "GET", "/api/v1/workers/health", bob) == (403, "forbidden")
    assert await status_of(http, "PATCH", "/api/v1/auth/users/bob", alice,
                           json={"role": "admin"}) == (200, "")
    assert await status_of(http, "GET", "/api/v1/workers/health", bob) == (200, "")
    # Demoted: the next request, not the next cache refresh, says so.
    assert await status_of(http, "PATCH", "/api/v1/auth/users/bob", alice,
                           json={"role": "user"}) == (200, "")
    assert await status_of(http, "GET", "/api/v1/workers/health", bob) == (403, "forbidden")
    assert await status_of(http, "GET", "/api/v1/files", carol) == (200, "")
    assert await status_of(http, "DELETE", "/api/v1/auth/users/carol", alice) == (204, "")
    assert await status_of(http, "GET", "/api/v1/files", carol) == (401, "unknown_user")
    # Account admin is for admins, and the last admin cannot remove itself.
    assert await status_of(http, "DELETE", "/api/v1/auth/users/alice", bob) == (
        403, "forbidden")
    assert await status_of(http, "DELETE", "/api/v1/auth/users/alice", alice) == (
        409, "last_admin")
    assert await status_of(http, "PATCH", "/api/v1/auth/users/alice", alice,
                           json={"role": "user"}) == (409, "last_admin")
    assert await status_of(http, "DELETE", "/api/v1/auth/users/nobody", alice) == (
        404, "unknown_user")
    for body in [{"role": "root"}, {}, ["role"]]:
        assert (await status_of(http, "PATCH", "/api/v1/auth/users/bob", alice,
                                json=body))[0] == 400, body


async def test_logout_revokes_every_token_of_the_account(http):
    await register(http, "alice")
    first = (await register(http, "bob"))["token"]
    async with http.post("/api/v1/auth/login",
                         json={"username": "bob", "password": "correct horse"}) as resp:
        second = (await resp.json())["token"]
    assert await status_of(http, "GET", "/api/v1/files", first) == (200, "")
    assert await status_of(http, "POST", "/api/v1/auth/logout", first) == (204, "")
    for token in (first, second):
        assert await status_of(http, "GET", "/api/v1/files", token) == (401, "token_revoked")
        assert await status_of(http, "POST", "/api/v1/auth/logout", token) == (
            401, "token_revoked")
    async with http.post("/api/v1/auth/login",
                         json={"username": "bob", "password": "correct horse"}) as resp:
        fresh = (await resp.json())["token"]
    assert await status_of(http, "GET", "/api/v1/files", fresh) == (200, "")


async def test_changes_made_elsewhere_show_within_the_cache_lifetime(node, http):
    """Another master (here: the store changed directly) is seen once this
    master's short-lived copy of the account expires."""
    await register(http, "alice")
    bob = await register(http, "bob")
    token = bob["token"]
    assert await status_of(http, "GET", "/api/v1/files", token) == (200, "")
    users = node.repo.users
    await users.set_role(bob["user"]["id"], "admin")
    await asyncio.sleep(CACHE_SECONDS + 0.2)
    assert await status_of(http, "GET", "/api/v1/workers/health", token) == (200, "")
    await users.revoke_tokens(bob["user"]["id"])
    await asyncio.sleep(CACHE_SECONDS + 0.2)
    assert await status_of(http, "GET", "/api/v1/files", token) == (401, "token_revoked")
    await users.delete(bob["user"]["id"])
    await asyncio.sleep(CACHE_SECONDS + 0.2)
    assert await status_of(http, "GET", "/api/v1/files", token) == (401, "unknown_user")


async def test_open_mode_has_no_logout(tmp_path):
    async with running_node(tmp_path / "o") as node, \
            aiohttp.ClientSession(base_url=node.url) as http, \
            http.post("/api/v1/auth/logout") as resp:
        assert resp.status == 400
        assert (await error_of(resp))["code"] == "auth_disabled"
