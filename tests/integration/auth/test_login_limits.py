"""Login and register under a flood (issue 17, defect 9): attempts are limited
per client address and per account (429 ``rate_limited`` with Retry-After),
password hashing runs off the event loop on a few threads with a short queue
(beyond it: 429 ``auth_busy``), and the server keeps answering health."""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid

import aiohttp
import pytest

from echofs.testing.http import error_of
from echofs.testing.node import running_node
from echofs.testing.process import ServeProcess

SECRET = "l" * 40
FLOOD = 300
# Health answered while the flood runs: the median must stay well under this.
HEALTH_MEDIAN_LIMIT = 0.1


async def fresh_window(margin: float = 5.0) -> None:
    """Limits count in one-minute windows: start a counted sequence far
    enough from a window's end that it is counted in one."""
    left = 60 - time.time() % 60
    if left < margin:
        await asyncio.sleep(left + 0.05)


async def attempt(http: aiohttp.ClientSession, username: str,
                  password: str = "wrong password") -> int:
    async with http.post("/api/v1/auth/login",
                         json={"username": username, "password": password}) as resp:
        if resp.status == 429:
            error = await error_of(resp)
            assert error["code"] in ("rate_limited", "auth_busy"), error
            assert 1 <= int(resp.headers["Retry-After"]) <= 60
        else:
            await resp.read()
        return resp.status


async def flood_with_health_probe(url: str, usernames: list[str]) -> tuple[
        list[int], list[float]]:
    """Every login at once, and /health asked every 50 ms meanwhile."""
    latencies: list[float] = []
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(base_url=url, connector=connector) as http, \
            aiohttp.ClientSession(base_url=url) as probe:
        flood = asyncio.gather(*(attempt(http, name) for name in usernames))
        while not flood.done():
            started = time.perf_counter()
            async with probe.get("/api/v1/health") as resp:
                await resp.read()
            latencies.append(time.perf_counter() - started)
            await asyncio.sleep(0.05)
        return await flood, latencies


@pytest.fixture
def server(tmp_path):
    with ServeProcess(tmp_path / "data", env={"JWT_SECRET": SECRET}) as process:
        yield process


async def register(url: str, username: str) -> None:
    async with aiohttp.ClientSession(base_url=url) as http, http.post(
            "/api/v1/auth/register",
            json={"username": username, "password": "correct horse"}) as resp:
        assert resp.status == 201, await resp.text()


async def test_a_login_flood_from_one_address_is_refused_fast(server):
    await register(server.url, "victim")
    await fresh_window()
    statuses, latencies = await flood_with_health_probe(server.url, ["victim"] * FLOOD)
    refused = statuses.count(429)
    assert set(statuses) <= {401, 429}, statuses
    # Only the first few of one address and account ever reach the hasher.
    assert statuses.count(401) <= 10 and refused >= FLOOD - 10, statuses
    assert latencies and statistics.median(latencies) < HEALTH_MEDIAN_LIMIT, latencies
    assert "Traceback" not in server.log()


async def test_password_hashing_is_bounded_when_limits_are_off(tmp_path):
    """With both limits off, distinct accounts all reach the hasher: it takes
    a few at a time, lets a short queue wait, and turns the rest away at once
    instead of queueing hundreds of hashes behind each other."""
    env = {"JWT_SECRET": SECRET, "LOGIN_LIMIT_PER_ADDRESS": "0",
           "LOGIN_LIMIT_PER_ACCOUNT": "0", "PASSWORD_HASH_CONCURRENCY": "1",
           "PASSWORD_HASH_QUEUE": "8"}
    with ServeProcess(tmp_path / "data", env=env) as server:
        started = time.perf_counter()
        statuses, latencies = await flood_with_health_probe(
            server.url, [f"user{i}" for i in range(FLOOD)])
        elapsed = time.perf_counter() - started
        assert set(statuses) <= {401, 429}, statuses
        assert statuses.count(429) >= FLOOD // 2, statuses
        assert statuses.count(401) >= 9  # the one running and the queue got answers
        # 300 hashes in a row would take 300 x ~25 ms and more; refusals are immediate.
        assert elapsed < 5.0, elapsed
        assert statistics.median(latencies) < HEALTH_MEDIAN_LIMIT, latencies
        assert "Traceback" not in server.log()


async def test_per_account_limit_leaves_other_accounts_alone(tmp_path):
    async with running_node(tmp_path / "d", jwt_secret=SECRET, login_limit_per_account=3,
                            login_limit_per_address=0) as node, \
            aiohttp.ClientSession(base_url=node.url) as http:
        for name in ("alice", "bob"):
            async with http.post("/api/v1/auth/register",
                                 json={"username": name, "password": "correct horse"}):
                pass
        await fresh_window()
        assert [await attempt(http, "alice") for _ in range(4)] == [401, 401, 401, 429]
        # Locked for the rest of the window, even with the right password.
        assert await attempt(http, "alice", "correct horse") == 429
        assert await attempt(http, "bob", "correct horse") == 200
        # Unknown names are counted too (no telling them apart by the answer).
        assert [await attempt(http, "nobody") for _ in range(4)] == [401, 401, 401, 429]


async def test_per_address_limit_covers_register_and_login(tmp_path):
    async with running_node(tmp_path / "d", jwt_secret=SECRET, login_limit_per_address=3,
                            login_limit_per_account=0) as node, \
            aiohttp.ClientSession(base_url=node.url) as http:
        await fresh_window()
        async with http.post("/api/v1/auth/register",
                             json={"username": "alice", "password": "correct horse"}) as resp:
            assert resp.status == 201
        assert await attempt(http, "alice", "correct horse") == 200
        assert await attempt(http, "bob") == 401
        async with http.post("/api/v1/auth/register",
                             json={"username": "carol", "password": "correct horse"}) as resp:
            assert resp.status == 429
            assert (await error_of(resp))["code"] == "rate_limited"
        async with http.get("/api/v1/health") as resp:  # never limited
            assert resp.status == 200


async def test_limits_are_shared_by_masters_through_redis(tmp_path, redis_url: str):
    shared = {"jwt_secret": SECRET, "login_limit_per_account": 4,
              "login_limit_per_address": 0, "redis_url": redis_url,
              "redis_prefix": f"echofs-test-{uuid.uuid4().hex[:8]}"}
    async with running_node(tmp_path / "a", **shared) as a, \
            running_node(tmp_path / "b", **shared) as b, \
            aiohttp.ClientSession(base_url=a.url) as http_a, \
            aiohttp.ClientSession(base_url=b.url) as http_b:
        await fresh_window()
        statuses = [await attempt(http, "dave") for http in (http_a, http_b) * 3]
        assert statuses == [401, 401, 401, 401, 429, 429]
