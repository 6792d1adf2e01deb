"""Accounts: the token matrix, per-user isolation over every file endpoint,
admin-only APIs, and open mode."""

from __future__ import annotations

import time

import aiohttp
import jwt
import pytest

from echofs.testing.http import error_of
from echofs.testing.node import running_node

SECRET = "s" * 40


@pytest.fixture
async def node(tmp_path):
    async with running_node(tmp_path / "d", jwt_secret=SECRET) as n:
        yield n


@pytest.fixture
async def http(node):
    async with aiohttp.ClientSession(base_url=node.url) as session:
        yield session


async def register(http, username: str, password: str = "correct horse") -> str:
    async with http.post("/api/v1/auth/register",
                         json={"username": username, "password": password}) as resp:
        body = await resp.json()
        assert resp.status == 201, body
        return body["token"]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def forged(claims: dict, secret: str = SECRET, alg: str = "HS256") -> str:
    return jwt.encode(claims, secret, algorithm=alg)


async def test_register_login_me_and_first_user_is_admin(http):
    admin = await register(http, "alice")
    user = await register(http, "bob")
    async with http.get("/api/v1/auth/me", headers=bearer(admin)) as resp:
        assert (await resp.json())["user"]["role"] == "admin"
    async with http.get("/api/v1/auth/profile", headers=bearer(user)) as resp:
        me = (await resp.json())["user"]
        assert me["role"] == "user" and me["username"] == "bob"
    async with http.post("/api/v1/auth/login",
                         json={"username": "bob", "password": "correct horse"}) as resp:
        assert resp.status == 200 and (await resp.json())["token"]
    for body in [{"username": "bob", "password": "wrong password"},
                 {"username": "nobody", "password": "correct horse"}]:
        async with http.post("/api/v1/auth/login", json=body) as resp:
            assert resp.status == 401
            assert (await error_of(resp))["code"] == "invalid_credentials"
    async with http.post("/api/v1/auth/register",
                         json={"username": "bob", "password": "another one"}) as resp:
        assert resp.status == 409
    for body in [{"username": "x", "password": "long enough"}, {"username": "ok_name"},
                 {"username": "ok_name", "password": "short"}, ["not", "an", "object"]]:
        async with http.post("/api/v1/auth/register", json=body) as resp:
            assert resp.status == 400, body
            await error_of(resp)


async def test_token_matrix(http):
    token = await register(http, "alice")
    now = int(time.time())
    claims = {"sub": "someone", "name": "alice", "role": "admin"}
    cases = {
        "missing": {},
        "malformed": bearer("not.a.jwt"),
        "not bearer": {"Authorization": f"Basic {token}"},
        "empty bearer": {"Authorization": "Bearer "},
        "wrong signature": bearer(forged({**claims, "iat": now, "nbf": now, "exp": now + 60},
                                         secret="x" * 40)),
        "expired": bearer(forged({**claims, "iat": now - 100, "nbf": now - 100,
                                  "exp": now - 50})),
        "not yet valid": bearer(forged({**claims, "iat": now, "nbf": now + 3600,
                                        "exp": now + 7200})),
        "alg none": bearer(jwt.encode({**claims, "iat": now, "nbf": now, "exp": now + 60},
                                      None, algorithm="none")),
        "no exp": bearer(forged({**claims, "iat": now, "nbf": now})),
        "HS512": bearer(forged({**claims, "iat": now, "nbf": now, "exp": now + 60},
                               alg="HS512")),
    }
    for name, headers in cases.items():
        for path in ["/api/v1/files", "/api/v1/auth/me", "/api/v1/consistency/status"]:
            async with http.get(path, headers=headers) as resp:
                assert resp.status == 401, (name, path, resp.status)
                await error_of(resp)
    async with http.get("/api/v1/files", headers=bearer(token)) as resp:
        assert resp.status == 200
    async with http.get("/api/v1/health") as resp:  # public
        assert resp.status in (200, 503)
    async with http.get("/favicon.ico") as resp:  # browsers ask with no token
        assert resp.status == 200 and resp.content_type.startswith("image/")


async def test_isolation_between_two_users_over_every_endpoint(http):
    alice = await register(http, "alice")
    bob = await register(http, "bob")
    async with http.put("/api/v1/files/content/secret.txt", data=b"alice's",
                        headers=bearer(alice)) as resp:
        created = await resp.json()
        assert resp.status == 201, created
        file_id = created["file_id"]
    endpoints = [
        ("GET", f"/api/v1/files/{file_id}"),
        ("GET", f"/api/v1/files/{file_id}/versions"),
        ("GET", f"/api/v1/files/{file_id}/download"),
        ("GET", "/api/v1/files/content/secret.txt"),
        ("DELETE", f"/api/v1/files/{file_id}"),
    ]
    for method, path in endpoints:
        async with http.request(method, path, headers=bearer(bob)) as resp:
            assert resp.status == 404, (method, path)
            assert (await error_of(resp))["code"] == "not_found"
    async with http.get("/api/v1/files", headers=bearer(bob)) as resp:
        assert (await resp.json())["files"] == []
    # Bob "overwriting" the name makes his own file; Alice's is untouched.
    async with http.put("/api/v1/files/content/secret.txt", data=b"bob's",
                        headers=bearer(bob)) as resp:
        assert (await resp.json())["file_id"] != file_id
    async with http.get(f"/api/v1/files/{file_id}/download", headers=bearer(alice)) as resp:
        assert await resp.read() == b"alice's"
    async with http.get("/api/v1/files/content/secret.txt", headers=bearer(bob)) as resp:
        assert await resp.read() == b"bob's"
    # Only an admin lists everyone, and only when asking for it.
    async with http.get("/api/v1/files", params={"all": "true"}, headers=bearer(bob)) as resp:
        assert resp.status == 403
    async with http.get("/api/v1/files", params={"all": "true"},
                        headers=bearer(alice)) as resp:
        assert len((await resp.json())["files"]) == 2
    async with http.get("/api/v1/files", headers=bearer(alice)) as resp:
        assert len((await resp.json())["files"]) == 1


async def test_admin_only_endpoints(http):
    admin = await register(http, "root")
    user = await register(http, "plain")
    for path in ["/api/v1/workers/health", "/api/v1/consistency/status",
                 "/api/v1/consistency/transitions"]:
        async with http.get(path, headers=bearer(user)) as resp:
            assert resp.status == 403, path
            assert (await error_of(resp))["code"] == "forbidden"
        async with http.get(path, headers=bearer(admin)) as resp:
            assert resp.status == 200, path


async def test_open_mode_is_single_user_and_refuses_accounts(tmp_path):
    async with running_node(tmp_path / "o") as node, \
            aiohttp.ClientSession(base_url=node.url) as http:
        async with http.get("/api/v1/auth/me") as resp:
            body = await resp.json()
            assert body["auth"] == "open" and body["user"]["role"] == "admin"
        async with http.post("/api/v1/auth/register",
                             json={"username": "alice", "password": "long enough"}) as resp:
            assert resp.status == 400
            assert (await error_of(resp))["code"] == "auth_disabled"


async def test_short_secret_and_open_non_loopback_refuse_to_start(tmp_path):
    from echofs.node import StartupError

    with pytest.raises(ValueError):
        async with running_node(tmp_path / "a", jwt_secret="short"):
            pass
    with pytest.raises(StartupError):
        async with running_node(tmp_path / "b", host="0.0.0.0"):
            pass
