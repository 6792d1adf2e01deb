"""The original's auth contract: register with an email (stored, unique),
login by email or username, 401 for any wrong credentials, the profile
showing the email, and the original's envelope fields beside ours."""

from __future__ import annotations

import aiohttp
import pytest

from echofs.testing.http import error_of
from echofs.testing.node import running_node

SECRET = "e" * 40


@pytest.fixture
async def http(tmp_path):
    async with running_node(tmp_path / "d", jwt_secret=SECRET) as node, \
            aiohttp.ClientSession(base_url=node.url) as session:
        yield session


async def register(http, body: dict) -> aiohttp.ClientResponse:
    async with http.post("/api/v1/auth/register", json=body) as resp:
        await resp.read()
        return resp


async def login(http, body: dict) -> tuple[int, dict]:
    async with http.post("/api/v1/auth/login", json=body) as resp:
        return resp.status, await resp.json()


async def test_register_stores_the_email_and_refuses_it_twice(http):
    async with http.post("/api/v1/auth/register", json={
            "username": "alice", "email": "Alice@Example.com",
            "password": "correct horse"}) as resp:
        body = await resp.json()
        assert resp.status == 201, body
    assert body["success"] is True and body["message"] == "User registered successfully"
    assert body["user"]["email"] == "alice@example.com" and body["token"]
    async with http.post("/api/v1/auth/register", json={
            "username": "alice2", "email": "alice@example.COM",
            "password": "correct horse"}) as resp:
        assert resp.status == 409
        assert (await error_of(resp))["code"] == "email_taken"
    for bad in ("no-at-sign", "a@b", "a b@example.com", "x" * 250 + "@example.com", 7):
        async with http.post("/api/v1/auth/register", json={
                "username": "carol", "email": bad, "password": "correct horse"}) as resp:
            assert resp.status == 400, bad
            assert (await error_of(resp))["code"] == "invalid_email"
    # No email at all is still an account (our own clients send none).
    async with http.post("/api/v1/auth/register", json={
            "username": "dave", "password": "correct horse"}) as resp:
        assert resp.status == 201 and (await resp.json())["user"]["email"] is None


async def test_login_by_email_or_username_and_401_for_every_wrong_credential(http):
    await register(http, {"username": "alice", "email": "alice@example.com",
                          "password": "correct horse"})
    for body in ({"email": "alice@example.com", "password": "correct horse"},
                 {"email": "ALICE@example.com", "password": "correct horse"},
                 {"username": "alice", "password": "correct horse"},
                 {"username": "alice@example.com", "password": "correct horse"}):
        status, answer = await login(http, body)
        assert status == 200, (body, answer)
        assert answer["success"] is True and answer["message"] == "Login successful"
        assert answer["user"]["username"] == "alice" and answer["token"]
    for body in ({"email": "alice@example.com", "password": "short"},
                 {"email": "alice@example.com", "password": "wrong password"},
                 {"email": "alice@example.com", "password": "x" * 5000},
                 {"email": "bob@example.com", "password": "correct horse"},
                 {"email": "alice", "password": "correct horse"},  # a username, not an email
                 {"username": "al", "password": "correct horse"},
                 {"username": "nobody", "password": "p"}):
        status, answer = await login(http, body)
        assert status == 401, (body, answer)
        assert answer["error"]["code"] == "invalid_credentials"
    # Malformed requests (not wrong credentials) stay 400.
    for body in ({"password": "correct horse"}, {"email": "alice@example.com"},
                 {"email": 5, "password": "correct horse"}, ["alice"]):
        status, answer = await login(http, body)
        assert status == 400, (body, answer)


async def test_profile_shows_the_email(http):
    async with http.post("/api/v1/auth/register", json={
            "username": "alice", "email": "alice@example.com",
            "password": "correct horse"}) as resp:
        token = (await resp.json())["token"]
    for route in ("/api/v1/auth/profile", "/api/v1/auth/me"):
        async with http.get(route, headers={"Authorization": f"Bearer {token}"}) as resp:
            body = await resp.json()
            assert resp.status == 200, body
        assert body["success"] is True
        assert body["user"]["email"] == "alice@example.com"
        assert body["user"]["username"] == "alice"
    async with http.get("/api/v1/auth/profile") as resp:
        assert resp.status == 401


async def test_the_dashboard_and_replication_stats_are_for_admins(http):
    tokens = []
    for name in ("admin1", "plain1"):  # the first account is the admin
        async with http.post("/api/v1/auth/register", json={
                "username": name, "password": "correct horse"}) as resp:
            tokens.append((await resp.json())["token"])
    for route in ("/metrics/dashboard", "/api/v1/replication/stats"):
        async with http.get(route) as resp:
            assert resp.status == 401, route
        async with http.get(route, headers={"Authorization": f"Bearer {tokens[1]}"}) as resp:
            assert resp.status == 403, route
        async with http.get(route, headers={"Authorization": f"Bearer {tokens[0]}"}) as resp:
            assert resp.status == 200, route
